// Package chat holds Chima's chat-neutral message model and the contract every
// chat adapter implements. Adapters import this package and nothing else of
// core; the core speaks to every chat service through it.
package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// MessageRef identifies one chat message stably enough to be stored, sent to a
// plugin process and used later: to reply in its thread, to edit it (progress)
// or to bind a button click back to what asked for it.
type MessageRef struct {
	Adapter   string `json:"adapter"`
	Room      string `json:"room"`
	MessageID string `json:"message_id,omitempty"`
	// ThreadID is the root of the thread the message belongs to; empty when
	// the message is not in a thread.
	ThreadID string `json:"thread_id,omitempty"`
}

// String renders the reference for logs.
func (r MessageRef) String() string {
	s := r.Adapter + ":" + r.Room
	if r.ThreadID != "" {
		s += "/" + r.ThreadID
	}
	if r.MessageID != "" {
		s += "#" + r.MessageID
	}
	return s
}

// Thread returns the reference of the thread a reply to r belongs in: r's own
// thread, or a new thread rooted at r.
func (r MessageRef) Thread() MessageRef {
	t := MessageRef{Adapter: r.Adapter, Room: r.Room, ThreadID: r.ThreadID}
	if t.ThreadID == "" {
		t.ThreadID = r.MessageID
	}
	return t
}

// User is a chat user as an adapter knows them.
type User struct {
	// ID is the adapter's stable user id (Slack "U123", a shell login name).
	ID string `json:"id"`
	// Name is the display name.
	Name string `json:"name,omitempty"`
}

// Message is one incoming chat message.
type Message struct {
	Ref  MessageRef `json:"ref"`
	User User       `json:"user"`
	Text string     `json:"text"`
	// Direct is set for a direct (private) message to the bot.
	Direct bool `json:"direct,omitempty"`
	// Mentioned is set when the adapter saw the bot mentioned natively (a
	// Slack <@U…> mention), which the adapter has already removed from Text.
	Mentioned bool      `json:"mentioned,omitempty"`
	Time      time.Time `json:"time"`
	// DeliveryKey identifies this message across processes and time, for
	// services that may deliver one message twice or to every replica of
	// the bot (a Mattermost post id, a Slack event id, a webhook's delivery
	// id): replicas sharing a store answer it once. Empty for messages that
	// cannot be told apart that way (the console's); those are never
	// de-duplicated.
	DeliveryKey string `json:"delivery_key,omitempty"`
}

// Output is a chat-neutral outgoing message that each adapter renders its own
// way. Only Text is required.
type Output struct {
	Title   string   `json:"title,omitempty"`
	Text    string   `json:"text,omitempty"`
	Fields  []Field  `json:"fields,omitempty"`
	Code    string   `json:"code,omitempty"`
	Buttons []Button `json:"buttons,omitempty"`
	// Fallback is the plain-text rendering; PlainText builds one when empty.
	Fallback string `json:"fallback,omitempty"`
	// Status hints colour or emoji: "", "good", "warning", "danger", "info".
	Status string `json:"status,omitempty"`
	// Mentions are the people the message pings (see Mention).
	Mentions []Mention `json:"mentions,omitempty"`
}

// Mention is a person an Output pings. Placeholder is the text that stands
// for them in Text, Fields' values and Fallback.
//
// A plugin's Output names the Person (a person of config people:) and a
// placeholder of its own. Before the Output reaches an adapter the core
// resolves each mention for that adapter. Where the adapter is a Mentioner
// and the person has an account on it, the placeholder becomes a token of
// letters and digits, which markup and escaping leave as it is, and User is
// the account; the adapter writes its MentionText of User in the token's
// stead (ReplaceMentions, MentionReplacer). Elsewhere the core writes the
// person's name in the placeholder's stead and drops the mention, so an
// adapter only ever sees resolved ones.
type Mention struct {
	Person      string `json:"person"`
	Placeholder string `json:"placeholder"`
	User        User   `json:"user,omitzero"`
}

// Mentioner is an optional capability: the service pings a user named in a
// message by the text MentionText returns (Slack "<@U024BE7LH>", Mattermost
// "@alice"), or "" when it cannot ping u (a Mattermost user whose username
// is not known). u is the account of the person on this service, with its
// Name when the service's directory answered.
type Mentioner interface {
	MentionText(u User) string
}

// MentionReplacer returns the function that writes, in text rendered from
// o, the mention of each of o's people in their token's stead: text(User),
// or the person's name where text returns "". For adapters that escape what
// they render (Slack): the token passes escaping unchanged, the mention must
// not be escaped. It returns its argument unchanged when o mentions nobody.
func (o Output) MentionReplacer(text func(User) string) func(string) string {
	if len(o.Mentions) == 0 {
		return func(s string) string { return s }
	}
	pairs := make([]string, 0, 2*len(o.Mentions))
	for _, m := range o.Mentions {
		if m.Placeholder == "" {
			continue
		}
		t := text(m.User)
		if t == "" {
			t = m.Person
		}
		pairs = append(pairs, m.Placeholder, t)
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace
}

// ReplaceMentions returns o with the mention of each of its people written
// in their token's stead in Text, Fields' values and Fallback (see
// MentionReplacer), and no Mentions: for adapters that render text as it
// was written (Mattermost). o is left as it was.
func (o Output) ReplaceMentions(text func(User) string) Output {
	if len(o.Mentions) == 0 {
		return o
	}
	o = o.Rewrite(o.MentionReplacer(text), nil)
	o.Mentions = nil
	return o
}

// Rewrite returns o with text applied to what a chat service may read
// markup and mentions in (Text, Fields' values, Fallback) and, unless it is
// nil, name applied to what it shows as it is (Title, Fields' titles, Code,
// Buttons' labels). Fields and Buttons are copied, so o's stay as they were.
func (o Output) Rewrite(text, name func(string) string) Output {
	if name == nil {
		name = func(s string) string { return s }
	}
	o.Title, o.Text, o.Code, o.Fallback = name(o.Title), text(o.Text), name(o.Code), text(o.Fallback)
	if len(o.Fields) > 0 {
		fields := make([]Field, len(o.Fields))
		for i, f := range o.Fields {
			f.Title, f.Value = name(f.Title), text(f.Value)
			fields[i] = f
		}
		o.Fields = fields
	}
	if len(o.Buttons) > 0 {
		buttons := make([]Button, len(o.Buttons))
		for i, b := range o.Buttons {
			b.Label = name(b.Label)
			buttons[i] = b
		}
		o.Buttons = buttons
	}
	return o
}

// Field is a short labelled value of an Output.
type Field struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short,omitempty"`
}

// Button offers something to click.
//
// A plugin sets Command (a click runs that command as the person who
// clicked, marked as a click, through router and policy) or an action of its
// own (a click is handed back to the plugin as an interaction). Before an
// Output reaches an adapter the core sets ActionID and Value on every
// button; adapters treat both as opaque strings, render them into the
// service's button (Slack action_id ≤ 255 bytes and value ≤ 2,000 bytes;
// Mattermost integration context) and hand them back unchanged in an
// Interaction. Adapters without buttons show AsText instead.
type Button struct {
	Label   string `json:"label"`
	Command string `json:"command,omitempty"`
	// Style is "", "primary" or "danger".
	Style string `json:"style,omitempty"`
	// ActionID names what a click does; set by the core (see above).
	ActionID string `json:"action_id,omitempty"`
	// Value is the data a click carries back; set by the core.
	Value string `json:"value,omitempty"`
}

// AsText is the button for a service that shows no buttons: the command to
// type instead of clicking.
func (b Button) AsText() string {
	if b.Command == "" {
		return "[" + b.Label + "]"
	}
	return "[" + b.Label + "] type: " + b.Command
}

// Text returns an Output with just text.
func Text(format string, args ...any) Output {
	if len(args) == 0 {
		return Output{Text: format}
	}
	return Output{Text: fmt.Sprintf(format, args...)}
}

// PlainText renders o for a service that shows nothing but text.
func (o Output) PlainText() string {
	if o.Fallback != "" {
		return o.Fallback
	}
	var b strings.Builder
	line := func(s string) {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(s)
	}
	if o.Title != "" {
		line(o.Title)
	}
	if o.Text != "" {
		line(o.Text)
	}
	for _, f := range o.Fields {
		line(f.Title + ": " + f.Value)
	}
	if o.Code != "" {
		line("```\n" + strings.TrimRight(o.Code, "\n") + "\n```")
	}
	for _, btn := range o.Buttons {
		line(btn.AsText())
	}
	return b.String()
}

// Interaction is a click on a button the bot posted. It is not a message: a
// click never reaches the core as the text of a command, so nobody can pass
// typed words off as a click or a click as typed words.
type Interaction struct {
	// Ref is the message that carried the button: its room, id and thread.
	Ref MessageRef `json:"ref"`
	// User is who clicked.
	User User `json:"user"`
	// ActionID and Value are the button's, exactly as the core set them.
	ActionID string `json:"action_id"`
	Value    string `json:"value,omitempty"`
	// Direct is set when the button was in a direct conversation.
	Direct bool      `json:"direct,omitempty"`
	Time   time.Time `json:"time"`
}

// Handler receives what an adapter reads: messages and button clicks. The
// core's bot implements it. Neither method may block for long: they queue
// work and return.
type Handler interface {
	HandleMessage(ctx context.Context, m Message)
	HandleInteraction(ctx context.Context, in Interaction)
}

// HandlerFunc adapts a function to Handler; it drops interactions. For tests
// and adapters' examples.
type HandlerFunc func(ctx context.Context, m Message)

// HandleMessage calls f.
func (f HandlerFunc) HandleMessage(ctx context.Context, m Message) { f(ctx, m) }

// HandleInteraction drops in.
func (f HandlerFunc) HandleInteraction(context.Context, Interaction) {}

// Handlers adapts two functions to Handler; a nil function drops what it
// would get.
type Handlers struct {
	Message     func(ctx context.Context, m Message)
	Interaction func(ctx context.Context, in Interaction)
}

// HandleMessage calls h.Message.
func (h Handlers) HandleMessage(ctx context.Context, m Message) {
	if h.Message != nil {
		h.Message(ctx, m)
	}
}

// HandleInteraction calls h.Interaction.
func (h Handlers) HandleInteraction(ctx context.Context, in Interaction) {
	if h.Interaction != nil {
		h.Interaction(ctx, in)
	}
}

// Adapter is the contract of a chat service. Every adapter passes the
// conformance suite in chattest.
type Adapter interface {
	// Name is the adapter's name as used in MessageRef.Adapter and config.
	Name() string
	// Run receives messages and hands them to h until ctx ends. It reconnects
	// by itself after transient failures and returns only on ctx's end or a
	// permanent error (bad credentials).
	Run(ctx context.Context, h Handler) error
	// Send posts out to to.Room, in thread to.ThreadID when set and
	// supported, and returns the new message's reference.
	Send(ctx context.Context, to MessageRef, out Output) (MessageRef, error)
	// Self is the bot's own identity on this service.
	Self() User
}

// Editor is an optional capability: the adapter can replace the content of a
// message it sent. Without it, progress is posted as new messages.
type Editor interface {
	Update(ctx context.Context, ref MessageRef, out Output) error
}

// Threader is an optional capability: the adapter can reply in threads.
// Without it, thread ids are dropped and replies go to the room.
type Threader interface {
	SupportsThreads() bool
}

// ThreadReplier is an optional capability of a Threader: where
// RepliesInThreads is true, the service's custom is that a bot answers a
// message in a room in a thread under it (Slack, Mattermost), so the core
// starts one. Without it, replies go where the message was: its thread, or
// the room. Direct messages are answered in place either way.
type ThreadReplier interface {
	RepliesInThreads() bool
}

// ButtonRenderer is an optional capability: the adapter renders buttons and
// hands their clicks to Handler.HandleInteraction. Without it, buttons become
// text.
type ButtonRenderer interface {
	SupportsButtons() bool
}

// Capabilities says which optional capabilities an adapter has. CapabilitiesOf
// is the one place they are detected; the core asks nothing else.
type Capabilities struct {
	Threads bool `json:"threads"`
	// ThreadReplies is set when replies to a room message start a thread
	// under it (ThreadReplier); it implies Threads.
	ThreadReplies bool `json:"thread_replies,omitempty"`
	Edits         bool `json:"edits"`
	Buttons       bool `json:"buttons"`
	Directory     bool `json:"directory"`
	Direct        bool `json:"direct"`
	Ephemeral     bool `json:"ephemeral"`
	Routes        bool `json:"routes"`
	// Mentions is set when the adapter pings people named in a message
	// (Mentioner).
	Mentions bool `json:"mentions,omitempty"`
	// MaxText is the longest message text, in characters (runes), the
	// service takes; 0 is no limit. The core's outbox splits or truncates
	// longer ones.
	MaxText int `json:"max_text,omitempty"`
}

// CapabilitiesOf detects the optional capabilities of a.
func CapabilitiesOf(a Adapter) Capabilities {
	var c Capabilities
	if t, ok := a.(Threader); ok {
		c.Threads = t.SupportsThreads()
	}
	if t, ok := a.(ThreadReplier); ok && c.Threads {
		c.ThreadReplies = t.RepliesInThreads()
	}
	if _, ok := a.(Editor); ok {
		c.Edits = true
	}
	if b, ok := a.(ButtonRenderer); ok {
		c.Buttons = b.SupportsButtons()
	}
	_, c.Directory = a.(Directory)
	_, c.Direct = a.(DirectMessenger)
	_, c.Ephemeral = a.(EphemeralSender)
	_, c.Routes = a.(RouteProvider)
	_, c.Mentions = a.(Mentioner)
	if l, ok := a.(Limiter); ok {
		c.MaxText = l.MaxTextLen()
	}
	return c
}

// Limiter is an optional capability: the service refuses messages longer
// than MaxTextLen characters.
type Limiter interface {
	MaxTextLen() int
}

// Room is a chat room (channel) as a Directory knows it.
type Room struct {
	// ID is the service's id ("C024BE91L"); Name its name ("deployment").
	ID   string `json:"id"`
	Name string `json:"name"`
	// Direct is set for a direct conversation.
	Direct bool `json:"direct,omitempty"`
}

// Directory is an optional capability: room and user ids resolve to names
// and names to ids. People and config name rooms ("deployment", "#ops");
// services report ids ("C024BE91L"). Each lookup accepts either form (a
// leading '#' or '@' is ignored) and returns ErrUnknownRoom / ErrUnknownUser
// when the service has no such room or user. The core caches the answers.
type Directory interface {
	LookupRoom(ctx context.Context, nameOrID string) (Room, error)
	LookupUser(ctx context.Context, nameOrID string) (User, error)
}

// DirectMessenger is an optional capability: the adapter can open a direct
// conversation with a user and returns the room to Send to.
type DirectMessenger interface {
	OpenDirect(ctx context.Context, userID string) (MessageRef, error)
}

// EphemeralSender is an optional capability: the adapter can show a message
// to one user only, in to.Room (Slack's chat.postEphemeral, Mattermost's
// ephemeral posts). Without it, the core sends a direct message or a normal
// reply.
type EphemeralSender interface {
	SendEphemeral(ctx context.Context, to MessageRef, userID string, out Output) error
}

// Route is an HTTP endpoint an adapter serves on the bot's HTTP server:
// Slack's Events API, slash commands and interactivity, Mattermost's slash
// command and integration actions, generic inbound webhooks.
type Route struct {
	// Method is "POST" or "GET".
	Method string
	// Path is relative to the adapter's prefix: the core mounts Path "events"
	// of adapter "slack" at /slack/events, so adapters never collide.
	// An empty path mounts the prefix itself; "{name}" wildcards work as in
	// net/http patterns.
	Path string
	// Verify checks the request's signature or token against the body,
	// which the core has read whole within its body limit. A non-nil error
	// is answered 401 and the request goes no further: Handler never sees
	// it. Verify must not be nil.
	Verify func(r *http.Request, body []byte) error
	// Handler serves a verified request; r.Body holds the same bytes again.
	Handler http.Handler
	// MaxBody bounds the body in bytes; 0 is the core's default (1 MiB).
	MaxBody int64
}

// RouteProvider is an optional capability: the adapter serves HTTP routes on
// the bot's server. Routes is called once, before Run.
type RouteProvider interface {
	Routes() []Route
}

// ErrUnauthorized is what a Route's Verify returns (wrapped) for a missing,
// wrong or stale signature.
var ErrUnauthorized = errors.New("unauthorized")

// ErrRefused is wrapped by an adapter's error when the service refused the
// request for good (a malformed message, a permission it will not grant):
// sending it again cannot succeed, so the core's outbox gives it up at once
// instead of retrying.
var ErrRefused = errors.New("refused by the service")

// ErrUnknownUser is returned by a Directory for a user the service does not
// have.
var ErrUnknownUser = errors.New("unknown user")

// Setup is what an adapter Factory gets to build one configured adapter.
// A factory builds without touching the network (Run connects), so that
// `chima config validate` can build every adapter to check its config.
type Setup struct {
	// Name is the adapter's configured name, used in refs, policies and
	// notify rooms ("slack", "ops-slack").
	Name string
	// Decode decodes the adapter's config entry (every key but name and
	// type) into v, a pointer to a struct with yaml tags. Unknown keys and
	// wrong types are errors that name the key.
	Decode func(v any) error
	// Secret returns the value of the environment variable env, registers
	// it with the redactor so it never reaches logs or chat, and errors,
	// naming the variable, when it is empty.
	Secret func(env string) (string, error)
	// BotName is the bot's name (bot.name), which a console or a webhook
	// answers to.
	BotName string
	// Logger logs for the adapter.
	Logger *slog.Logger
	// Interactive is set when the bot's stdin is a terminal (the console
	// adapter uses readline then).
	Interactive bool
}

// OptionError is what a Factory returns (wrapped or not) for a bad value of
// one key of its config entry, so that the problem names the key, its file
// and line ("chima.yaml:7: adapters[1].room: required"). Other errors name
// the entry as a whole.
type OptionError struct {
	// Key is the option's key in the entry ("room", "inbound[0].secret_env").
	Key string
	Err error
}

func (e *OptionError) Error() string { return e.Key + ": " + e.Err.Error() }

func (e *OptionError) Unwrap() error { return e.Err }

// Factory builds one adapter of a type from its config entry. cmd/chima
// registers one per adapter type; the core names no adapter.
type Factory func(s Setup) (Adapter, error)

// RetryAfterError is returned by an adapter that was rate limited; the core
// waits After and tries again.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("rate limited, retry after %s: %v", e.After, e.Err)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// ErrUnknownRoom is returned by Send for a room the adapter cannot post to.
var ErrUnknownRoom = errors.New("unknown room")
