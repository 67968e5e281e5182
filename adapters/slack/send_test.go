package slack_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/adapters/slack"
	"github.com/chimaops/chima/core/chat"
)

func TestSendMapsSlackErrors(t *testing.T) {
	f := newFakeSlack(t, true)
	f.addChannel("C0SECRET01", "secret", false)
	a := newAdapter(t, f, nil)
	general := f.channel("general")
	ctx := t.Context()

	_, err := a.Send(ctx, chat.MessageRef{Room: "C0NOSUCHROOM"}, chat.Text("x"))
	if !errors.Is(err, chat.ErrUnknownRoom) {
		t.Errorf("Send to a channel Slack does not have: %v, want chat.ErrUnknownRoom", err)
	}
	_, err = a.Send(ctx, chat.MessageRef{Room: "C0SECRET01"}, chat.Text("x"))
	if !errors.Is(err, chat.ErrUnknownRoom) {
		t.Errorf("Send to a channel the bot is not in: %v, want chat.ErrUnknownRoom", err)
	}
	_, err = a.Send(ctx, chat.MessageRef{}, chat.Text("x"))
	if !errors.Is(err, chat.ErrUnknownRoom) {
		t.Errorf("Send to no room: %v, want chat.ErrUnknownRoom", err)
	}

	f.rateLimit(1, 3*time.Second)
	_, err = a.Send(ctx, chat.MessageRef{Room: general.ID}, chat.Text("x"))
	var retry *chat.RetryAfterError
	if !errors.As(err, &retry) || retry.After != 3*time.Second {
		t.Errorf("a 429 with Retry-After: 3 became %v, want chat.RetryAfterError after 3s", err)
	}
	if _, err := a.Send(ctx, chat.MessageRef{Room: general.ID}, chat.Text("x")); err != nil {
		t.Errorf("the send after the rate limit: %v", err)
	}

	if err := a.Update(ctx, chat.MessageRef{Room: general.ID, MessageID: "1.000001"}, chat.Text("x")); err == nil || !strings.Contains(err.Error(), "message_not_found") {
		t.Errorf("Update of a message Slack does not have: %v, want message_not_found", err)
	}
}

func TestUpdateOfARichMessageToPlainTextClearsItsBlocks(t *testing.T) {
	f := newFakeSlack(t, true)
	a := newAdapter(t, f, nil)
	general := f.channel("general")
	ref, err := a.Send(t.Context(), chat.MessageRef{Room: general.ID}, chat.Output{Title: "Deploying", Buttons: []chat.Button{{Label: "Cancel", ActionID: "c", Value: "1"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, f.posts, "post")
	if err := a.Update(t.Context(), ref, chat.Text("done")); err != nil {
		t.Fatal(err)
	}
	if e := waitFor(t, f.edits, "edit"); len(e.Blocks) != 0 || e.Shown != "done" {
		t.Errorf("after the edit Slack shows %q with %d blocks, want just \"done\"", e.Shown, len(e.Blocks))
	}
}

func TestDirectMessagesAndEphemeralReplies(t *testing.T) {
	f := newFakeSlack(t, true)
	a := newAdapter(t, f, nil)
	alice := f.user("alice")
	general := f.channel("general")
	ctx := t.Context()

	dm, err := a.OpenDirect(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if dm.Room != f.im(alice).ID || dm.Adapter != "slack" {
		t.Errorf("OpenDirect returned %+v, want the IM %s", dm, f.im(alice).ID)
	}
	if _, err := a.Send(ctx, dm, chat.Text("psst")); err != nil {
		t.Fatal(err)
	}
	if p := waitFor(t, f.posts, "post"); p.Channel != dm.Room || p.Shown != "psst" {
		t.Errorf("the DM was posted as %+v", p)
	}
	if _, err := a.OpenDirect(ctx, "U0NOBODY01"); !errors.Is(err, chat.ErrUnknownUser) {
		t.Errorf("OpenDirect of nobody: %v, want chat.ErrUnknownUser", err)
	}

	root := f.say(t, "general", alice, "", "deploy")
	if err := a.SendEphemeral(ctx, chat.MessageRef{Room: general.ID, ThreadID: root}, alice, chat.Text("only for you")); err != nil {
		t.Fatal(err)
	}
	e := waitFor(t, f.ephemerals, "ephemeral message")
	if e.Channel != general.ID || e.User != alice || e.Thread != root || e.Shown != "only for you" {
		t.Errorf("the ephemeral message was %+v", e)
	}
	if err := a.SendEphemeral(ctx, chat.MessageRef{Room: "C0NOSUCHROOM"}, alice, chat.Text("x")); !errors.Is(err, chat.ErrUnknownRoom) {
		t.Errorf("ephemeral to an unknown channel: %v, want chat.ErrUnknownRoom", err)
	}
}

func TestDirectoryResolvesNamesAndIDs(t *testing.T) {
	f := newFakeSlack(t, true)
	for _, n := range []string{"alpha", "beta", "deployment", "ops", "zeta"} { // several pages of conversations.list
		f.channel(n)
	}
	f.addUser("U0CAROL001", "carol", "Carol C")
	f.user("alice")
	f.user("dave")
	a := newAdapter(t, f, nil)
	ctx := t.Context()
	dep := f.channel("deployment")

	for _, key := range []string{"deployment", "#deployment", dep.ID, "#" + dep.ID} {
		r, err := a.LookupRoom(ctx, key)
		if err != nil || r.ID != dep.ID || r.Name != "deployment" || r.Direct {
			t.Errorf("LookupRoom(%q) = %+v, %v", key, r, err)
		}
	}
	for _, key := range []string{"nowhere", "C0NOSUCHROOM", ""} {
		if _, err := a.LookupRoom(ctx, key); !errors.Is(err, chat.ErrUnknownRoom) {
			t.Errorf("LookupRoom(%q): %v, want chat.ErrUnknownRoom", key, err)
		}
	}
	im := f.im("U0CAROL001")
	if r, err := a.LookupRoom(ctx, im.ID); err != nil || !r.Direct {
		t.Errorf("LookupRoom of an IM = %+v, %v, want Direct", r, err)
	}

	for _, key := range []string{"carol", "@carol", "U0CAROL001", "Carol C"} {
		u, err := a.LookupUser(ctx, key)
		if err != nil || u.ID != "U0CAROL001" || u.Name != "carol" {
			t.Errorf("LookupUser(%q) = %+v, %v", key, u, err)
		}
	}
	for _, key := range []string{"nobody", "U0NOBODY01", "@"} {
		if _, err := a.LookupUser(ctx, key); !errors.Is(err, chat.ErrUnknownUser) {
			t.Errorf("LookupUser(%q): %v, want chat.ErrUnknownUser", key, err)
		}
	}
}

func TestCapabilities(t *testing.T) {
	f := newFakeSlack(t, true)
	a := newAdapter(t, f, nil)
	want := chat.Capabilities{Threads: true, ThreadReplies: true, Edits: true, Buttons: true, Directory: true, Direct: true, Ephemeral: true, Routes: true, Mentions: true, MaxText: 40000}
	if got := chat.CapabilitiesOf(a); got != want {
		t.Errorf("capabilities %+v, want %+v", got, want)
	}
	var paths []string
	for _, r := range a.Routes() {
		paths = append(paths, r.Method+" "+r.Path)
		if r.Verify == nil || r.Handler == nil {
			t.Errorf("route %s has no Verify or Handler", r.Path)
		}
	}
	if got := strings.Join(paths, ", "); got != "POST events, POST commands, POST interactive" {
		t.Errorf("routes %s", got)
	}
	socketOnly, err := slack.New(slack.Options{BotToken: botToken, AppToken: appToken})
	if err != nil {
		t.Fatal(err)
	}
	if r := socketOnly.Routes(); len(r) != 0 {
		t.Errorf("without a signing secret the adapter serves %d routes, want none (nothing could verify them)", len(r))
	}
}

// A mention resolved by the core reaches Slack as <@U…>, which pings the
// member, in the text, the fields and the notification fallback; the text
// around it is still escaped, and a token-looking word the output does not
// declare stays as written.
func TestMentionsReachSlackAsMemberMentionsUnescaped(t *testing.T) {
	f := newFakeSlack(t, true)
	a := newAdapter(t, f, nil)
	general := f.channel("general")
	const token = "chimamention0123456789abx1x"
	mentions := []chat.Mention{{Person: "alice", Placeholder: token, User: chat.User{ID: "U024BE7LH", Name: "alice"}}}
	tests := []struct {
		name      string
		out       chat.Output
		wantText  string
		wantShown string
	}{
		{"plain text", chat.Output{Text: "Broken by " + token + " <script>", Mentions: mentions},
			"Broken by <@U024BE7LH> &lt;script&gt;", ""},
		{"blocks", chat.Output{Title: "CI", Text: "pushed by " + token, Fields: []chat.Field{{Title: "By", Value: token, Short: true}}, Mentions: mentions},
			"", `\u003c@U024BE7LH\u003e`}, // as JSON writes <@U024BE7LH>
		{"an undeclared token", chat.Output{Text: "chimamention0123456789abx2x"}, "chimamention0123456789abx2x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := a.Send(t.Context(), chat.MessageRef{Room: general.ID}, tt.out); err != nil {
				t.Fatal(err)
			}
			p := waitFor(t, f.posts, "post")
			if tt.wantText != "" && p.Text != tt.wantText {
				t.Errorf("Slack got text %q, want %q", p.Text, tt.wantText)
			}
			raw, err := json.Marshal(p.Blocks)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(p.Text+string(raw), "chimamention0123456789abx1x") || strings.Contains(string(raw), "&lt;@") {
				t.Errorf("Slack got a token or an escaped mention: text %q, blocks %s", p.Text, raw)
			}
			if tt.wantShown != "" && strings.Count(string(raw), tt.wantShown) != 2 {
				t.Errorf("blocks %s, want the mention in the text section and the field", raw)
			}
		})
	}
}
