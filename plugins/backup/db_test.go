package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk/sdktest"
)

// pgBed is a bed with a PostgreSQL target "pg" on a database of its own.
func pgBed(t *testing.T) (*bed, string) {
	t.Helper()
	env := services(t)
	name, dsn := pgDatabase(t, env)
	psql(t, env, name, `CREATE TABLE users (id serial PRIMARY KEY, name text);
CREATE SCHEMA billing; CREATE TABLE billing.invoices (id serial PRIMARY KEY, total int);
INSERT INTO users (name) SELECT 'u' || g FROM generate_series(1, 250) g;
INSERT INTO billing.invoices (total) SELECT g FROM generate_series(1, 40) g;`)
	envName := "CHIMA_TEST_PG_DSN_" + strings.ToUpper(name)
	setEnv(t, envName, dsn)
	b := newBed(t, `pg:
  kind: postgres
  dsn_env: `+envName+`
  repository: %[1]s/repo
  password_file: %[1]s/password
  init: true
  scratch: `+name+`_scratch
`)
	return b, name
}

func TestPostgresBackupVerifyComparesRowCountsAndRestoreGoesToTheScratchDatabase(t *testing.T) {
	t.Parallel()
	b, name := pgBed(t)
	job := b.job("backup", sdktest.Args{"target": "pg"})
	if outcome(job) != "success" || !strings.Contains(job.Text(), "2 tables, 290 rows") {
		t.Fatalf("backup: %s", allText(job))
	}
	v := b.job("backup:verify", sdktest.Args{"target": "pg"})
	if outcome(v) != "success" || !strings.Contains(v.Text(), "restored into a scratch database, 2 tables, row counts match (290 rows)") {
		t.Fatalf("verify: %s", allText(v))
	}
	// The verification's database is gone.
	if left := psql(t, b.env, "postgres", `SELECT count(*) FROM pg_database WHERE datname LIKE 'chima_verify_%'`); left != "0" {
		t.Errorf("%s verification databases left behind", left)
	}
	r := b.job("backup:restore", sdktest.Args{"target": "pg"})
	if outcome(r) != "success" || !strings.Contains(r.Text(), "into the scratch database "+name+"_scratch") {
		t.Fatalf("restore: %s", allText(r))
	}
	if got := psql(t, b.env, name+"_scratch", `SELECT count(*) FROM billing.invoices`); got != "40" {
		t.Fatalf("scratch billing.invoices has %s rows, want 40", got)
	}
}

func TestPostgresRestoreInPlaceNeedsApprovalAndBringsTheRowsBack(t *testing.T) {
	t.Parallel()
	b, name := pgBed(t)
	if j := b.job("backup", sdktest.Args{"target": "pg"}); outcome(j) != "success" {
		t.Fatalf("backup: %s", allText(j))
	}
	psql(t, b.env, name, `DELETE FROM users WHERE id > 10`)
	res := b.h.Command("backup:restore", sdktest.Args{"target": "pg", "to": "pg"})
	if res.ApprovalNeeded == nil || len(b.h.Host.Enqueued()) != 1 {
		t.Fatalf("an unapproved restore over pg: %s", allText(res))
	}
	b.h.ApprovedCommand("backup:restore", sdktest.Args{"target": "pg", "inplace": "in place", "confirm": "pg"}, approval())
	jobs := b.h.RunEnqueued()
	if len(jobs) != 1 || outcome(jobs[0]) != "success" {
		t.Fatalf("approved restore: %s", allText(jobs...))
	}
	if got := psql(t, b.env, name, `SELECT count(*) FROM users`); got != "250" {
		t.Fatalf("users has %s rows after the restore, want 250", got)
	}
}

func TestFailingDumpFailsTheBackupAndStoresNoSnapshot(t *testing.T) {
	b, _ := pgBed(t)
	// A pg_dump that writes part of a dump, then fails: first on PATH.
	bin := filepath.Join(b.dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nprintf 'PGDMP partial dump'\necho 'pg_dump: error: connection lost' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "pg_dump"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	job := b.job("backup", sdktest.Args{"target": "pg"})
	if outcome(job) != "failure" || !strings.Contains(job.Text(), "Backup of pg failed") || !strings.Contains(job.Text(), "command failed") {
		t.Fatalf("backup with a failing dump: %s", allText(job))
	}
	if n := b.snapshotCount(filepath.Join(b.dir, "repo")); n != 0 {
		t.Fatalf("%d snapshots after a failed dump; want none", n)
	}
}

func TestMariaDBBackupVerifyAndRestoreIntoScratch(t *testing.T) {
	t.Parallel()
	env := services(t)
	if env["CHIMA_TEST_MARIADB_DSN"] == "" {
		sdktest.Missing(t, "no CHIMA_TEST_MARIADB_DSN")
	}
	name := uniqueName("chima_backup_test")
	server, err := parseDSN(kindMySQL, env["CHIMA_TEST_MARIADB_DSN"]+"mysql")
	if err != nil {
		t.Fatal(err)
	}
	sqlOn := func(db, q string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := tool(ctx, server.env(), "", nil, "mariadb", mysqlCmdArgs(server, "--batch", "--skip-column-names", "-e", q, db)...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	sqlOn("mysql", "CREATE DATABASE `"+name+"`")
	t.Cleanup(func() {
		sqlOn("mysql", "DROP DATABASE IF EXISTS `"+name+"`")
		sqlOn("mysql", "DROP DATABASE IF EXISTS `"+name+"_scratch`")
	})
	sqlOn(name, "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, v INT); INSERT INTO items (v) VALUES (1),(2),(3),(4),(5); CREATE TABLE tags (n VARCHAR(10)); INSERT INTO tags VALUES ('x')")
	setEnv(t, "CHIMA_TEST_MARIADB_TARGET", env["CHIMA_TEST_MARIADB_DSN"]+name)
	b := newBed(t, fmt.Sprintf(`db:
  kind: mariadb
  dsn_env: CHIMA_TEST_MARIADB_TARGET
  repository: %%[1]s/repo
  password_file: %%[1]s/password
  init: true
  scratch: %s_scratch
`, name))
	job := b.job("backup", sdktest.Args{"target": "db"})
	if outcome(job) != "success" || !strings.Contains(job.Text(), "2 tables, 6 rows") {
		t.Fatalf("backup: %s", allText(job))
	}
	v := b.job("backup:verify", sdktest.Args{"target": "db"})
	if outcome(v) != "success" || !strings.Contains(v.Text(), "row counts match (6 rows)") {
		t.Fatalf("verify: %s", allText(v))
	}
	r := b.job("backup:restore", sdktest.Args{"target": "db"})
	if outcome(r) != "success" {
		t.Fatalf("restore: %s", allText(r))
	}
	if got := sqlOn(name+"_scratch", "SELECT COUNT(*) FROM items"); got != "5" {
		t.Fatalf("scratch items has %s rows, want 5", got)
	}
}

func TestPostgresRowCountsAreTheDumpsOwnWhileRowsAreBeingWritten(t *testing.T) {
	t.Parallel()
	b, name := pgBed(t)
	// A writer committing a row every 10 ms through the whole backup.
	done := make(chan struct{})
	go func() {
		defer close(done)
		psql(t, b.env, name, `DO $$ BEGIN FOR i IN 1..600 LOOP INSERT INTO users (name) VALUES ('w'); COMMIT; PERFORM pg_sleep(0.01); END LOOP; END $$`)
	}()
	job := b.job("backup", sdktest.Args{"target": "pg"})
	<-done
	if outcome(job) != "success" {
		t.Fatalf("backup: %s", allText(job))
	}
	if got := psql(t, b.env, name, `SELECT count(*) FROM users`); got != "850" {
		t.Fatalf("users = %s after the writer; want 850 (the writer ran before the backup ended?)", got)
	}
	v := b.job("backup:verify", sdktest.Args{"target": "pg"})
	if outcome(v) != "success" || !strings.Contains(v.Text(), "row counts match") {
		t.Fatalf("verify of a backup taken while rows were written: %s", allText(v))
	}
}

func TestMariaDBRowCountsAreTheDumpsOwnWhileRowsAreBeingWritten(t *testing.T) {
	t.Parallel()
	env := services(t)
	if env["CHIMA_TEST_MARIADB_DSN"] == "" {
		sdktest.Missing(t, "no CHIMA_TEST_MARIADB_DSN")
	}
	name := uniqueName("chima_backup_test")
	server, err := parseDSN(kindMySQL, env["CHIMA_TEST_MARIADB_DSN"]+"mysql")
	if err != nil {
		t.Fatal(err)
	}
	sqlOn := func(db, q string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := tool(ctx, server.env(), "", nil, "mariadb", mysqlCmdArgs(server, "--batch", "--skip-column-names", "-e", q, db)...)
		return strings.TrimSpace(out), err
	}
	must := func(db, q string) string {
		t.Helper()
		out, err := sqlOn(db, q)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	must("mysql", "CREATE DATABASE `"+name+"`")
	t.Cleanup(func() {
		must("mysql", "DROP DATABASE IF EXISTS `"+name+"`")
		must("mysql", "DROP DATABASE IF EXISTS `"+name+"_scratch`")
	})
	must(name, "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, v TEXT) ENGINE=InnoDB; CREATE TABLE quiet (n INT) ENGINE=InnoDB;"+
		" INSERT INTO items (v) SELECT CONCAT('it''s (', seq, '); ok') FROM seq_1_to_5000; INSERT INTO quiet VALUES (1)")
	setEnv(t, "CHIMA_TEST_MARIADB_BUSY", env["CHIMA_TEST_MARIADB_DSN"]+name)
	b := newBed(t, fmt.Sprintf(`db:
  kind: mariadb
  dsn_env: CHIMA_TEST_MARIADB_BUSY
  repository: %%[1]s/repo
  password_file: %%[1]s/password
  init: true
  scratch: %s_scratch
`, name))
	// A writer committing rows in batches until the backup has ended, so that
	// the dump runs while rows are written whatever the machine's speed. The
	// counts must be the dump's own: verify compares them with the restore.
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := sqlOn(name, strings.Repeat("INSERT INTO items (v) VALUES ('w),(;'); DO SLEEP(0.005); ", 20)); err != nil {
				done <- err
				return
			}
		}
	}()
	job := b.job("backup", sdktest.Args{"target": "db"})
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if outcome(job) != "success" {
		t.Fatalf("backup: %s", allText(job))
	}
	var total int64
	fmt.Sscan(must(name, "SELECT COUNT(*) FROM items"), &total)
	raw, _ := b.h.Host.KVValue(lastKey("db"))
	var last lastState
	if err := json.Unmarshal(raw, &last); err != nil || last.Backup == nil {
		t.Fatalf("no last backup of db in the KV: %s %v", raw, err)
	}
	rec := last.Backup
	if n := rec.Rows["items"]; n < 5000 || n > total || rec.Rows["quiet"] != 1 {
		t.Fatalf("rows recorded %v; want items between 5000 and %d (the rows before and after the writer), quiet 1", rec.Rows, total)
	}
	v := b.job("backup:verify", sdktest.Args{"target": "db"})
	if outcome(v) != "success" || !strings.Contains(v.Text(), "row counts match") {
		t.Fatalf("verify of a backup taken while rows were written: %s", allText(v))
	}
}

// TestDatabaseBackupProgressEstimatesPercentAndETAFromThePreviousBackup
// backs up a database twice through a dump restic has no total for; the
// second backup's progress, one message edited, gives the bytes read, a
// percent and an ETA estimated from the first's size.
func TestDatabaseBackupProgressEstimatesPercentAndETAFromThePreviousBackup(t *testing.T) {
	b, _ := pgBed(t)
	// A pg_dump that writes 12 MiB, pausing after 6 when the file pause
	// is there: restic reports bytes as it cuts chunks (about 1 MiB).
	bin := filepath.Join(b.dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	pause := filepath.Join(b.dir, "pause")
	script := "#!/bin/sh\nhead -c 6291456 /dev/urandom\nif [ -e " + pause + " ]; then sleep 4; fi\nhead -c 6291456 /dev/urandom\n"
	if err := os.WriteFile(filepath.Join(bin, "pg_dump"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	if j := b.job("backup", sdktest.Args{"target": "pg"}); outcome(j) != "success" {
		t.Fatalf("first backup: %s", allText(j))
	}
	if err := os.WriteFile(pause, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	j := b.job("backup", sdktest.Args{"target": "pg"})
	if outcome(j) != "success" {
		t.Fatalf("second backup: %s", allText(j))
	}
	var estimated string
	for _, p := range j.Progress {
		if p.Key != "backup" {
			t.Errorf("progress %q under key %q; want every edit of the one backup message", p.Output.Text, p.Key)
		}
		if strings.Contains(p.Output.Text, "of ≈12.0 MiB") && strings.Contains(p.Output.Text, "%") && strings.Contains(p.Output.Text, "ETA ≈") {
			estimated = p.Output.Text
		}
	}
	if estimated == "" {
		t.Fatalf("no progress gave bytes of ≈12.0 MiB, a percent and an ETA:\n%s", allText(j))
	}
	t.Logf("progress: %s", estimated)
}

func TestProgressTextEstimatesWhatResticCannotKnow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		s        backupStatus
		expected int64
		elapsed  time.Duration
		want     string
	}{
		{"restic's own total, percent and ETA", backupStatus{TotalBytes: 4 << 20, BytesDone: 1 << 20, PercentDone: 0.25, SecondsRemaining: 9, TotalFiles: 3, FilesDone: 1},
			0, 0, "1.0 MiB of 4.0 MiB, 1 of 3 files, 25%, ETA 9s"},
		{"a dump estimated from the previous backup", backupStatus{BytesDone: 1 << 20}, 4 << 20, 2 * time.Second,
			"1.0 MiB of ≈4.0 MiB (the previous backup's size), ≈25%, ETA ≈6s"},
		{"a dump grown past the previous backup", backupStatus{BytesDone: 5 << 20}, 4 << 20, 2 * time.Second,
			"5.0 MiB of ≈4.0 MiB (the previous backup's size), ≈99%"},
		{"a first dump, with nothing to estimate from", backupStatus{BytesDone: 1 << 20}, 0, 2 * time.Second, "1.0 MiB read"},
		{"nothing read yet", backupStatus{}, 4 << 20, time.Second, "0 B read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.progressText(tt.expected, tt.elapsed); got != tt.want {
				t.Fatalf("progressText = %q; want %q", got, tt.want)
			}
		})
	}
}

// TestPostgresVerifyFailsWhenTheRestoredRowsAreNotThoseCountedAtBackupTime
// backs up through a pg_dump that leaves out the rows of users (as a dump
// run with the wrong options does): the counts recorded at backup time
// say 250, the restored table has none, and the verification fails and is
// recorded as failed.
func TestPostgresVerifyFailsWhenTheRestoredRowsAreNotThoseCountedAtBackupTime(t *testing.T) {
	b, _ := pgBed(t)
	real, err := exec.LookPath("pg_dump")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(b.dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nexec " + real + " --exclude-table-data=users \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "pg_dump"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	if j := b.job("backup", sdktest.Args{"target": "pg"}); outcome(j) != "success" || !strings.Contains(j.Text(), "2 tables, 290 rows") {
		t.Fatalf("backup: %s", allText(j))
	}
	v := b.job("backup:verify", sdktest.Args{"target": "pg"})
	if outcome(v) != "failure" || !strings.Contains(v.Text(), "table public.users has 0 rows, 250 at backup time") {
		t.Fatalf("verify of a dump without the rows of users: %s", allText(v))
	}
	list := b.h.Command("backups", sdktest.Args{"target": "pg"})
	if code := list.Replies[0].Code; !strings.Contains(code, "FAILED") {
		t.Fatalf("backups:\n%s\nwant the backup's verification recorded as failed", code)
	}
}
