package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	sqlite "modernc.org/sqlite"
)

// rowCounts are the rows of each table, by table name.
type rowCounts map[string]int64

// dumpPlan is how one backup of a target is taken.
type dumpPlan struct {
	// args are restic's, after "backup" and its tags.
	args []string
	// env is added to restic's environment (the dump's password).
	env []string
	// rows are the row counts at backup time; nil for a directory.
	rows rowCounts
	// count, when set, counts the rows while the dump runs (rows is
	// then nil).
	count func() (rowCounts, error)
	// counted, when set, returns the rows counted by the dump's own
	// filter, once restic has ended (rows is then nil).
	counted func() (rowCounts, error)
	// file is the name the dump is stored under (stdin filename).
	file string
	// cleanup removes what the plan made (SQLite's copy).
	cleanup func()
}

// tool runs a client tool (psql, mariadb, pg_restore…) and returns its
// stdout; its error carries the end of its stderr, the password scrubbed.
func tool(ctx context.Context, env []string, secret string, stdin io.Reader, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &limited{w: &errb, n: 16 << 10}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %v: %s", name, err, scrub(lastLines(errb.String(), 3), secret))
	}
	return out.String(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " ")
}

// targetConn is the connection of a database target.
func targetConn(t *Target) (*dbConn, error) {
	c, err := parseDSN(t.Kind, os.Getenv(t.DSNEnv))
	if err != nil {
		return nil, fmt.Errorf("%s: the DSN in %s: %w", t.Name, t.DSNEnv, err)
	}
	return c, nil
}

// scratchConn is the server scratch databases of t are made on, connected
// to its own database (scratch databases are created from there).
func scratchConn(t *Target) (*dbConn, error) {
	if t.ScratchDSNEnv == "" {
		return targetConn(t)
	}
	c, err := parseDSN(t.Kind, os.Getenv(t.ScratchDSNEnv))
	if err != nil {
		return nil, fmt.Errorf("%s: the DSN in %s: %w", t.Name, t.ScratchDSNEnv, err)
	}
	return c, nil
}

// planBackup prepares the backup of t: counts rows, and for SQLite makes
// the consistent copy that is backed up.
func planBackup(ctx context.Context, t *Target) (*dumpPlan, error) {
	switch t.Kind {
	case kindPostgres:
		c, err := targetConn(t)
		if err != nil {
			return nil, err
		}
		// The rows are counted in the transaction whose snapshot pg_dump
		// dumps: they are exactly the dump's, and counted while it runs.
		sess, snap, err := openPGSnapshot(ctx, c)
		if err != nil {
			return nil, err
		}
		file := c.Database + ".pgdump"
		return &dumpPlan{
			args: []string{"--stdin-from-command", "--stdin-filename", file, "--", "pg_dump", "-Fc", "--no-password", "--snapshot=" + snap, c.pgDBName()},
			env:  c.env(), file: file, cleanup: sess.close,
			count: func() (rowCounts, error) {
				out, err := sess.query(pgCountsQuery)
				if err != nil {
					return nil, fmt.Errorf("count rows in %s: %w", c.Database, err)
				}
				return parseCounts(out)
			},
		}, nil
	case kindMySQL:
		c, err := targetConn(t)
		if err != nil {
			return nil, err
		}
		file := c.Database + ".sql"
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("%s: find the plugin's own binary (it counts the dump's rows): %w", t.Name, err)
		}
		dir, err := os.MkdirTemp("", "chima-backup-")
		if err != nil {
			return nil, fmt.Errorf("%s: a temporary folder for the row counts: %w", t.Name, err)
		}
		counts := filepath.Join(dir, "rows.json")
		// restic runs the plugin's binary as a filter in front of
		// mariadb-dump: the rows are counted in the dump's stream, so they
		// are those of its --single-transaction snapshot, whatever is
		// written meanwhile (mariadb-dump's transaction cannot be shared
		// with another session).
		args := []string{"--stdin-from-command", "--stdin-filename", file, "--", self, countRowsArg, counts, "--", "mariadb-dump", "--no-defaults"}
		args = append(args, c.mysqlArgs()...)
		args = append(args, "--single-transaction", "--quick", "--routines", "--triggers", "--events", c.Database)
		return &dumpPlan{args: args, env: c.env(), file: file, cleanup: func() { os.RemoveAll(dir) },
			counted: func() (rowCounts, error) { return readDumpCounts(counts) }}, nil
	case kindSQLite:
		if _, err := os.Stat(t.Path); err != nil {
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		dir, err := os.MkdirTemp("", "chima-backup-")
		if err != nil {
			return nil, fmt.Errorf("temporary copy of %s: %w", t.Name, err)
		}
		cleanup := func() { os.RemoveAll(dir) }
		copyPath := filepath.Join(dir, filepath.Base(t.Path))
		if err := sqliteCopy(ctx, t.Path, copyPath); err != nil {
			cleanup()
			return nil, err
		}
		rows, err := sqliteCheck(ctx, copyPath, false)
		if err != nil {
			cleanup()
			return nil, err
		}
		file := filepath.Base(t.Path)
		return &dumpPlan{
			args: []string{"--stdin-from-command", "--stdin-filename", file, "--", "cat", copyPath},
			rows: rows, file: file, cleanup: cleanup,
		}, nil
	case kindDirectory:
		if st, err := os.Stat(t.Path); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("%s: %s is not a directory", t.Name, t.Path)
		}
		args := []string{}
		for _, e := range t.Excludes {
			args = append(args, "--exclude="+e)
		}
		return &dumpPlan{args: append(args, t.Path), cleanup: func() {}}, nil
	}
	return nil, fmt.Errorf("%s: unknown kind %q", t.Name, t.Kind)
}

// pgCountsQuery counts the rows of every table of the database in one
// query (query_to_xml runs a count per table).
const pgCountsQuery = `SELECT n.nspname || '.' || c.relname,
  (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
ORDER BY 1`

func pgCounts(ctx context.Context, c *dbConn) (rowCounts, error) {
	out, err := tool(ctx, c.env(), c.password, nil, "psql", "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "--no-password", c.pgDBName(), "-c", pgCountsQuery)
	if err != nil {
		return nil, fmt.Errorf("count rows in %s: %w", c.Database, err)
	}
	return parseCounts(out)
}

func parseCounts(out string) (rowCounts, error) {
	rows := rowCounts{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		name, n, ok := strings.Cut(line, "\t")
		if !ok {
			return nil, fmt.Errorf("count rows: unexpected line %q", line)
		}
		v, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("count rows of %s: %q", name, n)
		}
		rows[name] = v
	}
	return rows, nil
}

func mysqlCmdArgs(c *dbConn, extra ...string) []string {
	return append(append([]string{"--no-defaults"}, c.mysqlArgs()...), extra...)
}

func mysqlCounts(ctx context.Context, c *dbConn) (rowCounts, error) {
	out, err := tool(ctx, c.env(), c.password, nil, "mariadb", mysqlCmdArgs(c, "--batch", "--skip-column-names", "-e",
		"SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY 1", c.Database)...)
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", c.Database, err)
	}
	var parts []string
	for _, name := range strings.Fields(out) {
		lit := strings.ReplaceAll(strings.ReplaceAll(name, `\`, `\\`), `'`, `''`)
		ident := "`" + strings.ReplaceAll(name, "`", "``") + "`"
		parts = append(parts, fmt.Sprintf("SELECT '%s', COUNT(*) FROM %s", lit, ident))
	}
	if len(parts) == 0 {
		return rowCounts{}, nil
	}
	out, err = tool(ctx, c.env(), c.password, nil, "mariadb", mysqlCmdArgs(c, "--batch", "--skip-column-names", "-e", strings.Join(parts, " UNION ALL "), c.Database)...)
	if err != nil {
		return nil, fmt.Errorf("count rows in %s: %w", c.Database, err)
	}
	return parseCounts(out)
}

// sqliteCopy makes a consistent copy of the live database src at dst with
// VACUUM INTO, which reads inside one transaction while others write.
func sqliteCopy(ctx context.Context, src, dst string) error {
	db, err := sql.Open("sqlite", "file:"+src+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dst); err != nil {
		return fmt.Errorf("copy %s (VACUUM INTO): %w", src, err)
	}
	return nil
}

// sqliteCheck counts the rows of every table of the SQLite file at path,
// after PRAGMA integrity_check when integrity is set.
func sqliteCheck(ctx context.Context, path string, integrity bool) (rowCounts, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	if integrity {
		var res []string
		rs, err := db.QueryContext(ctx, "PRAGMA integrity_check")
		if err != nil {
			return nil, fmt.Errorf("integrity_check: %w", err)
		}
		for rs.Next() {
			var s string
			if err := rs.Scan(&s); err != nil {
				rs.Close()
				return nil, fmt.Errorf("integrity_check: %w", err)
			}
			res = append(res, s)
		}
		rs.Close()
		if len(res) != 1 || res[0] != "ok" {
			return nil, fmt.Errorf("integrity_check: %s", strings.Join(res, "; "))
		}
	}
	rs, err := db.QueryContext(ctx, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", path, err)
	}
	var names []string
	for rs.Next() {
		var n string
		if err := rs.Scan(&n); err != nil {
			rs.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rs.Close()
	rows := rowCounts{}
	for _, n := range names {
		var c int64
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+strings.ReplaceAll(n, `"`, `""`)+`"`).Scan(&c); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", n, err)
		}
		rows[n] = c
	}
	return rows, nil
}

// sqliteRestoreOnline copies the SQLite file src over the live database dst
// with SQLite's backup API, so that other connections to dst see either the
// old or the new database, never a torn file.
func sqliteRestoreOnline(ctx context.Context, src, dst string) error {
	// From src's connection, backing up "into" dst: modernc's NewRestore
	// (the other direction) deadlocks in backup_step.
	db, err := sql.Open("sqlite", "file:"+src+"?mode=ro")
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer conn.Close()
	type backuper interface {
		NewBackup(string) (*sqlite.Backup, error)
	}
	return conn.Raw(func(dc any) error {
		r, ok := dc.(backuper)
		if !ok {
			return errors.New("the sqlite driver has no backup API")
		}
		bk, err := r.NewBackup("file:" + dst + "?_pragma=busy_timeout(10000)")
		if err != nil {
			return fmt.Errorf("restore into %s: %w", dst, err)
		}
		for {
			more, err := bk.Step(-1)
			if err != nil {
				_ = bk.Finish()
				return fmt.Errorf("restore into %s: %w", dst, err)
			}
			if !more {
				break
			}
		}
		return bk.Finish()
	})
}

// compareRows says how restored rows differ from those recorded.
func compareRows(want, got rowCounts) []string {
	var diffs []string
	names := map[string]bool{}
	for n := range want {
		names[n] = true
	}
	for n := range got {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		w, inWant := want[n]
		g, inGot := got[n]
		switch {
		case !inGot:
			diffs = append(diffs, fmt.Sprintf("table %s is missing (%d rows at backup time)", n, w))
		case !inWant:
			diffs = append(diffs, fmt.Sprintf("table %s was not there at backup time", n))
		case w != g:
			diffs = append(diffs, fmt.Sprintf("table %s has %d rows, %d at backup time", n, g, w))
		}
	}
	return diffs
}

// totalRows adds up the rows of every table.
func (r rowCounts) total() int64 {
	var n int64
	for _, v := range r {
		n += v
	}
	return n
}

// treeStats counts the regular files under dir and their bytes.
func treeStats(dir string) (files, bytes int64, err error) {
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			files++
			bytes += info.Size()
		}
		return nil
	})
	return files, bytes, err
}

// since rounds the time since start for people.
func since(start time.Time) time.Duration {
	d := time.Since(start)
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}
