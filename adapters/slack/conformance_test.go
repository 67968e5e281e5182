package slack_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/adapters/slack"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
)

// TestMain fails the run when a goroutine of the adapter or of slack-go
// outlives the tests: every Run must have returned and cleaned up.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaks := leakedGoroutines(); leaks != "" {
			fmt.Fprintf(os.Stderr, "goroutines left running after the tests:\n\n%s\n", leaks)
			code = 1
		}
	}
	os.Exit(code)
}

func leakedGoroutines() string {
	deadline := time.Now().Add(chattest.Guard)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaks []string
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "chimaops/chima/adapters/slack.") || strings.Contains(g, "slack-go/slack/socketmode") {
				leaks = append(leaks, g)
			}
		}
		if len(leaks) == 0 || time.Now().After(deadline) {
			return strings.Join(leaks, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newAdapter builds an adapter against f: over Socket Mode when f delivers
// that way, else over the Events API routes, which f then serves.
func newAdapter(t testing.TB, f *fakeSlack, edit func(*slack.Options)) *slack.Adapter {
	t.Helper()
	o := slack.Options{BotToken: botToken, SigningSecret: signingSecret, APIURL: f.api, Logger: quiet, Backoff: 10 * time.Millisecond}
	if f.socket {
		o.AppToken = appToken
	}
	if edit != nil {
		edit(&o)
	}
	a, err := slack.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if !f.socket {
		f.serveRoutes(t, a)
	}
	return a
}

// run runs a until the test ends and returns the handler's inbox.
func run(t testing.TB, a *slack.Adapter) *inbox {
	t.Helper()
	in := newInbox()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, in) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(chattest.Guard):
			t.Errorf("Run did not return within %s of its ctx's end", chattest.Guard)
		}
	})
	return in
}

func TestConformance(t *testing.T) {
	for _, mode := range []struct {
		name   string
		socket bool
	}{{"socket mode", true}, {"events API over HTTP", false}} {
		t.Run(mode.name, func(t *testing.T) {
			chattest.RunConformance(t, chattest.Harness{New: func(t *testing.T) (chat.Adapter, chattest.Peer) {
				f := newFakeSlack(t, mode.socket)
				f.channel("general") // the suite's rooms, in which the bot is
				f.channel("random")
				return newAdapter(t, f, nil), &peer{f: f}
			}})
		})
	}
}

// peer plays Slack for the conformance suite.
type peer struct{ f *fakeSlack }

func (p *peer) Say(t *testing.T, room, user, thread, text string) {
	t.Helper()
	p.f.say(t, room, user, thread, text)
}

func (p *peer) Said(t *testing.T) chattest.PeerMessage {
	t.Helper()
	m := waitFor(t, p.f.posts, "post")
	return chattest.PeerMessage{Room: m.Channel, Thread: m.Thread, ID: m.TS, Text: m.Shown}
}

func (p *peer) Edited(t *testing.T) chattest.PeerMessage {
	t.Helper()
	m := waitFor(t, p.f.edits, "edit")
	return chattest.PeerMessage{Room: m.Channel, Thread: m.Thread, ID: m.TS, Text: m.Shown}
}
