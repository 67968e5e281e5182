package router

import (
	"testing"

	"github.com/chimaops/chima/sdk/pluginv1"
)

func TestParsePatternArguments(t *testing.T) {
	r := New(Options{Name: "chima"})
	err := r.SetPlugin("timer", &pluginv1.Manifest{Commands: []*pluginv1.CommandSpec{
		{
			Name:    "remind",
			Usage:   "remind me in <wait> [loudly] to <what>",
			Pattern: `remind me in (?P<wait>\S+)(?P<loud> loudly)? to (?P<what>.+)`,
			Args: []*pluginv1.ArgSpec{
				{Name: "wait", Type: tDuration, Required: true},
				{Name: "loud", Type: tBool, Default: "no"},
				{Name: "what", Required: true},
			},
		},
		{
			Name:    "count",
			Pattern: `count (?:to ?(?P<n>\d*)|up to (?P<n>\d+))(?: by (?P<step>\S+))?`,
			Args: []*pluginv1.ArgSpec{
				{Name: "n", Type: tInt, Required: true},
				{Name: "step", Type: tInt, Default: "1"},
			},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		text string
		want want
	}{
		{"typed groups are normalised", "Remind me in 90s to Stretch",
			want{kind: Matched, plugin: "timer", command: "remind", args: map[string]string{"wait": "1m30s", "loud": "false", "what": "Stretch"}}},
		{"a boolean group that captured a flag word is true", "remind me in 1h loudly to stand up",
			want{kind: Matched, plugin: "timer", command: "remind", args: map[string]string{"wait": "1h0m0s", "loud": "true", "what": "stand up"}}},
		{"a typed group that does not parse is malformed", "remind me in soon to stretch",
			want{kind: Malformed, plugin: "timer", command: "remind", usage: "remind me in <wait> [loudly] to <what>",
				problem: `wait must be a duration such as 90s, 5m or 1h30m, got "soon"`, argument: "wait"}},
		{"groups of the same name: the one that took part counts", "count up to 7 by 2",
			want{kind: Matched, plugin: "timer", command: "count", args: map[string]string{"n": "7", "step": "2"}}},
		{"an empty group is absent, so a required argument is missing", "count to",
			want{kind: Malformed, plugin: "timer", command: "count", usage: "count <n> [step]", problem: "missing <n>", argument: "n"}},
		{"bad int in a pattern group", "count to 3 by x",
			want{kind: Malformed, plugin: "timer", command: "count", usage: "count <n> [step]", problem: `step must be a whole number, got "x"`, argument: "step"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkResult(t, tt.text, r.Parse(tt.text), tt.want)
		})
	}
}

func TestPatternsAreTriedInRegistrationOrder(t *testing.T) {
	r := New(Options{Name: "chima"})
	greedy := func(name string) *pluginv1.Manifest {
		return &pluginv1.Manifest{Commands: []*pluginv1.CommandSpec{{Name: name, Pattern: `.*please`}}}
	}
	for _, p := range []string{"first", "second"} {
		if err := r.SetPlugin(p, greedy(p)); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.Parse("coffee please"); got.Plugin != "first" {
		t.Fatalf("Parse matched plugin %q, want the first registered", got.Plugin)
	}
	// Replacing a plugin keeps its place.
	if err := r.SetPlugin("first", greedy("first-v2")); err != nil {
		t.Fatal(err)
	}
	if got := r.Parse("coffee please"); got.Command.GetName() != "first-v2" {
		t.Fatalf("after replacement Parse matched %q, want first-v2", got.Command.GetName())
	}
	r.RemovePlugin("first")
	if got := r.Parse("coffee please"); got.Plugin != "second" {
		t.Fatalf("after removal Parse matched plugin %q, want second", got.Plugin)
	}
}
