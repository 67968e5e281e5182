package main

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

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
