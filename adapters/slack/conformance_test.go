package slack_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/chimaops/chima/adapters/slack"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
)

// TestMain fails the run when a goroutine of the adapter or of slack-go
// outlives the tests: every Run must have returned and cleaned up.
func TestMain(m *testing.M) {
	os.Exit(chattest.RunWithoutLeaks(m, "chimaops/chima/adapters/slack.", "slack-go/slack/socketmode"))
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
	t.Run("socket mode", func(t *testing.T) {
		chattest.RunConformance(t, chattest.Harness{
			New: func(t *testing.T) (chat.Adapter, chattest.Peer) {
				f := newFakeSlack(t, true)
				return newAdapter(t, f, nil), &socketPeer{peer{f: f}}
			},
			Golden:      "testdata/golden",
			UnknownRoom: "C0NOSUCHROOM",
		})
	})
	t.Run("events API over HTTP", func(t *testing.T) {
		chattest.RunConformance(t, chattest.Harness{
			New: func(t *testing.T) (chat.Adapter, chattest.Peer) {
				f := newFakeSlack(t, false)
				a, err := slack.New(slack.Options{BotToken: botToken, SigningSecret: signingSecret, APIURL: f.api, Logger: quiet, Backoff: 10 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				return a, &httpPeer{peer{f: f, name: a.Name()}}
			},
			Golden:      "testdata/golden",
			UnknownRoom: "C0NOSUCHROOM",
		})
	})
}

// peer plays Slack for the conformance suite.
type peer struct {
	f    *fakeSlack
	name string
}

// socketPeer delivers over Socket Mode, a connection it can drop.
type socketPeer struct{ peer }

// httpPeer delivers over the Events API routes, which the suite mounts.
type httpPeer struct{ peer }

var (
	_ chattest.DirectPeer    = (*peer)(nil)
	_ chattest.MentionPeer   = (*peer)(nil)
	_ chattest.ClickPeer     = (*peer)(nil)
	_ chattest.RateLimitPeer = (*peer)(nil)
	_ chattest.EphemeralPeer = (*peer)(nil)
	_ chattest.GoldenPeer    = (*peer)(nil)
	_ chattest.DropPeer      = (*socketPeer)(nil)
	_ chattest.RoutePeer     = (*httpPeer)(nil)
)

func (p *peer) RoomID(_ *testing.T, name string) string { return p.f.channel(name).ID }
func (p *peer) UserID(_ *testing.T, name string) string { return p.f.user(name) }

// Say posts as a person does in a room, without mentioning the bot: Slack
// delivers it as a message.channels event.
func (p *peer) Say(t *testing.T, room, user, thread, text string) {
	t.Helper()
	if user != botUserID {
		user = p.f.user(user)
	}
	p.f.sayIn(t, p.f.channel(room), user, thread, "", text)
}

// SayMention mentions the bot first, as Slack's clients put it; Slack sends
// both the message.channels event and the app_mention.
func (p *peer) SayMention(t *testing.T, room, user, text string) {
	t.Helper()
	p.f.sayIn(t, p.f.channel(room), p.f.user(user), "", mentionFirst, text)
}

func (p *peer) SayDirect(t *testing.T, user, text string) {
	t.Helper()
	p.f.sayIn(t, p.f.im(p.f.user(user)), p.f.user(user), "", "", text)
}

func (p *peer) DirectRoom(_ *testing.T, user string) string { return p.f.im(p.f.user(user)).ID }

func (p *peer) Said(t *testing.T) chattest.PeerMessage {
	t.Helper()
	return peerMessage(waitFor(t, p.f.posts, "post"))
}

func (p *peer) Edited(t *testing.T) chattest.PeerMessage {
	t.Helper()
	return peerMessage(waitFor(t, p.f.edits, "edit"))
}

func (p *peer) SaidEphemeral(t *testing.T) (chattest.PeerMessage, string) {
	t.Helper()
	m := waitFor(t, p.f.ephemerals, "ephemeral message")
	return peerMessage(m), m.User
}

func peerMessage(m fakeMsg) chattest.PeerMessage {
	return chattest.PeerMessage{Room: m.Channel, Thread: m.Thread, ID: m.TS, Text: m.Shown}
}

func (p *peer) LimitNext(_ *testing.T, after time.Duration) { p.f.rateLimit(1, after) }

// Click presses the button-th button of the bot's message as Slack does:
// a block_actions callback with the button's action_id and value.
func (p *peer) Click(t *testing.T, msg chattest.PeerMessage, user string, button int) {
	t.Helper()
	stored, ok := p.f.message(msg.Room, msg.ID)
	if !ok {
		t.Fatalf("fake slack: no message %s in %s", msg.ID, msg.Room)
	}
	btns := buttons(stored.Blocks)
	if button >= len(btns) {
		t.Fatalf("fake slack: message %s has %d buttons, not %d", msg.ID, len(btns), button+1)
	}
	p.f.click(t, msg.Room, msg.ID, stored.Thread, p.f.user(user), btns[button].ActionID, btns[button].Value)
}

func (p *peer) Raw(t *testing.T, msg chattest.PeerMessage) []byte {
	t.Helper()
	stored, ok := p.f.message(msg.Room, msg.ID)
	if !ok {
		t.Fatalf("fake slack: no message %s in %s", msg.ID, msg.Room)
	}
	return golden(t, stored.Form)
}

func (p *socketPeer) Drop(*testing.T) { p.f.dropConnection() }

func (p *httpPeer) Mounted(_ *testing.T, base string) { p.f.mounted(base, p.name) }
