package main

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestAuditJSONUsesSnakeCaseKeysAndNamesTheUnitOfDurations(t *testing.T) {
	cfg := writeConfig(t, "")
	if out, stderr, code := chima(t, "send", "--config", cfg, "chima hello json"); code != 0 {
		t.Fatalf("send: exit %d\n%s%s", code, out, stderr)
	}
	out, stderr, code := chima(t, "audit", "--config", cfg, "--json")
	if code != 0 {
		t.Fatalf("audit --json: exit %d: %s", code, stderr)
	}
	var entries []map[string]any
	if err := json.Unmarshal([]byte(out), &entries); err != nil || len(entries) != 1 {
		t.Fatalf("audit --json = %s (%v), want one entry", out, err)
	}
	e := entries[0]
	var keys []string
	for k := range e {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"adapter", "command", "decision", "detail", "duration_ms", "id", "outcome", "person", "plugin", "request_id", "room", "text", "time", "triggered_by", "user_id", "user_name", "via"}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys = %v, want %v", keys, want)
	}
	if d, ok := e["duration_ms"].(float64); !ok || d <= 0 {
		t.Errorf("duration_ms = %v, want a positive number of milliseconds", e["duration_ms"])
	}
	if e["user_id"] != "alice" || e["plugin"] != "hello" || e["outcome"] != "ok" || e["text"] != "hello json" {
		t.Errorf("entry = %v", e)
	}
	if ts, _ := e["time"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(ts) {
		t.Errorf("time = %q, want RFC 3339 in UTC", e["time"])
	}
}

func TestHelpNamesTheAdaptersAndPluginsThatShipAndNoOthers(t *testing.T) {
	out, stderr, code := chima(t, "--help")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, dir := range []string{"../../adapters", "../../plugins"} {
		shipped, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range shipped {
			// internal holds packages the plugins share, not a plugin.
			if d.IsDir() && d.Name() != "internal" && !strings.Contains(out, d.Name()) {
				t.Errorf("help does not mention %s/%s, which ships:\n%s", dir, d.Name(), out)
			}
		}
	}
	// Adapters and plugins planned once, or named in the design, that do not
	// ship: help may name them only once they exist.
	for name, dir := range map[string]string{
		"Slack": "../../adapters/slack", "Mattermost": "../../adapters/mattermost",
		"CI status": "../../plugins/cistatus", "backup": "../../plugins/backup",
	} {
		if _, err := os.Stat(dir); err != nil && strings.Contains(strings.ToLower(out), strings.ToLower(name)) {
			t.Errorf("help mentions %s, and %s does not exist:\n%s", name, dir, out)
		}
	}
	for _, cmd := range []string{"run", "send", "explain", "plugins", "config", "audit"} {
		if !regexp.MustCompile(`(?m)^  ` + cmd + ` `).MatchString(out) {
			t.Errorf("help does not list the %s command", cmd)
		}
	}
}

func TestSendExitsAsItsHelpSaysOnAUsageError(t *testing.T) {
	help, _, code := chima(t, "send", "--help")
	if code != 0 || !strings.Contains(help, "2 on a usage error: no message") {
		t.Fatalf("send --help (exit %d) does not promise exit 2 for a missing message:\n%s", code, help)
	}
	cfg := writeConfig(t, "")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no message", []string{"send", "--config", cfg}, "no message to send"},
		{"message in several arguments", []string{"send", "--config", cfg, "chima", "hello"}, `quote it, as in chima send "chima hello"`},
		{"unknown flag", []string{"send", "--config", cfg, "--rooom", "ops", "chima hello x"}, "unknown flag: --rooom"},
		{"not addressed to the bot", []string{"send", "--config", cfg, "hello"}, "not addressed to the bot"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, code := chima(t, c.args...)
			if code != 2 || !strings.Contains(stderr, c.want) || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr:\n%s\nwant exit 2, nothing on stdout and %q", code, out, stderr, c.want)
			}
		})
	}
}
