package slack_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/adapters/slack"
	"github.com/chimaops/chima/core/chat"
)

func TestSlashCommandIsAddressedToTheBot(t *testing.T) {
	modes(t, func(t *testing.T, f *fakeSlack, a *slack.Adapter, in *inbox) {
		general := f.channel("general")
		alice := f.user("alice")
		f.slashCommand(t, general.ID, alice, "deploy project-x to <#"+general.ID+"|general> &amp; tell <@"+alice+"|alice>")
		m := in.next(t)
		if !m.Mentioned || m.Direct || m.Text != "deploy project-x to #general & tell @alice" || m.Ref.Room != general.ID || m.User.ID != alice || m.User.Name != "alice" {
			t.Errorf("slash command became %+v", m)
		}
		if m.Ref.MessageID == "" || m.Ref.ThreadID != "" {
			t.Errorf("slash command ref %+v, want a message id and no thread", m.Ref)
		}

		// The first reply goes to the channel; the next ones into its thread.
		first, err := a.Send(t.Context(), m.Ref.Thread(), chat.Text("deploying"))
		if err != nil {
			t.Fatal(err)
		}
		p := waitFor(t, f.posts, "post")
		if p.Channel != general.ID || p.Thread != "" || p.Shown != "deploying" || first.MessageID != p.TS || first.ThreadID != "" {
			t.Errorf("first answer posted as %+v (ref %+v), want it in the channel", p, first)
		}
		second, err := a.Send(t.Context(), m.Ref.Thread(), chat.Text("done"))
		if err != nil {
			t.Fatal(err)
		}
		p = waitFor(t, f.posts, "post")
		if p.Thread != first.MessageID || second.ThreadID != first.MessageID {
			t.Errorf("second answer went to thread %q (ref %+v), want the first answer's %q", p.Thread, second, first.MessageID)
		}
		if err := a.Update(t.Context(), first, chat.Text("deployed")); err != nil {
			t.Fatal(err)
		}
		if e := waitFor(t, f.edits, "edit"); e.TS != first.MessageID || e.Shown != "deployed" {
			t.Errorf("the edit went to %+v", e)
		}
	})
}

func TestSlashCommandWhereTheBotCannotPostAnswersThroughResponseURL(t *testing.T) {
	modes(t, func(t *testing.T, f *fakeSlack, a *slack.Adapter, in *inbox) {
		f.addChannel("C0SECRET01", "secret", false) // the bot was never invited
		alice := f.user("alice")
		cmd := f.slashCommand(t, "C0SECRET01", alice, "status")
		m := in.next(t)
		ref, err := a.Send(t.Context(), m.Ref.Thread(), chat.Output{Title: "Status", Text: "all green"})
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		r := waitFor(t, f.responses, "response_url post")
		if r.ResponseURL != strings.TrimPrefix(cmd.ResponseURL, strings.TrimSuffix(f.api, "/")) || r.ResponseType != "in_channel" || !strings.Contains(r.Shown, "all green") {
			t.Errorf("response_url got %+v", r)
		}
		if err := a.Update(t.Context(), ref, chat.Text("all red")); err != nil {
			t.Fatalf("Update: %v", err)
		}
		if r := waitFor(t, f.responses, "response_url edit"); !r.Replace || r.Shown != "all red" {
			t.Errorf("the edit through response_url was %+v, want replace_original", r)
		}
		// An ephemeral answer to it goes through the response URL too.
		if err := a.SendEphemeral(t.Context(), m.Ref, alice, chat.Text("only you")); err != nil {
			t.Fatalf("SendEphemeral: %v", err)
		}
		if r := waitFor(t, f.responses, "ephemeral response"); r.ResponseType != "ephemeral" || r.Shown != "only you" {
			t.Errorf("the ephemeral answer was %+v", r)
		}
		if n := f.callCount("chat.postMessage"); n != 1 {
			t.Errorf("chat.postMessage was tried %d times, want once: later replies go straight to the response URL", n)
		}
	})
}

func TestSlashCommandInADirectMessageIsDirect(t *testing.T) {
	modes(t, func(t *testing.T, f *fakeSlack, a *slack.Adapter, in *inbox) {
		alice := f.user("alice")
		f.slashCommand(t, f.im(alice).ID, alice, "help")
		if m := in.next(t); !m.Direct || !m.Mentioned {
			t.Errorf("slash command in a DM became %+v, want Direct and Mentioned", m)
		}
	})
}

func TestOtherSlashCommandsAreTurnedAway(t *testing.T) {
	f := newFakeSlack(t, false)
	a := newAdapter(t, f, func(o *slack.Options) { o.SlashCommand = "ops" })
	in := run(t, a)
	form := url.Values{"command": {"/chima"}, "text": {"deploy"}, "channel_id": {f.channel("general").ID}, "user_id": {f.user("alice")},
		"response_url": {f.api + "response/1"}}
	body := []byte(form.Encode())
	h := sign(signingSecret, time.Now(), body)
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := f.do("commands", h, body)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	var answer map[string]string
	if res.StatusCode != http.StatusOK || json.Unmarshal(b, &answer) != nil || answer["response_type"] != "ephemeral" || !strings.Contains(answer["text"], "/ops") {
		t.Errorf("another command was answered %s %s", res.Status, b)
	}
	marker(t, f, in, "another slash command")
}
