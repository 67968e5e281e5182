package router

import (
	"errors"
	"strings"
	"testing"

	"github.com/chimaops/chima/sdk/pluginv1"
)

func TestSchedulesIsABuiltInCommand(t *testing.T) {
	r := New(Options{Name: "chima"})
	for _, text := range []string{"schedules", "Schedules"} {
		if got := r.Parse(text); got.Kind != Schedules {
			t.Errorf("Parse(%q).Kind = %s, want Schedules", text, got.Kind)
		}
	}
	err := r.SetPlugin("cron", &pluginv1.Manifest{Commands: []*pluginv1.CommandSpec{{Name: "schedules"}}})
	if !errors.Is(err, ErrConflict) {
		t.Errorf("a plugin command named schedules: SetPlugin() = %v, want ErrConflict", err)
	}
	help := r.Help("", func(string) string { return "" }).Text
	if !strings.Contains(help, "schedules — Lists the commands I run on a clock") {
		t.Errorf("help does not list schedules among the built-ins:\n%s", help)
	}
}
