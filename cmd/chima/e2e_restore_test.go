package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sqliteRows counts the rows of table in the SQLite file at path.
func sqliteRows(t *testing.T, path, table string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// sqliteRun runs statements on the SQLite file at path.
func sqliteRun(t *testing.T, path string, stmts ...string) {
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

// TestAnInPlaceRestoreWantsTheNameTypedBackThenAnApprovalOnTheConsole runs
// the built bot with the backup plugin and an SQLite target: alice backs it
// up and loses rows; her in-place restore is refused until she types the
// target's name back, then waits for bob's approval, and once he approves
// it takes a safety backup and brings the rows back.
func TestAnInPlaceRestoreWantsTheNameTypedBackThenAnApprovalOnTheConsole(t *testing.T) {
	restic := resticForE2E(t)
	plugin := backupPlugin(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	sqliteRun(t, dbPath, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", "INSERT INTO users (name) VALUES ('a'), ('b'), ('c')")
	t.Setenv("CHIMA_E2E_BACKUP_PASSWORD", "e2e-restore-password")
	cfg := backupConfig(t, restic, plugin, filepath.Join(dir, "cache"), fmt.Sprintf(`app-db:
  kind: sqlite
  path: %s
  repository: %s
  password_env: BACKUP_PASSWORD
  init: true
  scratch: %s
`, dbPath, filepath.Join(dir, "repo"), filepath.Join(dir, "scratch")))
	// bob approves restores: the backup plugin asks for approval naming no
	// approvers, so those of the command's policy apply, whatever its when
	// (this one's own when, a restore of another target over app-db, is
	// not used here).
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), "roles:", "people:\n  alice: [shell:alice]\n  bob: [shell:bob]\nroles:", 1) +
		"  - command: backup:restore\n    when: {to: [app-db]}\n    approval: {approvers: [bob]}\n"
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := chima(t, "config", "validate", "--config", cfg); code != 0 {
		t.Fatalf("config validate: exit %d\n%s%s", code, out, stderr)
	}

	c := startConsole(t, cfg)
	c.say(t, "chima backup app-db")
	c.expect(t, "Backed up app-db: snapshot")
	sqliteRun(t, dbPath, "DELETE FROM users WHERE id > 1") // the accident

	// restore is the alias issue #11 names; the answer gives the full name.
	c.say(t, "chima restore app-db in place")
	c.expect(t, "Nothing was restored. Restoring app-db in place replaces its live data: type its name back to go ahead: backup:restore app-db in place confirm app-db") // the console drops the backticks
	c.say(t, "chima backup:restore app-db in place confirm app-db")
	c.expect(t, "Approval needed (request 1)")
	c.expect(t, "alice asks to run backup:restore app-db in place confirm app-db: restoring app-db in place replaces its live data")
	if got := sqliteRows(t, dbPath, "users"); got != 1 {
		t.Fatalf("users = %d before the approval; want it untouched (1)", got)
	}

	c.say(t, "/user bob")
	c.say(t, "chima approve 1")
	c.expect(t, "bob approved request 1; running backup:restore app-db in place confirm app-db for alice.")
	c.expect(t, "Safety backup of app-db: snapshot")
	c.expect(t, "Restored app-db")
	if got := sqliteRows(t, dbPath, "users"); got != 3 {
		t.Fatalf("users = %d after the restore; want the backup's 3", got)
	}
}
