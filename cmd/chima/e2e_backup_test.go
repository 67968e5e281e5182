package main

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/chimaops/chima/sdk/sdktest"
)

var buildBackupOnce sync.Once

// backupPlugin builds the backup plugin into binDir, once.
func backupPlugin(t *testing.T) string {
	t.Helper()
	path := filepath.Join(binDir, "plugins/backup")
	buildBackupOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", path, "../../plugins/backup").CombinedOutput()
		if err != nil {
			t.Fatalf("build the backup plugin: %v\n%s", err, out)
		}
	})
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the backup plugin was not built: %v", err)
	}
	return path
}

// resticForE2E is the restic of .ci/services.sh's env file.
func resticForE2E(t *testing.T) string {
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
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CHIMA_RESTIC="); ok {
			return v
		}
	}
	sdktest.Missing(t, "%s names no CHIMA_RESTIC", path)
	return ""
}

// backupConfig writes a chima.yaml with the backup plugin and targets (a
// YAML map, nested under settings as an operator writes it), whose
// repository password is the secret BACKUP_PASSWORD, read from
// CHIMA_E2E_BACKUP_PASSWORD.
func backupConfig(t *testing.T, restic, plugin, cache, targets string) string {
	t.Helper()
	cfg := writeConfig(t, "")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	indented := "        " + strings.ReplaceAll(strings.TrimRight(targets, "\n"), "\n", "\n        ") + "\n"
	entry := fmt.Sprintf(`  - name: backup
    path: %s
    secrets: {BACKUP_PASSWORD: CHIMA_E2E_BACKUP_PASSWORD}
    settings:
      restic: %s
      cache_dir: %s
      targets:
%s`, plugin, restic, cache, indented)
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), "roles:", entry+"roles:", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestBackupConfigValidateNamesTheTargetAndKeyAtFault checks that `chima
// config validate` runs the plugin's checks of its targets.
func TestBackupConfigValidateNamesTheTargetAndKeyAtFault(t *testing.T) {
	restic := resticForE2E(t)
	plugin := backupPlugin(t)
	dir := t.TempDir()
	t.Setenv("CHIMA_E2E_BACKUP_PASSWORD", "x")
	cfg := backupConfig(t, restic, plugin, filepath.Join(dir, "cache"), fmt.Sprintf(`files:
  kind: directory
  path: %s
  repository: %s/repo
  password_env: BACKUP_PASSWORD
  scratch: %s/scratch
  schedul: "@daily"
db:
  kind: oracle
  repository: %s/repo
  password_env: BACKUP_PASSWORD
`, dir, dir, dir, dir))
	_, stderr, code := chima(t, "config", "validate", "--config", cfg)
	want := fmt.Sprintf(`plugin backup: %s:%d: settings.targets.files.schedul: unknown key (did you mean "schedule"?)`, cfg, lineOf(t, cfg, "schedul:"))
	if code != 1 || !strings.Contains(stderr, want) {
		t.Fatalf("config validate: exit %d\n%s\nwant exit 1 and\n%s", code, stderr, want)
	}
	// The strict decoding stops at the first bad key; a good file shows the
	// next problem.
	cfg = backupConfig(t, restic, plugin, filepath.Join(dir, "cache"), fmt.Sprintf(`db:
  kind: oracle
  repository: %s/repo
  password_env: BACKUP_PASSWORD
`, dir))
	_, stderr, code = chima(t, "config", "validate", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, fmt.Sprintf(`plugin backup: %s:%d: settings.targets.db.kind: "oracle" is not a kind`, cfg, lineOf(t, cfg, "kind: oracle"))) {
		t.Fatalf("config validate: exit %d\n%s", code, stderr)
	}
}

// TestBackupOfADirectoryAndAnSQLiteDatabaseOnTheConsole runs the built bot
// with the backup plugin and a directory and an SQLite target, and backs
// both up, lists and verifies them from the console.
func TestBackupOfADirectoryAndAnSQLiteDatabaseOnTheConsole(t *testing.T) {
	restic := resticForE2E(t)
	plugin := backupPlugin(t)
	dir := t.TempDir()
	files := filepath.Join(dir, "files")
	if err := os.MkdirAll(filepath.Join(files, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"a.txt": "alpha", "sub/b.txt": "bravo", "skip.log": "excluded"} {
		if err := os.WriteFile(filepath.Join(files, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dbPath := filepath.Join(dir, "app.db")
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", "INSERT INTO users (name) VALUES ('a'), ('b')"} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	const secret = "e2e-repository-password-7731"
	t.Setenv("CHIMA_E2E_BACKUP_PASSWORD", secret)

	targets := fmt.Sprintf(`files:
  kind: directory
  path: %s
  excludes: ["*.log"]
  repository: %s
  password_env: BACKUP_PASSWORD
  init: true
  scratch: %s
app-db:
  kind: sqlite
  path: %s
  repository: %s
  password_env: BACKUP_PASSWORD
  init: true
  scratch: %s
`, files, filepath.Join(dir, "repo"), filepath.Join(dir, "scratch"), dbPath, filepath.Join(dir, "repo"), filepath.Join(dir, "scratch"))
	cfg := backupConfig(t, restic, plugin, filepath.Join(dir, "cache"), targets)
	if out, stderr, code := chima(t, "config", "validate", "--config", cfg); code != 0 {
		t.Fatalf("config validate: exit %d\n%s%s", code, out, stderr)
	}

	c := startConsole(t, cfg)
	var seen strings.Builder
	expect := func(want string) string {
		t.Helper()
		line := c.expect(t, want)
		seen.WriteString(line + "\n")
		return line
	}
	c.say(t, "chima backup files")
	expect("Queued the backup of files")
	expect("Backed up files: snapshot")
	c.say(t, "chima backup app-db")
	expect("Backed up app-db: snapshot")
	c.say(t, "chima backups app-db")
	expect("ID")
	row := expect("alice")
	if !strings.Contains(row, "not verified") || !strings.Contains(row, " 1 ") {
		t.Errorf("backups row %q; want 1 table, taken by alice, not verified", row)
	}
	c.say(t, "chima backup:verify app-db")
	expect("Verified app-db")
	c.say(t, "chima backup:verify files")
	expect("restore --verify ok, 2 files, 10 B")
	c.say(t, "chima backups app-db")
	expect("ID")
	if row := expect("alice"); !strings.Contains(row, " ok ") {
		t.Errorf("backups row after verify %q; want it verified ok", row)
	}
	if strings.Contains(seen.String(), secret) {
		t.Fatalf("the repository password reached the console:\n%s", seen.String())
	}
}

// lineOf is the 1-based line of the first line of file that contains s.
func lineOf(t *testing.T, file, s string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line with %q", file, s)
	return 0
}

// pidsOf lists the processes under pid (its children, theirs, …) whose
// program (the first word of its command line) ends with s.
func pidsOf(t *testing.T, pid int, s string) []int {
	t.Helper()
	var out []int
	for _, child := range childPIDs(t, pid) {
		argv, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", child))
		if prog, _, _ := strings.Cut(string(argv), "\x00"); strings.HasSuffix(prog, s) {
			out = append(out, child)
		}
		out = append(out, pidsOf(t, child, s)...)
	}
	return out
}

// waitEnded fails unless every process of pids has ended (a failure guard
// of 30s applies; it asserts no duration).
func waitEnded(t *testing.T, what string, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				t.Fatalf("%s %d still runs: %s", what, pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestBackupPluginKilledMidBackupTellsTheRoomLeavesNoLockAndTheNextBackupRuns
// runs the built bot with a PostgreSQL target whose pg_dump streams
// slowly, kills the backup plugin (or the whole bot, then starts it again)
// with SIGKILL in the middle of a backup, and checks that the restarted
// plugin tells the room, that restic and the
// dump are gone with no lock left in the repository, and that the next
// backup of the target runs.
func TestBackupPluginKilledMidBackupTellsTheRoomLeavesNoLockAndTheNextBackupRuns(t *testing.T) {
	t.Run("the plugin", func(t *testing.T) { backupKilledMidBackup(t, false) })
	// The bot killed takes its plugin, restic and the dump with it; the
	// restarted bot marks the job interrupted and the plugin clears up.
	t.Run("the bot", func(t *testing.T) { backupKilledMidBackup(t, true) })
}

// backupKilledMidBackup kills the backup plugin, or with killBot the whole
// bot (restarting it on the same config), while restic holds the lock.
func backupKilledMidBackup(t *testing.T, killBot bool) {
	restic := resticForE2E(t)
	plugin := backupPlugin(t)
	pgURL := ""
	if f, err := os.ReadFile(os.Getenv("CHIMA_SERVICES_ENV")); err == nil {
		for _, l := range strings.Split(string(f), "\n") {
			if v, ok := strings.CutPrefix(l, "CHIMA_TEST_POSTGRES_URL="); ok {
				pgURL = v
			}
		}
	}
	if pgURL == "" {
		sdktest.Missing(t, "the services env names no CHIMA_TEST_POSTGRES_URL")
	}
	realDump, err := exec.LookPath("pg_dump")
	if err != nil {
		sdktest.Missing(t, "pg_dump: %v", err)
	}
	dir := t.TempDir()
	name := fmt.Sprintf("chima_e2e_kill_%d", os.Getpid())
	psqlRun := func(db, stmt string) {
		t.Helper()
		u := strings.Replace(pgURL, "/postgres?", "/"+db+"?", 1)
		if out, err := exec.Command("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", u, "-c", stmt).CombinedOutput(); err != nil {
			t.Fatalf("psql %s: %v: %s", stmt, err, out)
		}
	}
	psqlRun("postgres", `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`)
	psqlRun("postgres", `CREATE DATABASE "`+name+`"`)
	t.Cleanup(func() { psqlRun("postgres", `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`) })
	psqlRun(name, "CREATE TABLE users (id int); INSERT INTO users SELECT generate_series(1, 50)")

	// A pg_dump first on PATH: while the file slow is there it writes the
	// start of a dump and then nothing (its pid in dump.pid), else it is
	// the real one.
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	slow, pidFile := filepath.Join(dir, "slow"), filepath.Join(dir, "dump.pid")
	script := fmt.Sprintf("#!/bin/sh\nif [ -e %s ]; then echo $$ > %s; printf 'PGDMP streaming'; exec sleep 120; fi\nexec %s \"$@\"\n", slow, pidFile, realDump)
	if err := os.WriteFile(filepath.Join(bin, "pg_dump"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(slow, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	t.Setenv("CHIMA_E2E_BACKUP_PASSWORD", "e2e-kill-password")
	t.Setenv("CHIMA_E2E_BACKUP_DSN", strings.Replace(pgURL, "/postgres?", "/"+name+"?", 1))
	repo := filepath.Join(dir, "repo")
	cfg := backupConfig(t, restic, plugin, filepath.Join(dir, "cache"), fmt.Sprintf(`pg:
  kind: postgres
  dsn_env: BACKUP_DSN
  repository: %s
  password_env: BACKUP_PASSWORD
  init: true
  scratch: %s_scratch
`, repo, name))
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), "secrets: {BACKUP_PASSWORD: CHIMA_E2E_BACKUP_PASSWORD}", "secrets: {BACKUP_PASSWORD: CHIMA_E2E_BACKUP_PASSWORD, BACKUP_DSN: CHIMA_E2E_BACKUP_DSN}", 1)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := chima(t, "config", "validate", "--config", cfg); code != 0 {
		t.Fatalf("config validate: exit %d\n%s%s", code, out, stderr)
	}

	c := startConsole(t, cfg)
	c.say(t, "chima backup pg")
	c.expect(t, "Queued the backup of pg")
	// The dump streams: restic holds the repository's lock.
	deadline := time.Now().Add(30 * time.Second)
	var dumpPID int
	for {
		if b, err := os.ReadFile(pidFile); err == nil {
			dumpPID, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		locks, _ := os.ReadDir(filepath.Join(repo, "locks"))
		if dumpPID > 0 && len(locks) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backup never got to its dump (dump pid %d, %d locks)", dumpPID, len(locks))
		}
		time.Sleep(20 * time.Millisecond)
	}
	plugins := pidsOf(t, c.cmd.Process.Pid, "plugins/backup")
	if len(plugins) != 1 {
		t.Fatalf("backup plugin processes %v; want one", plugins)
	}
	restics := pidsOf(t, plugins[0], restic)
	if len(restics) == 0 {
		t.Fatal("no restic runs under the backup plugin")
	}
	if killBot {
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
		c = startConsole(t, cfg)
	} else if err := syscall.Kill(plugins[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The restarted plugin tells the job's room.
	told := c.expect(t, "The backup job of pg (job #1) was interrupted")
	if !strings.Contains(told, "no snapshot was recorded") {
		t.Fatalf("the room was told %q; want it to say no snapshot was recorded", told)
	}
	waitEnded(t, "restic", restics...)
	waitEnded(t, "the dump", dumpPID)
	resticOut := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(restic, append([]string{"--no-cache"}, args...)...)
		cmd.Env = append(os.Environ(), "RESTIC_REPOSITORY="+repo, "RESTIC_PASSWORD=e2e-kill-password")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("restic %s: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if out := resticOut("list", "locks", "--no-lock"); out != "" {
		var locks []string
		for _, id := range strings.Fields(out) {
			locks = append(locks, resticOut("cat", "lock", id, "--no-lock"))
		}
		t.Fatalf("locks left in the repository (restic pids %v, the room told %q):\n%s", restics, told, strings.Join(locks, "\n"))
	}
	if out := resticOut("snapshots", "--json", "--no-lock"); strings.Count(out, `"short_id"`) != 0 {
		t.Fatalf("the interrupted backup stored a snapshot: %s", out)
	}

	if err := os.Remove(slow); err != nil {
		t.Fatal(err)
	}
	c.say(t, "chima backup pg")
	c.expect(t, "Backed up pg: snapshot")
	if out := resticOut("snapshots", "--json", "--no-lock"); strings.Count(out, `"short_id"`) != 1 {
		t.Fatalf("snapshots after the next backup: %s; want its one", out)
	}
}
