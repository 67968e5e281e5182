// Package chat holds Chima's chat-neutral message model and the contract every
// chat adapter implements. Adapters import this package and nothing else of
// core; the core speaks to every chat service through it.
package chat

import (
	"context"
	"errors"
	"fmt"
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
}

// Field is a short labelled value of an Output.
type Field struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short,omitempty"`
}

// Button offers a command to click. Adapters without buttons show the command
// as text to type instead.
type Button struct {
	Label   string `json:"label"`
	Command string `json:"command"`
	Style   string `json:"style,omitempty"`
}

// AsText is the button for a service that shows no buttons: the command to
// type instead of clicking.
func (b Button) AsText() string { return "[" + b.Label + "] type: " + b.Command }

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

// Handler receives the messages an adapter reads. The core's bot implements
// it. HandleMessage must not block for long: it queues work and returns.
type Handler interface {
	HandleMessage(ctx context.Context, m Message)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, m Message)

// HandleMessage calls f.
func (f HandlerFunc) HandleMessage(ctx context.Context, m Message) { f(ctx, m) }

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

// ButtonRenderer is an optional capability: the adapter renders buttons and
// turns their clicks into messages. Without it, buttons become text.
type ButtonRenderer interface {
	SupportsButtons() bool
}

// Capabilities says which optional capabilities an adapter has.
type Capabilities struct {
	Threads bool `json:"threads"`
	Edits   bool `json:"edits"`
	Buttons bool `json:"buttons"`
}

// CapabilitiesOf detects the optional capabilities of a.
func CapabilitiesOf(a Adapter) Capabilities {
	var c Capabilities
	if t, ok := a.(Threader); ok {
		c.Threads = t.SupportsThreads()
	}
	if _, ok := a.(Editor); ok {
		c.Edits = true
	}
	if b, ok := a.(ButtonRenderer); ok {
		c.Buttons = b.SupportsButtons()
	}
	return c
}

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
