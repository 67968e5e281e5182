package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-github/v57/github"

	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/sdktest"
	"github.com/chimaops/chima/sdk/wire"
)

// workflowEvent is workflow_run.json for commit sha of master: a run of
// workflow wf (a workflow of its own, named after it) ended as conclusion.
func workflowEvent(t testing.TB, sha string, wf int, conclusion string) []byte {
	return edited(t, "workflow_run.json", func(ev *github.WorkflowRunEvent) {
		ev.WorkflowRun.HeadSHA = github.String(sha)
		ev.WorkflowRun.ID = github.Int64(int64(7000 + wf))
		ev.WorkflowRun.WorkflowID = github.Int64(int64(100 + wf))
		ev.WorkflowRun.Name = github.String(fmt.Sprintf("wf-%d", wf))
		if ev.Workflow != nil {
			ev.Workflow.Name, ev.Workflow.ID = ev.WorkflowRun.Name, ev.WorkflowRun.WorkflowID
		}
		ev.WorkflowRun.Status, ev.WorkflowRun.Conclusion = github.String("completed"), github.String(conclusion)
	})
}

func TestTwoReplicasHandlingOneCommitAtOncePostOneMessageAndOneTransition(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "")
	settings := map[string]string{"subscriptions": `[{"repo": "octo-org/octo-repo", "room": "builds"}]`, "chima_default_adapter": "test"}
	const workflows = 6
	tests := []struct {
		name string
		// conclusion of every workflow of the second commit.
		conclusion string
		reply      string // the one thread reply, "" for none
	}{
		{"a new commit that fails: one message, one Broken", "failure", "Broken: octo-org/octo-repo master at bbbbbbb"},
		{"a new commit that passes: one message, no reply", "success", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Two processes of the plugin, as two replicas of the bot run
			// them, on one host: the shared store.
			host := sdktest.NewFakeHost()
			replicas := []*pluginConn{{pluginOn(t, host, settings)}, {pluginOn(t, host, settings)}}
			// The branch's history: commit a was green.
			if err := replicas[0].deliver(workflowEvent(t, sha('a'), 0, "success")); err != nil {
				t.Fatal(err)
			}
			before := len(host.Posts())

			// Every workflow of commit b ends, and each delivery reaches
			// both replicas (a redelivery, two receivers), all at once.
			var wg sync.WaitGroup
			errs := make(chan error, 2*workflows)
			for wf := 1; wf <= workflows; wf++ {
				for _, r := range replicas {
					wg.Add(1)
					go func() {
						defer wg.Done()
						errs <- r.deliver(workflowEvent(t, sha('b'), wf, tt.conclusion))
					}()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}

			var top, replies []sdktest.Post
			for _, p := range host.Posts()[before:] {
				if p.Target.ThreadID != "" {
					replies = append(replies, p)
				} else {
					top = append(top, p)
				}
			}
			if len(top) != 1 {
				t.Fatalf("%d messages about commit b, want 1: %v", len(top), top)
			}
			// The rest were edits of that message, and the last one shows
			// every workflow: no replica's result was lost.
			last := top[0].Output
			for _, u := range host.Updates() {
				if strings.Contains(u.Output.Title, "bbbbbbb") {
					last = u.Output
				}
			}
			for wf := 1; wf <= workflows; wf++ {
				if !strings.Contains(last.Text, fmt.Sprintf("wf-%d", wf)) {
					t.Errorf("the message about commit b lacks wf-%d:\n%s", wf, last.Text)
				}
			}
			switch {
			case tt.reply == "" && len(replies) > 0:
				t.Errorf("thread replies %v, want none", replies)
			case tt.reply != "" && (len(replies) != 1 || !strings.HasPrefix(replies[0].Output.Text, tt.reply)):
				t.Errorf("thread replies %v, want one starting %q", replies, tt.reply)
			}
		})
	}
}

// pluginConn is one replica's plugin process.
type pluginConn struct{ conn *wire.Conn }

func (p *pluginConn) deliver(body []byte) error {
	return deliverTo(p.conn, "github:workflow_run", body)
}

// readCountingHost is the fake host, counting the reads of commits' records.
type readCountingHost struct {
	*sdktest.FakeHost
	mu    sync.Mutex
	reads int
}

func (h *readCountingHost) KVGet(ctx context.Context, r *pluginv1.KVGetRequest) (*pluginv1.KVGetResponse, error) {
	if strings.HasPrefix(r.GetKey(), "track/") {
		h.mu.Lock()
		h.reads++
		h.mu.Unlock()
	}
	return h.FakeHost.KVGet(ctx, r)
}

func TestACommitsRecordIsReadAgainOnlyWhenAnotherReplicaHeldItsLeaseSince(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "")
	settings := map[string]string{"subscriptions": `[{"repo": "octo-org/octo-repo", "room": "builds"}]`, "chima_default_adapter": "test"}
	tests := []struct {
		name string
		// by is the replica that gets each event of the commit, in turn.
		by    []int
		reads int
		// cleared is the event before which the commit's lease and record
		// are deleted (as by an operator), -1 for none.
		cleared int
		// shows are the events the last message shows.
		shows []int
	}{
		{"one replica: read once, at its first event", []int{0, 0, 0, 0}, 1, -1, []int{0, 1, 2, 3}},
		{"replicas taking turns: read at every event", []int{0, 1, 0, 1}, 4, -1, []int{0, 1, 2, 3}},
		{"another replica in between: read after it", []int{0, 0, 1, 0}, 3, -1, []int{0, 1, 2, 3}},
		{"lease and record deleted: read again, nothing of before", []int{0, 0, 0}, 2, 2, []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := &readCountingHost{FakeHost: sdktest.NewFakeHost()}
			replicas := []*pluginConn{{pluginOn(t, host, settings)}, {pluginOn(t, host, settings)}}
			for wf, r := range tt.by {
				if wf == tt.cleared {
					for _, k := range []string{"lease/octo-org/octo-repo@" + sha('c'), "track/octo-org/octo-repo@" + sha('c')} {
						if _, ok := host.KVValue(k); !ok {
							t.Fatalf("no key %s to delete", k)
						}
						if _, err := host.KVDelete(context.Background(), &pluginv1.KVDeleteRequest{Key: k}); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := replicas[r].deliver(workflowEvent(t, sha('c'), wf, "success")); err != nil {
					t.Fatal(err)
				}
			}
			if host.reads != tt.reads {
				t.Errorf("the commit's record was read %d times, want %d", host.reads, tt.reads)
			}
			// The last message shows what its record holds: every event,
			// whoever handled it, and nothing from a deleted record.
			// A deleted record took its message's reference with it: the
			// next event posts a new message, which only it has edited.
			posts, want := host.Posts(), 1
			if tt.cleared >= 0 {
				want = 2
			}
			if len(posts) != want {
				t.Fatalf("%d messages, want %d: %v", len(posts), want, posts)
			}
			last := posts[len(posts)-1].Output
			if tt.cleared < 0 {
				for _, u := range host.Updates() {
					last = u.Output
				}
			}
			for wf := range tt.by {
				want := slices.Contains(tt.shows, wf)
				if got := strings.Contains(last.Text, fmt.Sprintf("wf-%d", wf)); got != want {
					t.Errorf("the message shows wf-%d: %v, want %v:\n%s", wf, got, want, last.Text)
				}
			}
		})
	}
}

// lapsingHost is the fake host where, once, another replica takes a
// commit's lease over (as after a lapse) just before this replica saves.
type lapsingHost struct {
	*sdktest.FakeHost
	once sync.Once
}

func (h *lapsingHost) KVTransaction(ctx context.Context, r *pluginv1.KVTransactionRequest) (*pluginv1.KVTransactionResponse, error) {
	h.once.Do(func() {
		for _, c := range r.GetChecks() {
			if strings.HasPrefix(c.GetKey(), "lease/") {
				_, _ = h.FakeHost.KVSet(ctx, &pluginv1.KVSetRequest{Key: c.GetKey(), Value: []byte(`{"owner":"other","until":1}`)})
			}
		}
	})
	return h.FakeHost.KVTransaction(ctx, r)
}

func TestAReplicaWhoseLeaseWasTakenOverSavesNothingAndItsEventIsAppliedAgain(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "")
	settings := map[string]string{"subscriptions": `[{"repo": "octo-org/octo-repo", "room": "builds"}]`, "chima_default_adapter": "test"}
	host := &lapsingHost{FakeHost: sdktest.NewFakeHost()}
	p := &pluginConn{pluginOn(t, host, settings)}
	record := "track/octo-org/octo-repo@" + sha('c')
	err := p.deliver(workflowEvent(t, sha('c'), 0, "success"))
	if err == nil || !strings.Contains(err.Error(), "another replica") {
		t.Fatalf("the handling over a lease taken over = %v, want it to fail saying another replica took it", err)
	}
	if _, ok := host.KVValue(record); ok {
		t.Fatal("the record was written by a holder that had lost its lease")
	}
	// The event is handed again (durable delivery): the lease the other
	// replica left has lapsed, so it is taken over and the event applied.
	if err := p.deliver(workflowEvent(t, sha('c'), 0, "success")); err != nil {
		t.Fatalf("the event handed again: %v", err)
	}
	raw, ok := host.KVValue(record)
	if !ok || !strings.Contains(string(raw), "wf-0") {
		t.Fatalf("the record after the event was handed again = %s, want it to hold wf-0", raw)
	}
	if lease, _ := host.KVValue("lease/octo-org/octo-repo@" + sha('c')); !strings.Contains(string(lease), "freed") {
		t.Errorf("the lease after saving = %s, want it given back", lease)
	}
}
