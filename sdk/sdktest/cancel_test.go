package sdktest

import (
	"context"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// TestCancellingARunningJobCancelsItsCallAsTheHostDoes checks that
// FakeHost.CancelJob stops a job RunEnqueued runs: its handler sees its
// context end (a cancel, not a shutdown), its result is cancelled, and what
// it posts detached reaches the room while what it streams after is lost.
func TestCancellingARunningJobCancelsItsCallAsTheHostDoes(t *testing.T) {
	started := make(chan struct{})
	p := &sdk.Plugin{
		Name: "canceller", Version: "1",
		Commands: []sdk.Command{{Name: "go", Run: func(c *sdk.Context) error {
			_, err := c.Enqueue("wait", nil, sdk.EnqueueOptions{})
			return err
		}}},
		Jobs: []sdk.JobHandler{{Kind: "wait", Run: func(c *sdk.Context) error {
			close(started)
			<-c.Done()
			_, _ = c.Detached().Post(c.Job.Notify, &sdk.Output{Text: "stopped"})
			_ = c.Detached().Reply("streamed after the cancel")
			if c.ShuttingDown() {
				return sdk.Errorf("shutting down")
			}
			return c.Err()
		}}},
	}
	h := New(t, p)
	if res := h.Command("go", nil); len(res.Errors) > 0 {
		t.Fatalf("go: %v", res.Errors)
	}
	jobs := h.Host.Enqueued()
	if len(jobs) != 1 {
		t.Fatalf("enqueued %v; want one job", jobs)
	}
	go func() {
		select {
		case <-started:
		case <-time.After(20 * time.Second):
			return
		}
		_, _ = h.Host.CancelJob(context.Background(), &pluginv1.CancelJobRequest{JobId: jobs[0].ID})
	}()
	res := h.RunEnqueued()
	if len(res) != 1 || res[0].Done.Outcome != sdk.OutcomeCancelled {
		t.Fatalf("results %+v; want one cancelled job", res)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(h.Host.Posts()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if posts := h.Host.Posts(); len(posts) != 1 || posts[0].Output.Text != "stopped" {
		t.Fatalf("posts %v; want the detached post", posts)
	}
	if got := res[0].Text(); got != "" {
		t.Fatalf("replies %q reached the result after the cancel", got)
	}
	r, _ := h.Host.Jobs(context.Background(), &pluginv1.JobsRequest{})
	if st := r.GetJobs()[0].GetState(); st != "cancelled" {
		t.Fatalf("job state %q; want cancelled", st)
	}
}
