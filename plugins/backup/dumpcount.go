package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
)

// countRowsArg is the first argument that makes the plugin's binary the
// row-counting filter of a MySQL/MariaDB dump instead of a plugin.
const countRowsArg = "__chima-count-dump-rows"

// countRowsMain is the filter restic runs (restic backup
// --stdin-from-command -- <plugin> __chima-count-dump-rows <file> --
// mariadb-dump …): it runs the dump, passes its output through to restic
// unchanged, counts the rows of each table's INSERT statements on the way,
// and writes the counts to <file> as JSON when the dump succeeded. The
// counts are therefore those of the dump's own consistent snapshot
// (--single-transaction), whatever is written meanwhile. It exits with the
// dump's status, so a failing dump still fails the backup.
func countRowsMain(args []string) int {
	if len(args) < 3 || args[1] != "--" {
		fmt.Fprintln(os.Stderr, "usage: backup "+countRowsArg+" <counts file> -- <dump command>…")
		return 2
	}
	file, argv := args[0], args[2:]
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "count rows:", err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "count rows: start the dump:", err)
		return 1
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	counter := newDumpRowCounter()
	_, cerr := io.Copy(w, io.TeeReader(out, counter))
	if err := w.Flush(); cerr == nil {
		cerr = err
	}
	if cerr != nil {
		_ = cmd.Process.Kill()
	}
	werr := cmd.Wait()
	var ee *exec.ExitError
	switch {
	case errors.As(werr, &ee) && ee.ExitCode() > 0:
		return ee.ExitCode()
	case werr != nil:
		fmt.Fprintln(os.Stderr, "count rows: the dump:", werr)
		return 1
	case cerr != nil:
		fmt.Fprintln(os.Stderr, "count rows: pass the dump on:", cerr)
		return 1
	}
	res := struct {
		Rows  rowCounts `json:"rows,omitempty"`
		Error string    `json:"error,omitempty"`
	}{Rows: counter.rows}
	if counter.err != nil {
		res.Rows, res.Error = nil, counter.err.Error()
	}
	data, _ := json.Marshal(res)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "count rows:", err)
		return 1
	}
	return 0
}

// readDumpCounts reads what countRowsMain wrote.
func readDumpCounts(file string) (rowCounts, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read the dump's row counts: %w", err)
	}
	var res struct {
		Rows  rowCounts `json:"rows"`
		Error string    `json:"error"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("read the dump's row counts: %w", err)
	}
	if res.Error != "" {
		return nil, fmt.Errorf("count the dump's rows: %s", res.Error)
	}
	if res.Rows == nil {
		res.Rows = rowCounts{}
	}
	return res.Rows, nil
}

// dumpRowCounter counts the rows per table of a mariadb-dump stream as it
// is written to it: every table of a `CREATE TABLE` line starts at 0, and
// each tuple of an `INSERT INTO` statement (extended inserts hold many in
// one statement, on one line that may be megabytes long) adds one. Quoted
// strings, with their backslash escapes and doubled quotes, are skipped, so
// parentheses and semicolons inside values do not count.
type dumpRowCounter struct {
	rows rowCounts
	err  error
	// line is the start of the current line outside an INSERT's values;
	// skip says it is longer than anything the counter looks at.
	line []byte
	skip bool
	// In an INSERT's values: its table, the parentheses' depth, the open
	// quote (0 outside a string) and a pending backslash.
	inValues bool
	table    string
	depth    int
	quote    byte
	escaped  bool
}

func newDumpRowCounter() *dumpRowCounter {
	return &dumpRowCounter{rows: rowCounts{}, line: make([]byte, 0, 512)}
}

// maxLineStart is how much of a line outside the values is kept: enough
// for `INSERT INTO `<64-character name>` VALUES `.
const maxLineStart = 512

// Write never fails: a stream the counter cannot read sets err, and the
// dump still passes through whole.
func (d *dumpRowCounter) Write(p []byte) (int, error) {
	if d.err != nil {
		return len(p), nil
	}
	for i := 0; i < len(p); i++ {
		b := p[i]
		if d.inValues {
			if d.quote != 0 {
				// The bulk of a dump: skip to the next quote or backslash.
				if d.escaped {
					d.escaped = false
					continue
				}
				j := bytes.IndexAny(p[i:], `\'"`)
				if j < 0 {
					break
				}
				i += j
				switch p[i] {
				case '\\':
					d.escaped = true
				case d.quote:
					d.quote = 0
				}
				continue
			}
			switch b {
			case '\'', '"':
				d.quote = b
			case '(':
				if d.depth == 0 {
					d.rows[d.table]++
				}
				d.depth++
			case ')':
				d.depth--
			case ';':
				if d.depth == 0 {
					d.inValues = false
					d.line, d.skip = d.line[:0], true // the rest of the line
				}
			}
			continue
		}
		if b == '\n' {
			d.line, d.skip = d.line[:0], false
			continue
		}
		if d.skip {
			continue
		}
		d.line = append(d.line, b)
		d.lineStart()
		if len(d.line) >= maxLineStart {
			d.skip = true
		}
	}
	return len(p), nil
}

var (
	insertPrefix = []byte("INSERT INTO `")
	createPrefix = []byte("CREATE TABLE `")
	valuesWord   = []byte(" VALUES") // then a space, or a newline (MariaDB 10.11 puts each row on a line)
)

// lineStart looks at the line so far: a CREATE TABLE names a table, an
// INSERT INTO's VALUES starts its rows.
func (d *dumpRowCounter) lineStart() {
	switch {
	case bytes.HasPrefix(d.line, createPrefix):
		if name, rest, ok := backquoted(d.line[len(createPrefix)-1:]); ok && len(rest) > 0 {
			if _, seen := d.rows[name]; !seen {
				d.rows[name] = 0
			}
			d.skip = true
		}
	case bytes.HasPrefix(d.line, insertPrefix):
		name, rest, ok := backquoted(d.line[len(insertPrefix)-1:])
		if !ok || len(rest) < len(valuesWord) {
			return
		}
		if !bytes.Equal(rest, valuesWord) {
			d.err = fmt.Errorf("an INSERT into %s the counter cannot read: %.40q", name, rest)
			return
		}
		d.inValues, d.table, d.depth, d.quote, d.escaped = true, name, 0, 0, false
		if _, seen := d.rows[name]; !seen {
			d.rows[name] = 0
		}
	}
}

// backquoted reads a `name` (“ inside stands for one backquote) at the
// start of s and returns it with what follows; ok is false until the
// closing backquote is there.
func backquoted(s []byte) (name string, rest []byte, ok bool) {
	var b []byte
	for i := 1; i < len(s); i++ {
		if s[i] != '`' {
			b = append(b, s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '`' {
			b = append(b, '`')
			i++
			continue
		}
		if i+1 == len(s) {
			return "", nil, false // a doubled backquote may follow
		}
		return string(b), s[i+1:], true
	}
	return "", nil, false
}
