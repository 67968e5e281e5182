package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk"
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

// A deployment stopped from outside did not fail, and its message does not
// say it did.
func TestAnInterruptedDeploymentIsNotSaidToHaveFailed(t *testing.T) {
	f := newFixture(t, notifyApp)
	h := f.harness(t)
	h.Command("deploy", deployArgs("demo", "main", "staging"))
	job := h.Host.Enqueued()[0]
	before := len(h.Host.Posts())
	h.JobInterrupted(&sdk.Job{JobID: 1, Kind: "deploy", Payload: job.Payload})
	var said []string
	for _, p := range h.Host.Posts()[before:] {
		said = append(said, p.Output.Text)
	}
	all := strings.Join(said, "\n")
	if want := "Deployment #1 of demo/main to staging was interrupted before it started (interrupted: Chima stopped while it ran)"; !strings.Contains(all, want) {
		t.Errorf("rooms were told %q, want %q", all, want)
	}
	if strings.Contains(all, "failed") {
		t.Errorf("an interrupted deployment is said to have failed: %q", all)
	}
}

// deploy:cancel names the deployment as every other message does: app, ref
// and environment.
func TestCancelNamesTheApp(t *testing.T) {
	f := newFixture(t, notifyApp)
	h := f.harness(t)
	h.Command("deploy", deployArgs("demo", "main", "staging"))
	got := h.Command("deploy:cancel", sdktest.Args{"id": "1"}).Text()
	if want := "Deployment #1 of demo/main to staging cancelled before it started."; got != want {
		t.Errorf("cancel = %q, want %q", got, want)
	}
}

// An unknown app is refused in a sentence, as the plugin's other refusals
// are ("There is no deployment #999.").
func TestAnUnknownAppIsRefusedInASentence(t *testing.T) {
	f := newFixture(t, "")
	h := f.harness(t)
	for _, res := range []sdktest.Result{
		h.Command("deploy", deployArgs("nosuch", "", "")),
		h.Command("where", sdktest.Args{"app": "nosuch"}),
	} {
		if got, want := userError(res), "I have never heard of nosuch; known apps: demo."; got != want {
			t.Errorf("refusal = %q, want %q", got, want)
		}
	}
}

// A deployment whose bot died under it ends when it was last seen alive, not
// when the next bot found it: the downtime is not deploy time.
func TestADeploymentInterruptedByADeadBotEndsWhenItWasLastSeenAlive(t *testing.T) {
	base := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		aliveAt time.Time
		want    string
	}{
		{"seen alive 14 s in", base.Add(14 * time.Second), "ran for at least 14s and was interrupted"},
		{"never seen alive", time.Time{}, "ran for less than 5s and was interrupted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, notifyApp)
			d := &deployer{}
			p := f.probe(t, d)
			p.Command("deploy", deployArgs("demo", "main", "staging"))
			job := p.Host.Enqueued()[0]
			p.run(t, func(c *sdk.Context) {
				if _, err := d.records.update(c, 1, func(x *Deployment) {
					x.State, x.StartedAt, x.AliveAt = StateRunning, base, tc.aliveAt
				}); err != nil {
					t.Error(err)
				}
			})
			d.now = func() time.Time { return base.Add(23 * time.Second) } // the next bot, 9 s later
			before := len(p.Host.Posts())
			p.JobInterrupted(&sdk.Job{JobID: 1, Kind: "deploy", Payload: job.Payload})
			var said []string
			for _, post := range p.Host.Posts()[before:] {
				said = append(said, post.Output.Text)
			}
			if all := strings.Join(said, "\n"); !strings.Contains(all, tc.want) {
				t.Fatalf("rooms were told %q, want %q", all, tc.want)
			}
		})
	}
}
