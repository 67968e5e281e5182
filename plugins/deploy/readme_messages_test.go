package main

import (
	"strings"
	"testing"

	"github.com/chimaops/chima/sdk/sdktest"
)

// The log lines Chima writes itself are what a thread's progress message and
// deploy:status show; a rollback, whose ref is a full SHA, names it once.
func TestRollbackLogLinesNameTheCommitOnce(t *testing.T) {
	f := newFixture(t, notifyApp)
	h := f.harness(t)
	h.Command("deploy", deployArgs("demo", "main", "staging"))
	h.Command("deploy", deployArgs("demo", "feature-1", "staging"))
	h.RunEnqueued()
	h.Command("rollback", sdktest.Args{"app": "demo", "env": "staging"})
	h.RunEnqueued()
	status := h.Host.Log(logName(3))
	var own []string
	for _, line := range strings.Split(status, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "chima:") {
			own = append(own, line)
		}
	}
	if len(own) < 2 {
		t.Fatalf("the log of #3 has no lines of Chima's own:\n%s", status)
	}
	for _, line := range own {
		if n := strings.Count(line, f.main); n > 1 {
			t.Errorf("a log line names the full SHA %d times: %q", n, line)
		}
	}
	if want := "deployment #3 of demo/" + f.main[:7] + " to staging"; !strings.Contains(status, want) {
		t.Errorf("log lacks %q:\n%s", want, status)
	}
}
