package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/sdktest"
)

func TestTargetsSettingsRejectMistakesNamingTheKeyAndTarget(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	good := `files: {kind: directory, path: files, repository: repo, password_file: pw, scratch: scratch}`
	tests := []struct {
		name, targets string
		want          string // a problem "key: message" must match this
	}{
		{"no targets at all", ``, `^targets: is required`},
		{"not a map", `[1, 2]`, `^targets: `},
		{"an unknown key", `files: {kind: directory, path: files, repository: repo, password_file: pw, scratch: s, exclude: [x]}`, `^targets\.files\.exclude: unknown key \(did you mean "excludes"\?\)$`},
		{"an unknown key in the second target", "a: {kind: directory, path: files, repository: r, password_file: pw, scratch: s}\nb:\n  kind: directory\n  pathh: files\n", `^targets\.b\.pathh: unknown key \(did you mean "path"\?\)$`},
		{"a wrong type deep in a target", `files: {kind: directory, path: files, repository: repo, password_file: pw, scratch: s, retention: {keep_daily: seven}}`, `^targets\.files\.retention\.keep_daily: want an integer, got "seven"$`},
		{"a bad alert_after", `files: {kind: directory, path: files, repository: repo, password_file: pw, scratch: s, alert_after: soon}`, `^targets\.files\.alert_after: want a duration`},
		{"an unknown kind", `files: {kind: oracle, repository: repo, password_file: pw}`, `^targets\.files\.kind: "oracle" is not a kind`},
		{"no repository", `files: {kind: directory, path: files, password_file: pw, scratch: s}`, `^targets\.files\.repository: is required`},
		{"no password", `files: {kind: directory, path: files, repository: repo, scratch: s}`, `^targets\.files\.password_file: the repository needs a password`},
		{"a password file that is not there", `files: {kind: directory, path: files, repository: repo, password_file: nope, scratch: s}`, `^targets\.files\.password_file: .*no such file`},
		{"a bad cron", `files: {kind: directory, path: files, repository: repo, password_file: pw, scratch: s, schedule: "0 3 * *"}`, `^targets\.files\.schedule: bad cron spec`},
		{"scratch inside the directory", `files: {kind: directory, path: files, repository: repo, password_file: pw, scratch: files/restore}`, `^targets\.files\.scratch: .* overlaps`},
		{"a database without a DSN", `db: {kind: postgres, repository: repo, password_file: pw}`, `^targets\.db\.dsn_env: is required`},
		{"a DSN secret that is not set", `db: {kind: mariadb, dsn_env: CHIMA_TEST_NOT_SET_DSN, repository: repo, password_file: pw}`, `^targets\.db\.dsn_env: environment variable CHIMA_TEST_NOT_SET_DSN is not set`},
		{"a bad target name", `Files: {kind: directory, path: files, repository: repo, password_file: pw, scratch: s}`, `^targets\.Files: "Files" is not a target name`},
		{"a bad keep_within", `files: {kind: directory, path: files, repository: repo, password_file: pw, scratch: s, retention: {keep_within: forever}}`, `^targets\.files\.retention\.keep_within: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, problems := checkStrings(map[string]string{"targets": tt.targets, "chima_config_dir": dir}, true)
			wantProblem(t, problems, tt.want)
		})
	}
	t.Run("a good target in YAML or JSON", func(t *testing.T) {
		for _, text := range []string{good, `{"files": {"kind": "directory", "path": "files", "repository": "repo", "password_file": "pw", "scratch": "scratch"}}`} {
			targets, problems := checkStrings(map[string]string{"targets": text, "chima_config_dir": dir}, true)
			if len(problems) > 0 {
				t.Fatalf("%s: problems %v", text, problems)
			}
			if got := targets["files"]; got == nil || got.Path != filepath.Join(dir, "files") || got.Repository != filepath.Join(dir, "repo") {
				t.Fatalf("%s: target %+v; want paths resolved against the config's folder", text, got)
			}
		}
	})
	t.Run("an unknown setting", func(t *testing.T) {
		_, problems := checkStrings(map[string]string{"targets": good, "chima_config_dir": dir, "tragets": "x"}, true)
		if len(problems) != 1 || problems[0].String() != `tragets: unknown key (did you mean "targets"?)` {
			t.Fatalf("problems %v; want one about tragets", problems)
		}
	})
}

func TestResticOlderThan018IsRefusedWithAClearMessage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fake := func(version string) string {
		path := filepath.Join(dir, "restic-"+version)
		if err := os.WriteFile(path, []byte("#!/bin/sh\necho 'restic "+version+" compiled with go1.22 on linux/amd64'\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tt := range []struct {
		version string
		ok      bool
	}{{"0.14.0", false}, {"0.17.3", false}, {"0.18.0", true}, {"0.18.1", true}, {"1.0.0", true}} {
		_, got, err := resticBin(fake(tt.version), "")
		switch {
		case tt.ok && (err != nil || got != tt.version):
			t.Errorf("resticBin(%s) = %q, %v; want it accepted", tt.version, got, err)
		case !tt.ok && (!errors.Is(err, ErrResticVersion) || !strings.Contains(err.Error(), "restic "+tt.version) || !strings.Contains(err.Error(), "0.18 or newer")):
			t.Errorf("resticBin(%s) = %v; want ErrResticVersion naming %s and 0.18", tt.version, err, tt.version)
		}
	}
	old := fake("0.17.3")
	resp, err := sdk.NewServer((&backuper{}).spec(), nil, nil).Validate(context.Background(), &pluginv1.ValidateRequest{Settings: map[string]string{
		"restic": old, "targets": `x: {kind: directory, path: ` + dir + `, repository: r, password_file: ` + old + `, scratch: /tmp/s}`}})
	if err == nil && len(resp.GetProblems()) > 0 {
		var ps []string
		for _, p := range resp.GetProblems() {
			ps = append(ps, p.GetKey()+": "+p.GetMessage())
		}
		err = errors.New(strings.Join(ps, "\n"))
	}
	if err == nil || !strings.Contains(err.Error(), "restic: ") || !strings.Contains(err.Error(), "0.18 or newer") {
		t.Fatalf("validate with restic 0.17 = %v; want a problem keyed restic", err)
	}
}

func TestResticsRealExitCodesBecomeTypedErrors(t *testing.T) {
	t.Parallel()
	env := services(t)
	dir := t.TempDir()
	for name, body := range map[string]string{"password": "right", "wrong": "wrong"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	repo := filepath.Join(dir, "repo")
	good := &Target{Name: "t", Repository: repo, PasswordFile: filepath.Join(dir, "password")}
	r := &restic{bin: env["CHIMA_RESTIC"], cacheDir: filepath.Join(dir, "cache"), lockWait: time.Second}
	if _, err := r.run(context.Background(), good, runOpts{}, "init"); err != nil {
		t.Fatalf("init: %v", err)
	}
	// holdLock runs a backup whose dump never ends, holding its lock on
	// repo until the test ends.
	holdLock := func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = r.run(ctx, good, runOpts{onStdout: func([]byte) {}}, "backup", "--stdin-from-command", "--stdin-filename", "x", "--", "sleep", "120")
		}()
		t.Cleanup(func() { cancel(); <-done })
		deadline := time.Now().Add(30 * time.Second)
		for {
			if locks, _ := os.ReadDir(filepath.Join(repo, "locks")); len(locks) > 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("restic took no lock")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	tests := []struct {
		name   string
		target *Target
		setup  func(t *testing.T) context.Context
		args   []string
		code   int
		want   error
	}{
		{"a fatal error is 1", good, nil, []string{"cat", "blob", strings.Repeat("ab", 32)}, 1, ErrResticFailed},
		{"a missing repository is 10", &Target{Name: "t", Repository: filepath.Join(dir, "nope"), PasswordFile: good.PasswordFile}, nil, []string{"snapshots"}, 10, ErrNoRepository},
		{"a repository locked by another restic is 11", good, func(t *testing.T) context.Context {
			holdLock(t)
			return context.Background()
		}, []string{"prune"}, 11, ErrLocked},
		{"a wrong password is 12", &Target{Name: "t", Repository: repo, PasswordFile: filepath.Join(dir, "wrong")}, nil, []string{"snapshots"}, 12, ErrWrongPassword},
		{"a cancelled run is 130", good, func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				// Cancelled once the backup holds its lock: restic is
				// running by then, not starting.
				defer cancel()
				for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					if locks, _ := os.ReadDir(filepath.Join(repo, "locks")); len(locks) > 0 {
						return
					}
				}
			}()
			return ctx
		}, []string{"backup", "--stdin-from-command", "--stdin-filename", "y", "--", "sleep", "120"}, 130, ErrInterrupted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.setup != nil {
				ctx = tt.setup(t)
			}
			_, err := r.run(ctx, tt.target, runOpts{onStdout: func([]byte) {}}, tt.args...)
			var re *ResticError
			if !errors.As(err, &re) || re.Code != tt.code || !errors.Is(err, tt.want) {
				t.Fatalf("restic %s = %v; want exit %d, %v", tt.args[0], err, tt.code, tt.want)
			}
		})
	}
}

const dirTargets = `files:
  kind: directory
  path: %[1]s/data
  excludes: ["*.tmp"]
  repository: %[1]s/repo
  password_file: %[1]s/password
  init: true
  scratch: %[1]s/scratch
`

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDirectoryBackupIsListedVerifiedAndRestoredIntoScratchWithoutItsExcludes(t *testing.T) {
	t.Parallel()
	b := newBed(t, dirTargets)
	data := filepath.Join(b.dir, "data")
	writeFiles(t, data, map[string]string{"a.txt": "alpha", "sub/b.txt": "bravo!", "junk.tmp": "excluded"})

	res, jobs := b.run("backup", sdktest.Args{"target": "files"})
	if !strings.Contains(res.Text(), "Queued the backup of files") {
		t.Fatalf("backup said %q", res.Text())
	}
	if len(jobs) != 1 || outcome(jobs[0]) != "success" {
		t.Fatalf("backup job: %s", allText(jobs...))
	}
	final := jobs[0].Replies[len(jobs[0].Replies)-1]
	if !regexp.MustCompile(`Backed up files: snapshot [0-9a-f]{8}, 11 B \(.* added\) in .*\. 2 files\.`).MatchString(final.Text) {
		t.Errorf("final message %q; want snapshot id, size, data added, duration and files", final.Text)
	}

	list := b.h.Command("backups", sdktest.Args{"target": "files"})
	table := list.Replies[0].Code
	if !strings.HasPrefix(table, "ID") || !strings.Contains(table, "Tester") || !strings.Contains(table, "not verified") {
		t.Fatalf("backups:\n%s", table)
	}

	v := b.job("backup:verify", sdktest.Args{"target": "files"})
	if outcome(v) != "success" || !strings.Contains(v.Text(), "restore --verify ok, 2 files, 11 B") {
		t.Fatalf("verify: %s", allText(v))
	}
	list = b.h.Command("backups", sdktest.Args{"target": "files"})
	if !regexp.MustCompile(`ok \d\d-\d\d \d\d:\d\d \(restore `).MatchString(list.Replies[0].Code) {
		t.Fatalf("backups after verify:\n%s", list.Replies[0].Code)
	}

	r := b.job("backup:restore", sdktest.Args{"target": "files"})
	if outcome(r) != "success" {
		t.Fatalf("restore: %s", allText(r))
	}
	m := regexp.MustCompile(`into (\S+) in `).FindStringSubmatch(r.Text())
	if m == nil || !strings.HasPrefix(m[1], filepath.Join(b.dir, "scratch")) {
		t.Fatalf("restore said %q; want the scratch folder it restored into", r.Text())
	}
	got, err := os.ReadFile(filepath.Join(m[1], "sub/b.txt"))
	if err != nil || string(got) != "bravo!" {
		t.Fatalf("restored sub/b.txt = %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(m[1], "junk.tmp")); !os.IsNotExist(err) {
		t.Errorf("the excluded junk.tmp was restored (%v)", err)
	}
}

const sqliteTargets = `app-db:
  kind: sqlite
  path: %[1]s/app.db
  repository: %[1]s/repo
  password_file: %[1]s/password
  init: true
  scratch: %[1]s/scratch
`

func sqliteExec(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func sqliteCount(t *testing.T, path, table string) int64 {
	t.Helper()
	rows, err := sqliteCheck(context.Background(), path, false)
	if err != nil {
		t.Fatal(err)
	}
	return rows[table]
}

func TestSQLiteBackupRecordsRowCountsAndVerifyChecksThem(t *testing.T) {
	t.Parallel()
	b := newBed(t, sqliteTargets)
	path := filepath.Join(b.dir, "app.db")
	sqliteExec(t, path, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", "CREATE TABLE orders (id INTEGER PRIMARY KEY)",
		"INSERT INTO users (name) VALUES ('a'), ('b'), ('c')", "INSERT INTO orders DEFAULT VALUES")

	job := b.job("backup", sdktest.Args{"target": "app-db"})
	if outcome(job) != "success" || !strings.Contains(job.Text(), "2 tables, 4 rows") {
		t.Fatalf("backup: %s", allText(job))
	}
	var rec *record
	keys := []string{}
	for _, k := range b.h.Host.Enqueued() {
		_ = k
	}
	snaps, err := (&restic{bin: b.env["CHIMA_RESTIC"], cacheDir: filepath.Join(b.dir, "cache")}).snapshots(context.Background(), &Target{Name: "app-db", Repository: filepath.Join(b.dir, "repo"), PasswordFile: filepath.Join(b.dir, "password")})
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots: %v %v", snaps, err)
	}
	raw, ok := b.h.Host.KVValue(recordKey("app-db", snaps[0].ID))
	if !ok {
		t.Fatalf("no record of %s in the KV (keys %v)", snaps[0].ID, keys)
	}
	if err := json.Unmarshal(raw, &rec); err != nil || rec.Rows["users"] != 3 || rec.Rows["orders"] != 1 {
		t.Fatalf("record %s: %+v, %v; want users 3, orders 1", raw, rec, err)
	}

	v := b.job("backup:verify", sdktest.Args{"target": "app-db"})
	if outcome(v) != "success" || !strings.Contains(v.Text(), "integrity_check ok, 2 tables, row counts match (4 rows)") {
		t.Fatalf("verify: %s", allText(v))
	}

	// A record that disagrees with what the backup holds fails the
	// verification, and `backups` says so.
	rec.Rows["users"] = 5
	raw, _ = json.Marshal(rec)
	if _, err := b.h.Host.KVSet(context.Background(), &pluginv1.KVSetRequest{Key: recordKey("app-db", rec.ID), Value: raw}); err != nil {
		t.Fatal(err)
	}
	v = b.job("backup:verify", sdktest.Args{"target": "app-db", "snapshot": short(rec.ID)})
	if outcome(v) != "failure" || !strings.Contains(v.Text(), "table users has 3 rows, 5 at backup time") {
		t.Fatalf("verify of a mismatching record: %s", allText(v))
	}
	list := b.h.Command("backups", sdktest.Args{"target": "app-db"})
	if !strings.Contains(list.Replies[0].Code, "FAILED") {
		t.Fatalf("backups after a failed verify:\n%s", list.Replies[0].Code)
	}
}

func TestInPlaceRestoreIsRefusedWithoutApprovalAndRunsWithItAfterASafetyBackup(t *testing.T) {
	t.Parallel()
	b := newBed(t, sqliteTargets)
	path := filepath.Join(b.dir, "app.db")
	sqliteExec(t, path, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", "INSERT INTO users (name) VALUES ('a'), ('b'), ('c')")
	if j := b.job("backup", sdktest.Args{"target": "app-db"}); outcome(j) != "success" {
		t.Fatalf("backup: %s", allText(j))
	}
	sqliteExec(t, path, "DELETE FROM users WHERE id > 1") // the accident

	res := b.h.Command("backup:restore", sdktest.Args{"target": "app-db", "inplace": "in place", "confirm": "app-db"})
	if res.ApprovalNeeded == nil || !strings.Contains(res.ApprovalNeeded.Options.Reason, "in place replaces its live data") {
		t.Fatalf("restore in place without approval: %s (approval %v)", allText(res), res.ApprovalNeeded)
	}
	if n := len(b.h.Host.Enqueued()); n != 1 {
		t.Fatalf("an unapproved restore enqueued a job (%d jobs)", n)
	}
	if got := sqliteCount(t, path, "users"); got != 1 {
		t.Fatalf("users = %d after an unapproved restore; want it untouched (1)", got)
	}

	res = b.h.ApprovedCommand("backup:restore", sdktest.Args{"target": "app-db", "inplace": "in place", "confirm": "app-db"}, approval())
	jobs := b.h.RunEnqueued()
	if len(jobs) != 1 || outcome(jobs[0]) != "success" {
		t.Fatalf("approved restore: %s %s", allText(res), allText(jobs...))
	}
	text := jobs[0].Text()
	if !strings.Contains(text, "Safety backup of app-db: snapshot") || !strings.Contains(text, "approved by bob") {
		t.Fatalf("approved restore said %q; want the safety backup and the approver", text)
	}
	if got := sqliteCount(t, path, "users"); got != 3 {
		t.Fatalf("users = %d after the restore; want the backup's 3", got)
	}
	if n := b.snapshotCount(filepath.Join(b.dir, "repo")); n != 2 {
		t.Fatalf("%d snapshots; want the backup and the safety backup", n)
	}
}

func TestWrongPasswordIsAClearErrorAndThePasswordIsNowhere(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-the-wrong-one-0451"
	setEnv(t, "CHIMA_TEST_BACKUP_PASSWORD", secret)
	b := newBed(t, `files:
  kind: directory
  path: %[1]s
  repository: %[1]s/repo
  password_env: CHIMA_TEST_BACKUP_PASSWORD
  scratch: /tmp/chima-never-used
`)
	if out, err := b.restic(filepath.Join(b.dir, "repo"), "init"); err != nil {
		t.Fatalf("restic init: %v: %s", err, out)
	}
	job := b.job("backup", sdktest.Args{"target": "files"})
	all := allText(job)
	if outcome(job) != "failure" || !strings.Contains(all, "wrong password for the repository of files") || !strings.Contains(all, "the secret CHIMA_TEST_BACKUP_PASSWORD") {
		t.Fatalf("backup with a wrong password: %s", all)
	}
	list := b.h.Command("backups", sdktest.Args{"target": "files"})
	all += allText(list)
	if !strings.Contains(allText(list), "wrong password") {
		t.Fatalf("backups with a wrong password: %s", allText(list))
	}
	for _, p := range b.h.Host.Posts() {
		all += p.Output.Text
	}
	if strings.Contains(all, secret) {
		t.Fatalf("the password is in the output:\n%s", all)
	}
}

func TestMissingRepositoryIsAClearError(t *testing.T) {
	t.Parallel()
	b := newBed(t, `files: {kind: directory, path: "%[1]s", repository: "%[1]s/nowhere", password_file: "%[1]s/password", scratch: /tmp/chima-never-used}`)
	job := b.job("backup", sdktest.Args{"target": "files"})
	if outcome(job) != "failure" || !strings.Contains(job.Text(), "the repository of files does not exist") || !strings.Contains(job.Text(), "init: true") {
		t.Fatalf("backup to a missing repository: %s", allText(job))
	}
}

func TestTwoBackupsOfOneTargetQueueOnTheTargetsKey(t *testing.T) {
	t.Parallel()
	b := newBed(t, dirTargets+`other:
  kind: directory
  path: %[1]s/data
  repository: %[1]s/repo2
  password_file: %[1]s/password
  scratch: %[1]s/scratch2
`)
	writeFiles(t, filepath.Join(b.dir, "data"), map[string]string{"a": "a"})
	first := b.h.Command("backup", sdktest.Args{"target": "files"})
	second := b.h.Command("backup", sdktest.Args{"target": "files"})
	other := b.h.Command("backup", sdktest.Args{"target": "other"})
	jobs := b.h.Host.Enqueued()
	if len(jobs) != 3 || jobs[0].QueueKey != jobs[1].QueueKey || jobs[0].QueueKey == jobs[2].QueueKey {
		t.Fatalf("queue keys %v; want one per target", jobs)
	}
	if !strings.Contains(second.Text(), "behind job #") || strings.Contains(first.Text(), "behind") || strings.Contains(other.Text(), "behind") {
		t.Fatalf("replies %q / %q / %q; want only the second to say it waits", first.Text(), second.Text(), other.Text())
	}
}

func TestTargetSchedulesBecomePluginSchedulesAndAScheduledBackupSaysWhichTookIt(t *testing.T) {
	t.Parallel()
	b := newBed(t, `files:
  kind: directory
  path: %[1]s/data
  repository: %[1]s/repo
  password_file: %[1]s/password
  init: true
  scratch: %[1]s/scratch
  schedule: "0 3 * * *"
  verify_schedule: "@every 6h"
  room: ops
  retention: {keep_last: 2}
`)
	writeFiles(t, filepath.Join(b.dir, "data"), map[string]string{"a": "a"})
	var backup, verify *pluginv1.ScheduleSpec
	for _, s := range b.h.Manifest.GetSchedules() {
		switch s.GetName() {
		case "backup-files":
			backup = s
		case "verify-files":
			verify = s
		}
	}
	if backup == nil || backup.GetCron() != "0 3 * * *" || backup.GetJobKind() != jobBackup || backup.GetQueueKey() != queueKey("files") || backup.GetNotify().GetRoom() != "ops" {
		t.Fatalf("backup schedule %v", backup)
	}
	if verify == nil || verify.GetCron() != "@every 6h" || verify.GetJobKind() != jobVerify {
		t.Fatalf("verify schedule %v", verify)
	}
	for i := 0; i < 3; i++ {
		if res := b.h.Job(backup.GetJobKind(), backup.GetPayload()); outcome(res) != "success" {
			t.Fatalf("scheduled backup %d: %s", i, allText(res))
		}
	}
	list := b.h.Command("backups", sdktest.Args{"target": "files"})
	if !strings.Contains(list.Replies[0].Code, "schedule backup-files") {
		t.Fatalf("backups:\n%s", list.Replies[0].Code)
	}
	if n := b.snapshotCount(filepath.Join(b.dir, "repo")); n != 2 {
		t.Fatalf("%d snapshots after 3 backups with keep_last 2", n)
	}
	if res := b.h.Job(verify.GetJobKind(), verify.GetPayload()); outcome(res) != "success" {
		t.Fatalf("scheduled verify: %s", allText(res))
	}
}

// wantProblem fails the test unless one of problems matches the regexp want.
func wantProblem(t *testing.T, problems []sdk.Problem, want string) {
	t.Helper()
	re := regexp.MustCompile(want)
	var got []string
	for _, p := range problems {
		got = append(got, p.String())
		if re.MatchString(p.String()) {
			return
		}
	}
	t.Fatalf("problems %q; want one matching %s", got, want)
}

// checkStrings checks settings as an older host sends them (every value a
// string, targets YAML or JSON), decoded by the SDK as the plugin's are.
func checkStrings(strs map[string]string, strict bool) (map[string]*Target, []sdk.Problem) {
	var s settings
	if err := sdk.DecodeSettings("", strs, &s); err != nil {
		var se *sdk.SettingsError
		if !errors.As(err, &se) {
			return nil, []sdk.Problem{{Message: err.Error()}}
		}
		return nil, se.Problems
	}
	return check(&s, strict)
}

// TestNestedTargetsDecodeLikeTheirStringForm checks that targets written as
// nested YAML (settings_json) and as the old YAML string give the same
// targets.
func TestNestedTargetsDecodeLikeTheirStringForm(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	nested := `{"chima_config_dir": ` + strconv.Quote(dir) + `, "targets": {"db": {"kind": "sqlite", "path": "db.sqlite", "repository": "repo",
		"password_file": "pw", "scratch": "scratch", "alert_after": "26h", "retention": {"keep_last": 3, "keep_daily": 7}}}}`
	old := map[string]string{"chima_config_dir": dir, "targets": "db:\n  kind: sqlite\n  path: db.sqlite\n  repository: repo\n  password_file: pw\n" +
		"  scratch: scratch\n  alert_after: 26h\n  retention: {keep_last: 3, keep_daily: 7}\n"}
	var fromJSON settings
	if err := sdk.DecodeSettings(nested, nil, &fromJSON); err != nil {
		t.Fatal(err)
	}
	a, problems := check(&fromJSON, true)
	if len(problems) > 0 {
		t.Fatalf("nested: %v", problems)
	}
	b, problems := checkStrings(old, true)
	if len(problems) > 0 {
		t.Fatalf("string form: %v", problems)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("nested %+v\nstring form %+v", a["db"], b["db"])
	}
	if got := a["db"]; got.Retention.KeepDaily != 7 || got.AlertAfter != 26*time.Hour || got.Path != filepath.Join(dir, "db.sqlite") {
		t.Fatalf("target %+v", got)
	}
}
