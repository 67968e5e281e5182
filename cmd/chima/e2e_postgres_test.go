package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/chimaops/chima/core/store/storetest"
)

// postgresSchema creates a schema of its own on the test PostgreSQL and
// returns a DSN that uses it; the schema is dropped when the test ends.
func postgresSchema(t *testing.T) string { return storetest.PostgresSchema(t, "e2e") }

// onPostgres rewrites the store of a config written by writeConfig to the
// PostgreSQL database whose DSN is in the environment variable env.
func onPostgres(t *testing.T, cfg, env string) {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^store:\n  path: .*\n`)
	if !re.Match(b) {
		t.Fatalf("no store block to rewrite in %s", cfg)
	}
	b = re.ReplaceAll(b, []byte("store: {driver: postgres, dsn_env: "+env+"}\n"))
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBotOnPostgresRefusesASecondBotAndComesBackAfterAKill9(t *testing.T) {
	dsn := postgresSchema(t)
	t.Setenv("CHIMA_E2E_DSN", dsn)
	cfg := writeConfig(t, "")
	onPostgres(t, cfg, "CHIMA_E2E_DSN")

	c := startConsole(t, cfg)
	c.say(t, "chima hello world")
	c.expect(t, "Hello, world!")

	_, stderr, code := chima(t, "run", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, "another chima run is using the store") {
		t.Errorf("a second bot on the database: exit %d, stderr %q; want it refused, saying why", code, stderr)
	}
	if strings.Contains(stderr, dsn) {
		t.Errorf("the refusal shows the DSN: %q", stderr)
	}
	if e := waitAuditEntry(t, cfg, "hello"); e.Text != "hello world" || e.Outcome != "ok" {
		t.Errorf("audit read from PostgreSQL beside the bot: %+v, want hello world, ok", e)
	}

	// kill -9: PostgreSQL drops the dead bot's session and its lock with
	// it, so the restart is never refused.
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	c = startConsole(t, cfg)
	c.say(t, "chima hello again")
	c.expect(t, "Hello, again!")
	if got := len(auditJSONOf(t, cfg, "--command", "hello")); got < 2 {
		t.Errorf("audit after the restart has %d hello entries, want both runs' (the store kept the first)", got)
	}
}

func TestBotRefusesAPostgresStoreWhoseDSNVariableIsUnset(t *testing.T) {
	cfg := writeConfig(t, "")
	onPostgres(t, cfg, "CHIMA_E2E_UNSET_DSN")
	_, stderr, code := chima(t, "run", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, "CHIMA_E2E_UNSET_DSN") {
		t.Errorf("exit %d, stderr %q; want a refusal naming the variable", code, stderr)
	}
}
