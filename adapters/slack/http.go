package slack

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/chimaops/chima/core/chat"
)

// slashAck acknowledges a slash command and shows the command itself in the
// channel, so that everyone sees what the answer is to.
var slashAck = map[string]string{"response_type": "in_channel"}

// Routes serves Slack's HTTP deliveries when a signing secret is set: the
// Events API at "events", slash commands at "commands" and interactivity
// (button clicks) at "interactive" — /slack/events etc. for an adapter named
// slack. Each is verified with Slack's v0 request signature.
func (a *Adapter) Routes() []chat.Route {
	if a.opts.SigningSecret == "" {
		return nil
	}
	return []chat.Route{
		{Method: http.MethodPost, Path: "events", Verify: a.verify, Handler: http.HandlerFunc(a.serveEvents)},
		{Method: http.MethodPost, Path: "commands", Verify: a.verify, Handler: http.HandlerFunc(a.serveCommand)},
		{Method: http.MethodPost, Path: "interactive", Verify: a.verify, Handler: http.HandlerFunc(a.serveInteractive)},
	}
}

// verify checks X-Slack-Signature (v0, HMAC-SHA256 of "v0:timestamp:body"
// with the signing secret) and that X-Slack-Request-Timestamp is within
// five minutes.
func (a *Adapter) verify(r *http.Request, body []byte) error {
	sv, err := slackgo.NewSecretsVerifier(r.Header, a.opts.SigningSecret)
	if err != nil {
		return fmt.Errorf("slack: %w: %v", chat.ErrUnauthorized, err)
	}
	if _, err := sv.Write(body); err != nil {
		return fmt.Errorf("slack: %w: %v", chat.ErrUnauthorized, err)
	}
	if err := sv.Ensure(); err != nil {
		return fmt.Errorf("slack: %w: %v", chat.ErrUnauthorized, err)
	}
	return nil
}

// serveEvents answers url_verification and hands event callbacks over; a
// retry of an event already handled is acknowledged and dropped.
func (a *Adapter) serveEvents(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	var outer struct {
		Type      string          `json:"type"`
		Challenge string          `json:"challenge"`
		EventID   string          `json:"event_id"`
		Event     json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(body, &outer); err != nil {
		http.Error(w, "malformed JSON", http.StatusBadRequest)
		return
	}
	switch outer.Type {
	case slackevents.URLVerification:
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, outer.Challenge)
		return
	case slackevents.CallbackEvent:
		inner, err := parseInner(outer.Event)
		if err != nil {
			// Not an event for us, or not one we can read: Slack must
			// not retry it.
			a.log.Debug("slack: event not handled", "err", err)
			break
		}
		if n := r.Header.Get("X-Slack-Retry-Num"); n != "" {
			a.log.Debug("slack: event redelivered", "event_id", outer.EventID, "retry", n, "reason", r.Header.Get("X-Slack-Retry-Reason"))
		}
		a.handleEvent(outer.EventID, inner)
	case slackevents.AppRateLimited:
		a.log.Warn("slack: Slack is dropping events: the app is rate limited")
	}
	w.WriteHeader(http.StatusOK)
}

// serveCommand acknowledges a slash command at once (Slack waits 3 s) and
// hands it over; the answer comes later through the Web API.
func (a *Adapter) serveCommand(w http.ResponseWriter, r *http.Request) {
	cmd, err := slackgo.SlashCommandParse(r)
	if err != nil || cmd.Command == "" || cmd.ChannelID == "" || cmd.UserID == "" {
		http.Error(w, "malformed slash command", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if cmd.Command != a.opts.SlashCommand {
		_ = json.NewEncoder(w).Encode(map[string]string{"response_type": "ephemeral",
			"text": fmt.Sprintf("This bot answers %s, not %s.", a.opts.SlashCommand, cmd.Command)})
		return
	}
	_ = json.NewEncoder(w).Encode(slashAck)
	if f, ok := w.(http.Flusher); ok {
		f.Flush() // Slack waits 3 s for the ack; the handling may look up names
	}
	a.handleSlash(cmd)
}

// serveInteractive hands block_actions clicks over.
func (a *Adapter) serveInteractive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("payload") == "" {
		http.Error(w, "no payload", http.StatusBadRequest)
		return
	}
	var cb slackgo.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		http.Error(w, "malformed payload", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
	a.handleInteraction(cb)
}

// innerEvent is what handleEvent reads of the inner events it handles
// (app_mention, message), with slackevents' JSON names.
type innerEvent struct {
	Type            string              `json:"type"`
	SubType         string              `json:"subtype"`
	User            string              `json:"user"`
	BotID           string              `json:"bot_id"`
	Text            string              `json:"text"`
	Channel         string              `json:"channel"`
	ChannelType     string              `json:"channel_type"`
	TimeStamp       string              `json:"ts"`
	ThreadTimeStamp string              `json:"thread_ts"`
	EventTimeStamp  string              `json:"event_ts"`
	Edited          *slackevents.Edited `json:"edited"`
}

// parseInner decodes an event_callback's inner event into the slackevents
// type handleEvent takes, in one pass over it. slackevents.ParseEvent read
// the whole body twice more and the inner event twice, a message event
// four times (MessageEvent's UnmarshalJSON decodes it again, and again as
// a slack.Msg), for fields the adapter never reads. Other types come back
// with no Data, which handleEvent ignores.
func parseInner(raw json.RawMessage) (slackevents.EventsAPIInnerEvent, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return slackevents.EventsAPIInnerEvent{}, errors.New("event_callback has a missing or null event")
	}
	var e innerEvent
	if err := json.Unmarshal(raw, &e); err != nil {
		return slackevents.EventsAPIInnerEvent{}, fmt.Errorf("slack: decoding the inner event: %w", err)
	}
	in := slackevents.EventsAPIInnerEvent{Type: e.Type}
	switch e.Type {
	case string(slackevents.AppMention):
		in.Data = &slackevents.AppMentionEvent{Type: e.Type, User: e.User, Text: e.Text, TimeStamp: e.TimeStamp,
			ThreadTimeStamp: e.ThreadTimeStamp, Channel: e.Channel, EventTimeStamp: e.EventTimeStamp, BotID: e.BotID, Edited: e.Edited}
	case string(slackevents.Message):
		in.Data = &slackevents.MessageEvent{Type: e.Type, SubType: e.SubType, User: e.User, BotID: e.BotID, Text: e.Text,
			TimeStamp: e.TimeStamp, ThreadTimeStamp: e.ThreadTimeStamp, Channel: e.Channel, ChannelType: e.ChannelType, EventTimeStamp: e.EventTimeStamp}
	}
	return in, nil
}
