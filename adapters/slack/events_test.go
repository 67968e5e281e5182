package slack_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack/slackevents"

	"github.com/chimaops/chima/adapters/slack"
	"github.com/chimaops/chima/core/chat"
)

// modes runs a test over Socket Mode and over the Events API.
func modes(t *testing.T, test func(t *testing.T, f *fakeSlack, a *slack.Adapter, in *inbox)) {
	for _, m := range []struct {
		name   string
		socket bool
	}{{"socket mode", true}, {"events API", false}} {
		t.Run(m.name, func(t *testing.T) {
			f := newFakeSlack(t, m.socket)
			a := newAdapter(t, f, nil)
			test(t, f, a, run(t, a))
		})
	}
}

// deliverInner delivers one inner event.
func (f *fakeSlack) deliverInner(t testing.TB, inner any) string {
	t.Helper()
	cb, id := f.callback(inner)
	f.deliverEvent(t, cb)
	return id
}

// marker delivers a message that must be the next one the handler gets.
func marker(t *testing.T, f *fakeSlack, in *inbox, after string) {
	t.Helper()
	ch := f.channel("general")
	f.sayIn(t, ch, f.user("alice"), "", mentionFirst, "marker")
	if m := in.next(t); m.Text != "marker" {
		t.Errorf("after %s the handler got %q from %s: it should have been dropped", after, m.Text, m.User.ID)
	}
}

func TestWhatCountsAsACommand(t *testing.T) {
	modes(t, func(t *testing.T, f *fakeSlack, a *slack.Adapter, in *inbox) {
		general := f.channel("general")
		alice := f.user("alice")
		dm := f.im(alice)
		ts := func() string { return f.nextTSLocked() }

		// Commands.
		f.deliverInner(t, slackevents.AppMentionEvent{Type: "app_mention", User: alice, Text: "<@" + botUserID + "> deploy x", TimeStamp: ts(), Channel: general.ID})
		m := in.next(t)
		if m.Text != "deploy x" || !m.Mentioned || m.Direct || m.Ref.Room != general.ID || m.User.ID != alice || m.User.Name != "alice" || m.Ref.Adapter != "slack" {
			t.Errorf("app_mention became %+v", m)
		}
		root := ts()
		f.deliverInner(t, slackevents.AppMentionEvent{Type: "app_mention", User: alice, Text: "<@" + botUserID + ">: status", TimeStamp: ts(), ThreadTimeStamp: root, Channel: general.ID})
		if m := in.next(t); m.Text != "status" || m.Ref.ThreadID != root {
			t.Errorf("app_mention in a thread became %+v, want text status in thread %s", m, root)
		}
		parent := ts() // a thread's parent carries its own ts as thread_ts
		f.deliverInner(t, slackevents.AppMentionEvent{Type: "app_mention", User: alice, Text: "<@" + botUserID + "> root", TimeStamp: parent, ThreadTimeStamp: parent, Channel: general.ID})
		if m := in.next(t); m.Ref.ThreadID != "" || m.Ref.MessageID != parent {
			t.Errorf("a thread's parent became %+v, want no thread id", m.Ref)
		}
		f.deliverInner(t, slackevents.MessageEvent{Type: "message", User: alice, Text: "help", TimeStamp: ts(), Channel: dm.ID, ChannelType: "im"})
		if m := in.next(t); m.Text != "help" || !m.Direct || m.Ref.Room != dm.ID {
			t.Errorf("message.im became %+v", m)
		}
		// A channel message (message.channels) is delivered as typed; the
		// router decides whether it names the bot.
		f.deliverInner(t, slackevents.MessageEvent{Type: "message", User: alice, Text: "chima deploy &lt;x&gt;", TimeStamp: ts(), Channel: general.ID, ChannelType: "channel"})
		if m := in.next(t); m.Text != "chima deploy <x>" || m.Mentioned || m.Direct {
			t.Errorf("a channel message became %+v, want it as typed, neither mentioned nor direct", m)
		}

		// Not commands.
		drops := []struct {
			name  string
			inner any
		}{
			{"a channel message that mentions the bot (its app_mention delivers it)", slackevents.MessageEvent{Type: "message", User: alice, Text: "<@" + botUserID + "> twice", TimeStamp: ts(), Channel: general.ID, ChannelType: "channel"}},
			{"the bot's own channel message", slackevents.MessageEvent{Type: "message", User: botUserID, BotID: botBotID, Text: "own", TimeStamp: ts(), Channel: general.ID, ChannelType: "channel"}},
			{"a message in an app's home", slackevents.MessageEvent{Type: "message", User: alice, Text: "home", TimeStamp: ts(), Channel: "D0HOME0001", ChannelType: "app_home"}},
			{"the bot's own DM", slackevents.MessageEvent{Type: "message", User: botUserID, Text: "own", TimeStamp: ts(), Channel: dm.ID, ChannelType: "im"}},
			{"the bot's own mention", slackevents.AppMentionEvent{Type: "app_mention", User: botUserID, Text: "<@" + botUserID + "> own", TimeStamp: ts(), Channel: general.ID, BotID: botBotID}},
			{"another bot's DM", slackevents.MessageEvent{Type: "message", User: "U0OTHERBOT", BotID: "B0OTHER", Text: "beep", TimeStamp: ts(), Channel: dm.ID, ChannelType: "im"}},
			{"another bot's mention", slackevents.AppMentionEvent{Type: "app_mention", User: "U0OTHERBOT", BotID: "B0OTHER", Text: "<@" + botUserID + "> beep", TimeStamp: ts(), Channel: general.ID}},
			{"a person's channel join", slackevents.MessageEvent{Type: "message", SubType: "channel_join", User: alice, Text: "<@" + alice + "> has joined the channel", TimeStamp: ts(), Channel: general.ID, ChannelType: "channel"}},
			{"a bot_message", slackevents.MessageEvent{Type: "message", SubType: "bot_message", Text: "beep", TimeStamp: ts(), Channel: dm.ID, ChannelType: "im"}},
			{"an edit", map[string]any{"type": "message", "subtype": "message_changed", "channel": dm.ID, "channel_type": "im", "ts": ts(),
				"message": map[string]any{"type": "message", "user": alice, "text": "deploy y", "ts": ts()}}},
			{"a deletion", map[string]any{"type": "message", "subtype": "message_deleted", "channel": dm.ID, "channel_type": "im", "ts": ts(), "deleted_ts": ts()}},
			{"an edited mention", map[string]any{"type": "app_mention", "user": alice, "text": "<@" + botUserID + "> again", "ts": ts(), "channel": general.ID,
				"edited": map[string]any{"user": alice, "ts": ts()}}},
			{"an event of another type", map[string]any{"type": "reaction_added", "user": alice, "reaction": "tada", "event_ts": ts()}},
		}
		for _, d := range drops {
			f.deliverInner(t, d.inner)
			marker(t, f, in, d.name)
		}
	})
}

func TestIncomingTextIsNormalised(t *testing.T) {
	f := newFakeSlack(t, true)
	f.addChannel("C0OPS00001", "ops", true)
	bob := f.user("bob")
	a := newAdapter(t, f, nil)
	in := run(t, a)
	general := f.channel("general")
	cases := []struct{ raw, want string }{
		{"<@" + botUserID + "> deploy <http://edge.example.com|edge.example.com>", "deploy edge.example.com"},
		{"<@" + botUserID + "> open <https://ci.example.com/1>", "open https://ci.example.com/1"},
		{"<@" + botUserID + "> page <@" + bob + ">", "page @bob"},
		{"<@" + botUserID + "> page <@U0NOBODY01>", "page @U0NOBODY01"},
		{"<@" + botUserID + "> page <@" + bob + "|robert>", "page @robert"},
		{"<@" + botUserID + "> to <#C0OPS00001|ops> and <#C0OPS00001>", "to #ops and #ops"},
		{"<@" + botUserID + "> a &amp;&amp; b &lt;x&gt;", "a && b <x>"},
		{"<@" + botUserID + "> tell <!here> and <!subteam^S1|@oncall>", "tell @here and @oncall"},
		{"<@" + botUserID + "> mail <mailto:a@example.com|a@example.com>", "mail a@example.com"},
		{"hey <@" + botUserID + "> ship it", "hey ship it"},
		{"ship it <@" + botUserID + ">", "ship it"},
		{"<@" + botUserID + ">", ""},
	}
	for _, tc := range cases {
		f.deliverInner(t, slackevents.AppMentionEvent{Type: "app_mention", User: f.user("alice"), Text: tc.raw, TimeStamp: f.nextTSLocked(), Channel: general.ID})
		if m := in.next(t); m.Text != tc.want {
			t.Errorf("%q became %q, want %q", tc.raw, m.Text, tc.want)
		}
	}
}

func TestEventsAPIChecksEveryRequest(t *testing.T) {
	f := newFakeSlack(t, false)
	a := newAdapter(t, f, nil)
	in := run(t, a)
	general := f.channel("general")
	event := func(text string) []byte {
		ev, _ := f.userMessage(general, f.user("alice"), "", mentionFirst, text)
		cb, _ := f.callback(ev)
		b, _ := json.Marshal(cb)
		return b
	}
	post := func(h http.Header, body []byte) *http.Response {
		t.Helper()
		res, err := f.do("events", h, body)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	body := event("must not run")
	stale := sign(signingSecret, time.Now().Add(-6*time.Minute), body)
	future := sign(signingSecret, time.Now().Add(6*time.Minute), body)
	wrong := sign("not-the-secret", time.Now(), body)
	tampered := sign(signingSecret, time.Now(), body)
	noSig := sign(signingSecret, time.Now(), body)
	noSig.Del("X-Slack-Signature")
	noStamp := sign(signingSecret, time.Now(), body)
	noStamp.Del("X-Slack-Request-Timestamp")
	garbled := sign(signingSecret, time.Now(), body)
	garbled.Set("X-Slack-Signature", "v1="+strings.Repeat("ab", 32))
	cases := []struct {
		name string
		h    http.Header
		body []byte
		want int
	}{
		{"a wrong signing secret", wrong, body, http.StatusUnauthorized},
		{"a body changed after signing", tampered, event("something else"), http.StatusUnauthorized},
		{"no signature", noSig, body, http.StatusUnauthorized},
		{"no timestamp", noStamp, body, http.StatusUnauthorized},
		{"a signature of another version", garbled, body, http.StatusUnauthorized},
		{"a timestamp 6 minutes old", stale, body, http.StatusUnauthorized},
		{"a timestamp 6 minutes ahead", future, body, http.StatusUnauthorized},
		{"malformed JSON, signed", sign(signingSecret, time.Now(), []byte(`{"type":`)), []byte(`{"type":`), http.StatusBadRequest},
	}
	for _, tc := range cases {
		if res := post(tc.h, tc.body); res.StatusCode != tc.want {
			t.Errorf("%s: answered %s, want %d", tc.name, res.Status, tc.want)
		}
	}
	marker(t, f, in, "the refused requests")

	// url_verification is answered with its challenge.
	challenge := []byte(`{"token":"legacy","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
	res := post(sign(signingSecret, time.Now(), challenge), challenge)
	got, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || string(got) != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Errorf("url_verification answered %s %q", res.Status, got)
	}
}

func TestARedeliveredEventIsHandledOnce(t *testing.T) {
	modes(t, func(t *testing.T, f *fakeSlack, a *slack.Adapter, in *inbox) {
		ev, _ := f.userMessage(f.channel("general"), f.user("alice"), "", mentionFirst, "deploy once")
		cb, _ := f.callback(ev)
		f.deliverEvent(t, cb)
		if m := in.next(t); m.Text != "deploy once" {
			t.Fatalf("got %q", m.Text)
		}
		if f.socket {
			f.deliverEvent(t, cb) // Slack's retry: same event_id, a new envelope
		} else {
			body, _ := json.Marshal(cb)
			h := http.Header{"X-Slack-Retry-Num": {"1"}, "X-Slack-Retry-Reason": {"http_timeout"}}
			if res := f.postSigned(t, "events", "application/json", body, h, false); res.StatusCode != http.StatusOK {
				t.Errorf("the retry was answered %s, want 200 so that Slack stops retrying", res.Status)
			}
		}
		marker(t, f, in, "a redelivery")
	})
}

func TestEventsBeforeRunAreKept(t *testing.T) {
	f := newFakeSlack(t, false)
	a := newAdapter(t, f, nil)
	f.say(t, "general", f.user("alice"), "", "early")
	in := run(t, a)
	if m := in.next(t); m.Text != "early" {
		t.Errorf("got %q, want the event that came before Run", m.Text)
	}
}

func TestButtonClicksBecomeInteractions(t *testing.T) {
	modes(t, func(t *testing.T, f *fakeSlack, a *slack.Adapter, in *inbox) {
		general := f.channel("general")
		root := f.say(t, "general", f.user("alice"), "", "deploy")
		in.next(t)
		out := chat.Output{Text: "Deploying…", Buttons: []chat.Button{
			{Label: "Cancel", Style: "danger", ActionID: "chima:cancel:7", Value: `{"deploy":7,"by":"alice"}`},
		}}
		ref, err := a.Send(t.Context(), chat.MessageRef{Adapter: "slack", Room: general.ID, ThreadID: root}, out)
		if err != nil {
			t.Fatal(err)
		}
		posted := waitFor(t, f.posts, "post")
		btns := buttons(posted.Blocks)
		if len(btns) != 1 {
			t.Fatalf("the post has %d buttons", len(btns))
		}
		f.click(t, general.ID, posted.TS, posted.Thread, f.user("bob"), btns[0].ActionID, btns[0].Value)
		got := in.click(t)
		want := chat.Interaction{Ref: chat.MessageRef{Adapter: "slack", Room: general.ID, MessageID: ref.MessageID, ThreadID: root},
			User: chat.User{ID: f.user("bob"), Name: "bob"}, ActionID: "chima:cancel:7", Value: `{"deploy":7,"by":"alice"}`}
		got.Time = time.Time{}
		if got != want {
			t.Errorf("click became %+v, want %+v", got, want)
		}
		in.mu.Lock()
		n := len(in.msgs)
		in.mu.Unlock()
		if n != 0 {
			t.Errorf("a click reached the handler as %d message(s)", n)
		}
	})
}

func TestInteractivityRejectsBadRequests(t *testing.T) {
	f := newFakeSlack(t, false)
	a := newAdapter(t, f, nil)
	run(t, a)
	for _, tc := range []struct {
		name, path, body string
		signed           bool
		want             int
	}{
		{"an unsigned click", "interactive", "payload=%7B%7D", false, http.StatusUnauthorized},
		{"no payload", "interactive", "nothing=1", true, http.StatusBadRequest},
		{"a payload that is not JSON", "interactive", "payload=%7Bnot", true, http.StatusBadRequest},
		{"an unsigned slash command", "commands", "command=%2Fchima&text=deploy&channel_id=C1&user_id=U1", false, http.StatusUnauthorized},
		{"a slash command without a channel", "commands", "command=%2Fchima&text=deploy", true, http.StatusBadRequest},
	} {
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		if tc.signed {
			h = sign(signingSecret, time.Now(), []byte(tc.body))
			h.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := f.do(tc.path, h, []byte(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != tc.want {
			t.Errorf("%s: answered %s, want %d", tc.name, res.Status, tc.want)
		}
	}
}
