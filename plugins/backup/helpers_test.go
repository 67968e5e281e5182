package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/sdktest"
)

// services reads the env file .ci/services.sh writes, named by
// $CHIMA_SERVICES_ENV: a skip where it is unset, a failure under CI=true.
func services(t *testing.T) map[string]string {
	t.Helper()
	path := os.Getenv("CHIMA_SERVICES_ENV")
	if path == "" {
		sdktest.Missing(t, "CHIMA_SERVICES_ENV is not set (bash .ci/services.sh up writes the file it names)")
	}
	f, err := os.Open(path)
	if err != nil {
		sdktest.Missing(t, "services env: %v", err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	if env["CHIMA_RESTIC"] == "" {
		sdktest.Missing(t, "%s names no CHIMA_RESTIC", path)
	}
	return env
}

// bed is one test's plugin with its folder, repository and password.
type bed struct {
	t   *testing.T
	bk  *backuper
	h   *sdktest.Harness
	dir string
	env map[string]string
}

// newBed starts the plugin with targets (a YAML map; %[1]s in it is the
// test's folder) and a password file at <dir>/password.
func newBed(t *testing.T, targets string) *bed {
	t.Helper()
	env := services(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "password"), []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{
		"targets":          fmt.Sprintf(targets, dir),
		"restic":           env["CHIMA_RESTIC"],
		"cache_dir":        filepath.Join(dir, "cache"),
		"chima_config_dir": dir,
	}
	b := &backuper{}
	h := sdktest.New(t, b.spec(), settings)
	return &bed{t: t, bk: b, h: h, dir: dir, env: env}
}

// run runs a command and then every job it enqueued.
func (b *bed) run(command string, args sdktest.Args) (sdktest.Result, []sdktest.Result) {
	b.t.Helper()
	res := b.h.Command(command, args)
	if len(res.Errors) > 0 {
		b.t.Fatalf("%s: %v", command, res.Errors)
	}
	return res, b.h.RunEnqueued()
}

// job runs one command's single job and returns its result.
func (b *bed) job(command string, args sdktest.Args) sdktest.Result {
	b.t.Helper()
	_, jobs := b.run(command, args)
	if len(jobs) != 1 {
		b.t.Fatalf("%s ran %d jobs, want 1", command, len(jobs))
	}
	return jobs[0]
}

// restic runs restic on a repository of the test's folder.
func (b *bed) restic(repo string, args ...string) (string, error) {
	b.t.Helper()
	cmd := exec.Command(b.env["CHIMA_RESTIC"], append([]string{"--json", "--no-cache"}, args...)...)
	cmd.Env = append(os.Environ(), "RESTIC_REPOSITORY="+repo, "RESTIC_PASSWORD_FILE="+filepath.Join(b.dir, "password"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// snapshotCount counts the snapshots of repo.
func (b *bed) snapshotCount(repo string) int {
	b.t.Helper()
	out, err := b.restic(repo, "snapshots")
	if err != nil {
		b.t.Fatalf("restic snapshots: %v: %s", err, out)
	}
	return strings.Count(out, `"short_id"`)
}

func allText(results ...sdktest.Result) string {
	var b strings.Builder
	for _, r := range results {
		for _, o := range r.Replies {
			b.WriteString(o.Title + " " + o.Text + " " + o.Code + "\n")
			for _, f := range o.Fields {
				b.WriteString(f.Title + ": " + f.Value + "\n")
			}
		}
		for _, p := range r.Progress {
			b.WriteString(p.Output.Title + " " + p.Output.Text + "\n")
		}
		for _, e := range r.Errors {
			b.WriteString("error: " + e.Summary + " " + e.Detail + "\n")
		}
		b.WriteString("done: " + r.Done.Outcome.String() + " " + r.Done.Detail + "\n")
	}
	return b.String()
}

func outcome(r sdktest.Result) sdk.Outcome { return r.Done.Outcome }

var dbSeq atomic.Int64

// uniqueName is a database name for one test.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), dbSeq.Add(1))
}

// psql runs SQL on the test server's database db.
func psql(t *testing.T, env map[string]string, db, sql string) string {
	t.Helper()
	c, err := parseDSN(kindPostgres, env["CHIMA_TEST_POSTGRES_URL"])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := tool(ctx, c.env(), c.password, nil, "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", c.on(db).pgDBName(), "-c", sql)
	if err != nil {
		t.Fatalf("psql %s: %v", sql, err)
	}
	return strings.TrimSpace(out)
}

// pgDatabase creates a database for the test, dropped after it, and returns
// its name and DSN.
func pgDatabase(t *testing.T, env map[string]string) (string, string) {
	t.Helper()
	name := uniqueName("chima_backup_test")
	psql(t, env, "postgres", `CREATE DATABASE "`+name+`"`)
	t.Cleanup(func() {
		psql(t, env, "postgres", `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`)
		psql(t, env, "postgres", `DROP DATABASE IF EXISTS "`+strings.ReplaceAll(name, "-", "_")+`_scratch" WITH (FORCE)`)
	})
	c, _ := parseDSN(kindPostgres, env["CHIMA_TEST_POSTGRES_URL"])
	return name, c.on(name).url.String()
}

// approval is a granted approval by bob.
func approval() *sdk.Approval {
	return &sdk.Approval{ID: 7, Requester: "tester", Approvers: []string{"bob"}}
}

// setEnv sets an environment variable of the process for the test, as
// t.Setenv does, but lets the test run in parallel: name must be the test's
// own.
func setEnv(t *testing.T, name, value string) {
	t.Helper()
	if err := os.Setenv(name, value); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Unsetenv(name) })
}
