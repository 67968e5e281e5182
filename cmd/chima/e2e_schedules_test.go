package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestScheduleRunsItsCommandOnTheClockAndTheAuditSaysSo runs the built bot
// with a schedule every two seconds and checks the console, the audit log
// and both listings.
func TestScheduleRunsItsCommandOnTheClockAndTheAuditSaysSo(t *testing.T) {
	cfg := writeConfig(t, `schedules:
  - {name: greet, cron: "@every 2s", command: "hello scheduled", room: general, as: alice}
`)
	c := startConsole(t, cfg)
	c.expect(t, "Hello, scheduled!")

	// The audit log is written in batches, and a command's outcome fills
	// its entry after the reply: wait, bounded, for an ended entry.
	var found auditJSON
	deadline := time.Now().Add(15 * time.Second)
	for found.ID == 0 {
		out, stderr, code := chima(t, "audit", "--config", cfg, "--json")
		if code != 0 {
			t.Fatalf("audit: exit %d: %s", code, stderr)
		}
		var entries []auditJSON
		if err := json.Unmarshal([]byte(out), &entries); err != nil {
			t.Fatalf("audit --json: %v\n%s", err, out)
		}
		for _, e := range entries {
			if e.Via == "schedule greet" && e.Outcome != "running" {
				found = e
				break
			}
		}
		if found.ID == 0 && time.Now().After(deadline) {
			t.Fatalf("no ended audit entry via schedule greet in:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if found.UserID != "alice" || found.Room != "general" || found.Adapter != "shell" || found.Plugin != "hello" || found.Outcome != "ok" {
		t.Errorf("scheduled audit entry = %+v; want hello/hello by alice in shell:general, ok", found)
	}

	// chima schedules: the next run, and the last run's outcome once one
	// has ended.
	deadline = time.Now().Add(15 * time.Second)
	for {
		out, stderr, code := chima(t, "schedules", "--config", cfg)
		if code != 0 {
			t.Fatalf("schedules: exit %d: %s", code, stderr)
		}
		if strings.Contains(out, "greet: `hello scheduled` in general as alice, @every 2s") && strings.Contains(out, "next: ") &&
			regexp.MustCompile(`last: [0-9-]+ [0-9:]+ \S+, ok`).MatchString(out) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chima schedules:\n%s\nwant greet with its next run and last outcome ok", out)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The chat command lists it too.
	c.say(t, "chima schedules")
	c.expect(t, "greet: hello scheduled in general as alice") // the console shows code plain
}

func TestScheduleMistakesStopTheBotAtStartNamingFileAndKey(t *testing.T) {
	tests := []struct {
		name, entry string
		want        string
	}{
		{"a command no plugin has", `{name: n, cron: "@daily", command: "frobnicate now", room: general, as: alice}`,
			`chima\.yaml:\d+: schedules\[0\]\.command: "frobnicate now" is no command of any plugin`},
		{"a command with wrong arguments", `{name: n, cron: "@daily", command: "spam lots", room: general, as: alice}`,
			`chima\.yaml:\d+: schedules\[0\]\.command: "spam lots" does not run a plugin command`},
		{"a bad cron", `{name: n, cron: "0 3 * *", command: "hello", room: general, as: alice}`,
			`chima\.yaml:\d+: schedules\[0\]\.cron: bad cron spec`},
		{"an unknown time zone", `{name: n, cron: "@daily", timezone: Nowhere/Land, command: "hello", room: general, as: alice}`,
			`chima\.yaml:\d+: schedules\[0\]\.timezone: unknown time zone "Nowhere/Land"`},
		{"a room of an unknown adapter", `{name: n, cron: "@daily", command: "hello", room: "slack:ops", as: alice}`,
			`chima\.yaml:\d+: schedules\[0\]\.room: "slack:ops": no adapter named "slack"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeConfig(t, "schedules:\n  - "+tt.entry+"\n")
			_, stderr, code := chima(t, "run", "--config", cfg)
			if code == 0 || !regexp.MustCompile(tt.want).MatchString(stderr) {
				t.Fatalf("chima run: exit %d, stderr:\n%s\nwant a failure matching %s", code, stderr, tt.want)
			}
		})
	}
}
