package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chimaops/chima/plugins/backup/s3fake"
)

// readmeS3Entry is the backup plugin's entry of the README's S3 example,
// as an operator copies it into chima.yaml's plugins.
func readmeS3Entry(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range strings.Split(string(b), "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if strings.Contains(block, "AWS_SECRET_ACCESS_KEY: S3_SECRET_KEY") {
			return block
		}
	}
	t.Fatal("README.md has no S3 example of the backup plugin (a yaml block mapping AWS_SECRET_ACCESS_KEY: S3_SECRET_KEY)")
	return ""
}

// s3Config writes a chima.yaml with the README's S3 example pointed at the
// fake S3 at endpoint, the built plugin and restic; its SQLite file,
// data/app.db, is beside it.
func s3Config(t *testing.T, restic, plugin, endpoint string) string {
	t.Helper()
	entry := readmeS3Entry(t)
	for old, repl := range map[string]string{
		"path: bin/plugins/backup": "path: " + plugin,
		"http://127.0.0.1:9000":    endpoint,
	} {
		if !strings.Contains(entry, old) {
			t.Fatalf("the README's S3 example has no %q:\n%s", old, entry)
		}
		entry = strings.Replace(entry, old, repl, 1)
	}
	cfg := writeConfig(t, "")
	dir := filepath.Dir(cfg)
	entry = strings.Replace(entry, "    settings:\n", "    settings:\n      restic: "+restic+"\n      cache_dir: "+filepath.Join(dir, "cache")+"\n", 1)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), "roles:", entry+"roles:", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	sqliteRun(t, filepath.Join(dir, "data/app.db"), "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", "INSERT INTO users (name) VALUES ('a'), ('b')")
	return cfg
}

// TestBackupToAnS3RepositoryFromTheREADMEOnTheConsole runs the built bot
// with the README's S3 example against a fake S3 that checks every
// request's signature: the first backup creates the bucket and the
// repository, the backup is listed, verified and restored into scratch;
// then a bot with a wrong secret key is told so, and stores nothing.
func TestBackupToAnS3RepositoryFromTheREADMEOnTheConsole(t *testing.T) {
	restic := resticForE2E(t)
	plugin := backupPlugin(t)
	const (
		accessKey = "AKIACHIMAE2E00000001"
		secretKey = "e2e-s3-secret-key-5521-Qw"
		password  = "e2e-s3-repository-password-9034"
		wrong     = "e2e-s3-wrong-secret-key-7780"
	)
	s3, err := s3fake.New(accessKey, secretKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s3.Close)
	t.Setenv("CHIMA_BACKUP_PASSWORD", password)
	t.Setenv("CHIMA_S3_ACCESS_KEY", accessKey)
	t.Setenv("CHIMA_S3_SECRET_KEY", secretKey)

	cfg := s3Config(t, restic, plugin, s3.URL)
	if out, stderr, code := chima(t, "config", "validate", "--config", cfg); code != 0 {
		t.Fatalf("config validate: exit %d\n%s%s", code, out, stderr)
	}
	var seen strings.Builder
	c := startConsole(t, cfg)
	expect := func(c *console, want string) string {
		t.Helper()
		line := c.expect(t, want)
		seen.WriteString(line + "\n")
		return line
	}
	c.say(t, "chima backup app-db")
	expect(c, "Backed up app-db: snapshot")
	if objects, err := s3.Objects("backups", "app-db/snapshots/"); err != nil || len(objects) != 1 {
		t.Fatalf("snapshots in the bucket: %v, %v; want the backup's one (the bucket made by init)", objects, err)
	}
	c.say(t, "chima backups app-db")
	expect(c, "ID")
	if row := expect(c, "alice"); !strings.Contains(row, "not verified") {
		t.Errorf("backups row %q; want it taken by alice, not verified", row)
	}
	c.say(t, "chima backup:verify app-db")
	expect(c, "Verified app-db")
	c.say(t, "chima backup:restore app-db")
	if line := expect(c, "Restored app-db"); !strings.Contains(line, filepath.Join(filepath.Dir(cfg), "data/scratch")) {
		t.Errorf("restore said %q; want the scratch folder beside chima.yaml", line)
	}

	t.Run("a wrong secret key", func(t *testing.T) {
		t.Setenv("CHIMA_S3_SECRET_KEY", wrong)
		before, err := s3.Objects("backups", "")
		if err != nil {
			t.Fatal(err)
		}
		refused := s3.Rejected("SignatureDoesNotMatch")
		c := startConsole(t, s3Config(t, restic, plugin, s3.URL))
		c.say(t, "chima backup app-db")
		line := expect(c, "Backup of app-db failed")
		if !strings.Contains(line, "refused access with its credentials: check the secret S3_ACCESS_KEY (AWS_ACCESS_KEY_ID) and the secret S3_SECRET_KEY (AWS_SECRET_ACCESS_KEY)") {
			t.Fatalf("backup with a wrong secret key said %q", line)
		}
		if s3.Rejected("SignatureDoesNotMatch") == refused {
			t.Fatal("the fake S3 refused no signature: the backup never reached it")
		}
		if after, err := s3.Objects("backups", ""); err != nil || len(after) != len(before) {
			t.Fatalf("the bucket had %d objects, and %d after the refused backup", len(before), len(after))
		}
	})
	for _, secret := range []string{secretKey, password, wrong} {
		if strings.Contains(seen.String(), secret) {
			t.Fatalf("a secret reached the console:\n%s", seen.String())
		}
	}
	// Nor the store: the jobs, their records and the audit, in the
	// database file and its write-ahead log.
	for _, name := range []string{"chima.db", "chima.db-wal"} {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(cfg), name))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if len(b) == 0 && name == "chima.db" {
			t.Fatalf("the store %s is empty", name)
		}
		for _, secret := range []string{secretKey, password} {
			if strings.Contains(string(b), secret) {
				t.Fatalf("a secret is in the store's %s", name)
			}
		}
	}
}

// TestBackupConfigValidateRefusesRepositoryOptionsByTheirKey checks that
// `chima config validate` runs the plugin's checks of repository_env and
// repository_options: an option restic does not know, and one whose value
// would reach a shell, are named by their key.
func TestBackupConfigValidateRefusesRepositoryOptionsByTheirKey(t *testing.T) {
	restic := resticForE2E(t)
	plugin := backupPlugin(t)
	t.Setenv("CHIMA_BACKUP_PASSWORD", "x")
	t.Setenv("CHIMA_S3_ACCESS_KEY", "AKIACHIMAE2E00000002")
	t.Setenv("CHIMA_S3_SECRET_KEY", "y-secret")
	tests := []struct{ options, want string }{
		{"[s3.bucket-lookup=path, s3.regoin=us-east-1]", "settings.targets.app-db.repository_options[1]: restic does not know the option s3.regoin (`restic options` lists them)"},
		{`["s3.region=$(touch /tmp/x)"]`, "settings.targets.app-db.repository_options[0]: the value of s3.region must be one plain word"},
	}
	for _, tt := range tests {
		cfg := s3Config(t, restic, plugin, "http://127.0.0.1:9")
		b, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Replace(string(b), "[s3.bucket-lookup=path, s3.region=us-east-1]", tt.options, 1)
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := chima(t, "config", "validate", "--config", cfg)
		want := fmt.Sprintf("plugin backup: %s:%d: %s", cfg, lineOf(t, cfg, "repository_options:"), tt.want)
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("config validate with options %s: exit %d\n%s\nwant exit 1 and %q", tt.options, code, stderr, want)
		}
	}
}
