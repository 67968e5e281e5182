package config

import (
	"strings"
	"testing"
)

func TestSchedulesAreDecoded(t *testing.T) {
	c := mustParse(t, valid+`schedules:
  - {name: nightly-db, cron: "0 3 * * *", command: "backup db-prod", room: "shell:ops", as: alice, timezone: Europe/Berlin, catch_up: true}
`)
	want := Schedule{Name: "nightly-db", Cron: "0 3 * * *", Command: "backup db-prod", Room: "shell:ops", As: "alice", Timezone: "Europe/Berlin", CatchUp: true}
	if len(c.Schedules) != 1 || c.Schedules[0] != want {
		t.Fatalf("Schedules = %+v, want [%+v]", c.Schedules, want)
	}
}

func TestScheduleMistakesNameFileLineAndKey(t *testing.T) {
	entry := func(fields string) string { return valid + "schedules:\n  - {" + fields + "}\n" }
	const ok = `name: n, cron: "@daily", command: hello, room: general, as: alice`
	tests := []struct {
		name, src, want string
	}{
		{"a bad cron", entry(strings.Replace(ok, `"@daily"`, `"0 25 * * *"`, 1)),
			`chima.yaml:10: schedules[0].cron: bad cron spec "0 25 * * *"`},
		{"an unknown time zone", entry(ok + ", timezone: Mars/Olympus"),
			`chima.yaml:10: schedules[0].timezone: unknown time zone "Mars/Olympus"`},
		{"a room of an unknown adapter", entry(strings.Replace(ok, "room: general", "room: slack:ops", 1)),
			`chima.yaml:10: schedules[0].room: "slack:ops": no adapter named "slack" is configured`},
		{"no command", entry(strings.Replace(ok, "command: hello, ", "", 1)),
			`chima.yaml:10: schedules[0].command: required`},
		{"no user to run as", entry(strings.Replace(ok, ", as: alice", "", 1)),
			`chima.yaml:10: schedules[0].as: required`},
		{"two of one name", valid + "schedules:\n  - {" + ok + "}\n  - {" + ok + "}\n",
			`chima.yaml:11: schedules[1].name: duplicate schedule name "n" (first used at line 10)`},
		{"an unknown key", entry(ok + ", catchup: true"),
			`schedules[0].catchup: unknown key (did you mean "catch_up"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(problems(t, tt.src), "\n")
			if !strings.Contains(got, tt.want) {
				t.Fatalf("problems:\n%s\nwant one containing %q", got, tt.want)
			}
		})
	}
}

func TestProblemPointsAtAScheduleKey(t *testing.T) {
	c := mustParse(t, valid+"schedules:\n  - {name: n, cron: \"@daily\", command: nope, room: general, as: alice}\n")
	got := c.Problem("schedules[0].command", `"nope" is no plugin's command`).String()
	if want := `chima.yaml:10: schedules[0].command: "nope" is no plugin's command`; got != want {
		t.Fatalf("Problem = %q, want %q", got, want)
	}
}
