package slack_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/adapters/slack"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
)

// acked waits for the ack of envelope id, skipping others.
func acked(t *testing.T, f *fakeSlack, id string) fakeAck {
	t.Helper()
	timeout := time.After(chattest.Guard)
	for {
		select {
		case a := <-f.acks:
			if a.EnvelopeID == id {
				return a
			}
		case <-timeout:
			t.Fatalf("envelope %s was not acknowledged within %s", id, chattest.Guard)
		}
	}
}

func TestSocketModeAcknowledgesEveryEnvelope(t *testing.T) {
	f := newFakeSlack(t, true)
	a := newAdapter(t, f, nil)
	in := run(t, a)
	general := f.channel("general")
	alice := f.user("alice")

	ev, _ := f.userMessage(general, alice, "", mentionFirst, "hi")
	cb, _ := f.callback(ev)
	id := f.sendEnvelope("events_api", cb)
	if ack := acked(t, f, id); len(ack.Payload) != 0 {
		t.Errorf("events_api ack carries %s, want no payload", ack.Payload)
	}
	in.next(t)

	// An event nobody handles is acknowledged too, or Slack redelivers it.
	other, _ := f.callback(map[string]any{"type": "reaction_added", "user": alice, "reaction": "tada"})
	acked(t, f, f.sendEnvelope("events_api", other))

	f.slashCommand(t, general.ID, alice, "help")
	var slashID string
	f.mu.Lock()
	slashID = f.sentIDs[len(f.sentIDs)-1]
	f.mu.Unlock()
	ack := acked(t, f, slashID)
	var payload map[string]string
	if err := json.Unmarshal(ack.Payload, &payload); err != nil || payload["response_type"] != "in_channel" {
		t.Errorf("slash command ack carries %s, want response_type in_channel", ack.Payload)
	}
	if m := in.next(t); m.Text != "help" {
		t.Errorf("slash command became %q", m.Text)
	}

	f.click(t, general.ID, f.nextTSLocked(), "", alice, "chima:x", "v")
	f.mu.Lock()
	clickID := f.sentIDs[len(f.sentIDs)-1]
	f.mu.Unlock()
	acked(t, f, clickID)
	in.click(t)
}

func TestSocketModeReconnects(t *testing.T) {
	cases := []struct {
		name    string
		breakIt func(f *fakeSlack)
	}{
		{"when Slack asks it to refresh", func(f *fakeSlack) {
			f.sendRaw([]byte(`{"type":"disconnect","reason":"refresh_requested","debug_info":{"host":"applink-fake"}}`))
		}},
		{"when Slack warns of a disconnect", func(f *fakeSlack) {
			f.sendRaw([]byte(`{"type":"disconnect","reason":"warning","debug_info":{"host":"applink-fake"}}`))
		}},
		{"when the connection drops", func(f *fakeSlack) { f.dropConnection() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSlack(t, true)
			a := newAdapter(t, f, nil)
			in := run(t, a)
			f.waitConnected(t, 1)
			f.say(t, "general", f.user("alice"), "", "before")
			if m := in.next(t); m.Text != "before" {
				t.Fatalf("got %q", m.Text)
			}
			tc.breakIt(f)
			f.say(t, "general", f.user("alice"), "", "after") // queued until it is back
			f.waitConnected(t, 2)
			if m := in.next(t); m.Text != "after" {
				t.Errorf("after reconnecting the handler got %q", m.Text)
			}
			if n := f.opens.Load(); n < 2 {
				t.Errorf("apps.connections.open was called %d times, want a new URL for the new connection", n)
			}
		})
	}
}

func TestRunEndsOnBadCredentials(t *testing.T) {
	cases := []struct {
		name string
		edit func(*slack.Options)
	}{
		{"a revoked bot token", func(o *slack.Options) { o.BotToken = "xoxb-revoked" }},
		{"a wrong app token", func(o *slack.Options) { o.AppToken = "xapp-wrong" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSlack(t, true)
			a := newAdapter(t, f, tc.edit)
			ctx, cancel := context.WithTimeout(context.Background(), chattest.Guard)
			defer cancel()
			err := a.Run(ctx, chat.HandlerFunc(func(context.Context, chat.Message) {}))
			if err == nil || ctx.Err() != nil {
				t.Fatalf("Run returned %v (ctx %v), want an error for bad credentials", err, ctx.Err())
			}
			if !strings.Contains(err.Error(), "invalid_auth") {
				t.Errorf("Run returned %v, want it to say invalid_auth", err)
			}
		})
	}
}

func TestRunRetriesWhileSlackIsUnreachable(t *testing.T) {
	f := newFakeSlack(t, true)
	api := f.api
	// A server that is gone: Run keeps trying until ctx ends, then returns nil.
	f.srv.Stop()
	a, err := slack.New(slack.Options{BotToken: botToken, AppToken: appToken, APIURL: api, Logger: quiet, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := a.Run(ctx, chat.HandlerFunc(func(context.Context, chat.Message) {})); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run returned %v while Slack was unreachable, want nil at ctx's end", err)
	}
}
