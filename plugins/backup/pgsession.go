package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
)

// pgSession is one psql session held open in a REPEATABLE READ transaction
// whose snapshot it exported: pg_dump --snapshot dumps exactly what the
// session sees, so the rows it counts are the rows of the dump.
type pgSession struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr *strings.Builder
	secret string
	mu     sync.Mutex
}

const pgEnd = "__chima_end__"

// openPGSnapshot starts the session and returns it with its snapshot's id.
func openPGSnapshot(ctx context.Context, c *dbConn) (*pgSession, string, error) {
	cmd := exec.CommandContext(ctx, "psql", "-X", "-A", "-t", "-q", "-F", "\t", "-v", "ON_ERROR_STOP=1", "--no-password", c.pgDBName())
	cmd.Env = append(os.Environ(), c.env()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	s := &pgSession{cmd: cmd, in: in, stderr: &strings.Builder{}, secret: c.password}
	cmd.Stderr = &limited{w: s.stderr, n: 16 << 10}
	s.out = bufio.NewScanner(out)
	s.out.Buffer(make([]byte, 64<<10), 16<<20)
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start psql: %w", err)
	}
	res, err := s.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT pg_export_snapshot()")
	if err != nil {
		s.close()
		return nil, "", fmt.Errorf("export a snapshot of %s: %w", c.Database, err)
	}
	id := strings.TrimSpace(res)
	if id == "" || strings.ContainsAny(id, " \n") {
		s.close()
		return nil, "", fmt.Errorf("export a snapshot of %s: psql said %q", c.Database, id)
	}
	return s, id, nil
}

// query runs sql in the session and returns its rows.
func (s *pgSession) query(sql string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := io.WriteString(s.in, sql+";\n\\echo "+pgEnd+"\n"); err != nil {
		return "", s.failure(err)
	}
	var lines []string
	for s.out.Scan() {
		if s.out.Text() == pgEnd {
			return strings.Join(lines, "\n"), nil
		}
		lines = append(lines, s.out.Text())
	}
	return "", s.failure(errors.New("psql ended"))
}

func (s *pgSession) failure(err error) error {
	return fmt.Errorf("psql: %v: %s", err, scrub(lastLines(s.stderr.String(), 3), s.secret))
}

// close ends the transaction and the session.
func (s *pgSession) close() {
	_, _ = io.WriteString(s.in, "COMMIT;\n\\q\n")
	_ = s.in.Close()
	_ = s.cmd.Wait()
}
