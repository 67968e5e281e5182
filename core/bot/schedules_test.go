package bot_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/chimaops/chima/core/bot"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
	"github.com/chimaops/chima/core/policy"
	"github.com/chimaops/chima/core/router"
	"github.com/chimaops/chima/core/store"
)

func TestScheduledCommandRunsAsItsUserInItsRoomThroughPolicyAndAudit(t *testing.T) {
	tests := []struct {
		name        string
		as          string
		wantOutcome string
		wantCalls   int
		wantSaid    string
	}{
		{"a user the policy allows", "alice", "ok", 1, "command stop"},
		{"a user the policy refuses", "bob", "denied", 0, "Sorry,"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cb := newClickBot(t, nil, nil)
			// A bare room means the only adapter, as in a typed command's
			// notify room.
			res := cb.bot.RunScheduled(context.Background(), "nightly-db", chat.MessageRef{Room: "general"}, tt.as, "stop 5")
			if res.Outcome != tt.wantOutcome {
				t.Fatalf("outcome = %q, want %q", res.Outcome, tt.wantOutcome)
			}
			calls := cb.plugins.taken()
			if len(calls) != tt.wantCalls {
				t.Fatalf("plugin got %d calls, want %d", len(calls), tt.wantCalls)
			}
			if len(calls) == 1 {
				req := calls[0].GetCommand()
				if req.GetUser().GetId() != tt.as || req.GetMessage().GetRoom() != "general" || req.GetMessage().GetAdapter() != "mem" || req.GetArgs()["id"] != "5" {
					t.Errorf("plugin got %v, want stop 5 by %s in mem:general", req, tt.as)
				}
			}
			if s := waitSent(t, cb.chat, tt.wantSaid); s.Ref.Room != "general" {
				t.Errorf("answer went to %v, want room general", s.Ref)
			}
			e := waitAudit(t, cb.store, res.RequestID)
			if e.Via != "schedule nightly-db" || e.UserID != tt.as || e.Adapter != "mem" || e.Room != "general" || e.Outcome != tt.wantOutcome || e.Command != "stop" {
				t.Errorf("audit entry = %+v, want stop by %s in mem:general via schedule nightly-db, %s", e, tt.as, tt.wantOutcome)
			}
		})
	}
}

func TestSchedulesCommandListsWhatTheSchedulerSays(t *testing.T) {
	tests := []struct {
		name      string
		schedules func(context.Context) (string, error)
		want      string
	}{
		{"none configured", nil, "No schedules are configured."},
		{"a list", func(context.Context) (string, error) { return "nightly-db: `backup db-prod`", nil }, "nightly-db: `backup db-prod`"},
		{"a failure", func(context.Context) (string, error) { return "", errors.New("disk gone") }, "could not list the schedules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := store.Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "chima.db"))
			if err != nil {
				t.Fatal(err)
			}
			mem := chattest.NewMemory("mem")
			b := bot.New(bot.Options{
				Router: router.New(router.Options{Name: "chima"}), Policy: policy.New(nil, nil),
				Plugins: &recordingPlugins{manifest: opsManifest()}, Store: st, Adapters: []chat.Adapter{mem},
				Schedules: tt.schedules,
			})
			stop := b.StartJobs(context.Background())
			t.Cleanup(func() { stop(); st.Close() })
			res, handled := b.Process(context.Background(), chat.Message{
				Ref: chat.MessageRef{Adapter: "mem", Room: "general"}, User: chat.User{ID: "carol"}, Text: "chima schedules",
			})
			if !handled || res.Outcome != "ok" {
				t.Fatalf("handled %v, outcome %q; want ok", handled, res.Outcome)
			}
			waitSent(t, mem, tt.want)
			if e := waitAudit(t, st, res.RequestID); e.Command != "schedules" {
				t.Errorf("audited as %q, want schedules", e.Command)
			}
		})
	}
}
