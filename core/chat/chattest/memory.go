package chattest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/chimaops/chima/core/chat"
)

// ErrUnknownMessage is returned by Update for a reference to a message the
// adapter did not send.
var ErrUnknownMessage = errors.New("unknown message")

// Sent is one message the bot posted through Memory, or one edit of it.
type Sent struct {
	// Ref is the reference Send returned, or the one Update was given.
	Ref chat.MessageRef
	Out chat.Output
	// Edited is set for an Update of an earlier message.
	Edited bool
	// EphemeralTo is set for an ephemeral message (SendEphemeral): the id
	// of the one user it was shown to.
	EphemeralTo string
}

// Memory is an in-memory chat adapter for bot-level tests and benchmarks. It
// implements chat.Adapter, chat.Editor, chat.Threader (threads are
// supported), chat.ButtonRenderer (buttons are rendered once SetButtons
// turns them on), chat.Limiter (no limit until SetMaxText), chat.Directory,
// chat.DirectMessenger and chat.EphemeralSender. It is safe for concurrent
// use.
//
// Until AddRoom or AddUser is called every room and user exists and its id
// is its name. Once a room is added, Memory knows only the rooms added and
// the direct conversations (DirectRoom) of the users added, and Send to any
// other room fails with chat.ErrUnknownRoom, as a real service would.
//
// The test plays the service's side with Inject (a user's message), Click
// (a user's click on a button) and LimitNext (a rate limit), and reads what
// the bot posted with Next, Sent or Subscribe.
//
// Messages from the bot's own user (Self().ID) are never delivered, as on a
// real service. Sent messages are kept in an unbounded log until Reset.
type Memory struct {
	name string

	// dmu serialises deliveries so that messages and clicks reach the
	// handler in the order they were injected, including those queued
	// before Run.
	dmu     sync.Mutex
	handler chat.Handler
	runCtx  context.Context
	running bool
	pending []event
	inSeq   atomic.Uint64

	mu      sync.Mutex
	self    chat.User
	log     []Sent
	cursor  int           // index in log of what Next returns next
	wake    chan struct{} // closed on the next record when Next waits
	subs    []func(Sent)
	outSeq  uint64
	ephSeq  uint64
	buttons bool
	threads bool // replies to room messages start threads
	maxText int
	limit   time.Duration // the next Send is refused with this Retry-After
	rooms   []chat.Room   // the directory, once AddRoom was called
	users   []chat.User
}

// event is a message or a click waiting for Run.
type event struct {
	msg   chat.Message
	click *chat.Interaction
}

var (
	_ chat.Adapter         = (*Memory)(nil)
	_ chat.Editor          = (*Memory)(nil)
	_ chat.Threader        = (*Memory)(nil)
	_ chat.ButtonRenderer  = (*Memory)(nil)
	_ chat.Limiter         = (*Memory)(nil)
	_ chat.Directory       = (*Memory)(nil)
	_ chat.DirectMessenger = (*Memory)(nil)
	_ chat.EphemeralSender = (*Memory)(nil)
)

// NewMemory returns a Memory adapter called name (the MessageRef.Adapter of
// everything it delivers and sends). The bot's identity is {ID: "chima",
// Name: "chima"} until SetSelf.
func NewMemory(name string) *Memory {
	return &Memory{name: name, self: chat.User{ID: "chima", Name: "chima"}}
}

// Name returns the name given to NewMemory.
func (m *Memory) Name() string { return m.name }

// Self returns the bot's identity.
func (m *Memory) Self() chat.User {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.self
}

// SetSelf changes the bot's identity.
func (m *Memory) SetSelf(u chat.User) {
	m.mu.Lock()
	m.self = u
	m.mu.Unlock()
}

// SupportsThreads reports true: Memory keeps thread ids.
func (m *Memory) SupportsThreads() bool { return true }

// Run delivers injected messages and clicks to h until ctx ends, then
// returns nil. Those injected before Run (or between two runs) are queued
// and delivered, in order, when Run starts.
func (m *Memory) Run(ctx context.Context, h chat.Handler) error {
	m.dmu.Lock()
	if m.running {
		m.dmu.Unlock()
		return errors.New("chattest: Memory is already running")
	}
	m.running, m.handler, m.runCtx = true, h, ctx
	pending := m.pending
	m.pending = nil
	for _, e := range pending {
		deliver(ctx, h, e)
	}
	m.dmu.Unlock()

	<-ctx.Done()

	m.dmu.Lock()
	m.running, m.handler, m.runCtx = false, nil, nil
	m.dmu.Unlock()
	return nil
}

func deliver(ctx context.Context, h chat.Handler, e event) {
	if e.click != nil {
		h.HandleInteraction(ctx, *e.click)
		return
	}
	h.HandleMessage(ctx, e.msg)
}

// hand gives e to the running handler in the caller's goroutine, or queues
// it until Run starts.
func (m *Memory) hand(e event) {
	m.dmu.Lock()
	if m.running {
		deliver(m.runCtx, m.handler, e)
	} else {
		m.pending = append(m.pending, e)
	}
	m.dmu.Unlock()
}

// Inject posts msg as a user would and returns its reference. It fills
// Ref.Adapter, a unique Ref.MessageID ("m1", "m2", …) when empty and Time
// when zero, then hands msg to the running handler in the caller's goroutine
// (or queues it until Run starts). A message from the bot's own user is not
// delivered. Do not call Inject from the handler itself.
//
// Inject delivers msg as given: for a direct message set Direct and
// Ref.Room to DirectRoom(user id); for a native mention set Mentioned and
// leave the mention out of Text, as a real adapter would.
func (m *Memory) Inject(msg chat.Message) chat.MessageRef {
	msg.Ref.Adapter = m.name
	if msg.Ref.MessageID == "" {
		msg.Ref.MessageID = "m" + strconv.FormatUint(m.inSeq.Add(1), 10)
	}
	if msg.Time.IsZero() {
		msg.Time = time.Now()
	}
	if msg.User.ID == m.Self().ID {
		return msg.Ref
	}
	m.hand(event{msg: msg})
	return msg.Ref
}

// Click hands in to the handler as a user's click on a button of a bot
// message would reach it, in the caller's goroutine or queued until Run
// starts, in order with injected messages. It fills Ref.Adapter and Time
// when zero; Ref is the message that carried the button (as Send returned
// it) and ActionID and Value those of the button, which Sent shows. Do not
// call Click from the handler itself.
func (m *Memory) Click(in chat.Interaction) {
	in.Ref.Adapter = m.name
	if in.Time.IsZero() {
		in.Time = time.Now()
	}
	m.hand(event{click: &in})
}

// SetButtons turns the rendering of buttons on or off (off by default: the
// core then shows buttons as text). Call it before the bot is given m: the
// core reads capabilities once.
func (m *Memory) SetButtons(on bool) {
	m.mu.Lock()
	m.buttons = on
	m.mu.Unlock()
}

// SupportsButtons reports whether SetButtons turned buttons on.
func (m *Memory) SupportsButtons() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.buttons
}

// SetThreadReplies makes the core answer a room message in a thread under
// it, as on Slack and Mattermost (off by default: replies go where the
// message was). Call it before the bot is given m.
func (m *Memory) SetThreadReplies(on bool) {
	m.mu.Lock()
	m.threads = on
	m.mu.Unlock()
}

// RepliesInThreads reports whether SetThreadReplies turned thread replies on.
func (m *Memory) RepliesInThreads() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.threads
}

// SetMaxText makes Send refuse a message whose plain text is longer than n
// characters (runes), as a service does; 0, the default, is no limit. Call
// it before the bot is given m.
func (m *Memory) SetMaxText(n int) {
	m.mu.Lock()
	m.maxText = n
	m.mu.Unlock()
}

// MaxTextLen returns the limit SetMaxText set.
func (m *Memory) MaxTextLen() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.maxText
}

// ErrRateLimited is the error a RetryAfterError from a Send refused after
// LimitNext wraps.
var ErrRateLimited = errors.New("rate limited")

// LimitNext makes the next Send fail, as a rate-limited service refuses a
// post, with a *chat.RetryAfterError of after; nothing is recorded for it.
// The Send after it is taken again.
func (m *Memory) LimitNext(after time.Duration) {
	m.mu.Lock()
	m.limit = after
	m.mu.Unlock()
}

// AddRoom adds r to the directory; from then on Memory knows only the rooms
// added (see Memory). Adding a room whose id is known again replaces it.
func (m *Memory) AddRoom(r chat.Room) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, old := range m.rooms {
		if old.ID == r.ID {
			m.rooms[i] = r
			return
		}
	}
	m.rooms = append(m.rooms, r)
}

// AddUser adds u to the directory; from then on Memory knows only the users
// added. Adding a user whose id is known again replaces them.
func (m *Memory) AddUser(u chat.User) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, old := range m.users {
		if old.ID == u.ID {
			m.users[i] = u
			return
		}
	}
	m.users = append(m.users, u)
}

// DirectRoom returns the id of the direct conversation between the bot and
// the user userID: "D-" + userID.
func DirectRoom(userID string) string { return "D-" + userID }

// room finds the room id or name nameOrID (a leading '#' ignored), including
// the direct conversations of known users; strict is false while every room
// exists.
func (m *Memory) room(nameOrID string) (r chat.Room, ok, strict bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := strings.TrimPrefix(nameOrID, "#")
	if len(m.rooms) == 0 && len(m.users) == 0 {
		if id, isDM := strings.CutPrefix(q, "D-"); isDM {
			return chat.Room{ID: q, Name: "@" + id, Direct: true}, q != "" && id != "", false
		}
		return chat.Room{ID: q, Name: q}, q != "", false
	}
	for _, r := range m.rooms {
		if r.ID == q || r.Name == q {
			return r, true, true
		}
	}
	for _, u := range m.users {
		if DirectRoom(u.ID) == q {
			return chat.Room{ID: q, Name: "@" + u.Name, Direct: true}, true, true
		}
	}
	return chat.Room{}, false, true
}

// LookupRoom finds a room by id or name ('#name' too). While no room was
// added every room exists and its id is its name.
func (m *Memory) LookupRoom(ctx context.Context, nameOrID string) (chat.Room, error) {
	if err := ctx.Err(); err != nil {
		return chat.Room{}, err
	}
	r, ok, _ := m.room(nameOrID)
	if !ok {
		return chat.Room{}, fmt.Errorf("chattest: look up room %q: %w", nameOrID, chat.ErrUnknownRoom)
	}
	return r, nil
}

// LookupUser finds a user by id or name ('@name' too). While no user was
// added every user exists and their id is their name.
func (m *Memory) LookupUser(ctx context.Context, nameOrID string) (chat.User, error) {
	if err := ctx.Err(); err != nil {
		return chat.User{}, err
	}
	q := strings.TrimPrefix(nameOrID, "@")
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.rooms) == 0 && len(m.users) == 0 && q != "" {
		return chat.User{ID: q, Name: q}, nil
	}
	for _, u := range m.users {
		if u.ID == q || u.Name == q {
			return u, nil
		}
	}
	return chat.User{}, fmt.Errorf("chattest: look up user %q: %w", nameOrID, chat.ErrUnknownUser)
}

// OpenDirect returns the direct conversation with userID, DirectRoom(userID).
func (m *Memory) OpenDirect(ctx context.Context, userID string) (chat.MessageRef, error) {
	if err := ctx.Err(); err != nil {
		return chat.MessageRef{}, err
	}
	if _, err := m.LookupUser(ctx, userID); err != nil || userID == "" {
		return chat.MessageRef{}, fmt.Errorf("chattest: open direct conversation with %q: %w", userID, chat.ErrUnknownUser)
	}
	return chat.MessageRef{Adapter: m.name, Room: DirectRoom(userID)}, nil
}

// postable reports whether a post to room id can go anywhere: any room
// while every room exists, else only a known room's id (not its name).
func (m *Memory) postable(id string) bool {
	r, ok, strict := m.room(id)
	return ok && (!strict || r.ID == id)
}

// Send records out as posted to to.Room (in thread to.ThreadID when set) and
// returns its reference, with a message id "b1", "b2", …
func (m *Memory) Send(ctx context.Context, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	if err := ctx.Err(); err != nil {
		return chat.MessageRef{}, err
	}
	if !m.postable(to.Room) {
		return chat.MessageRef{}, fmt.Errorf("chattest: send to %q: %w", to.Room, chat.ErrUnknownRoom)
	}
	m.mu.Lock()
	limit, maxText := m.limit, m.maxText
	m.limit = 0
	m.mu.Unlock()
	if limit > 0 {
		return chat.MessageRef{}, fmt.Errorf("chattest: send to %s: %w", to.Room, &chat.RetryAfterError{After: limit, Err: ErrRateLimited})
	}
	if n := utf8.RuneCountInString(out.PlainText()); maxText > 0 && n > maxText {
		return chat.MessageRef{}, fmt.Errorf("chattest: send to %s: text of %d characters is longer than the %d the service takes", to.Room, n, maxText)
	}
	s := m.record(Sent{Ref: chat.MessageRef{Adapter: m.name, Room: to.Room, ThreadID: to.ThreadID}, Out: out}, true)
	return s.Ref, nil
}

// SendEphemeral records out as shown to userID alone in to.Room: a Sent with
// EphemeralTo set and a message id "e1", "e2", …
func (m *Memory) SendEphemeral(ctx context.Context, to chat.MessageRef, userID string, out chat.Output) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !m.postable(to.Room) {
		return fmt.Errorf("chattest: send ephemeral to %q: %w", to.Room, chat.ErrUnknownRoom)
	}
	if _, err := m.LookupUser(ctx, userID); err != nil || userID == "" {
		return fmt.Errorf("chattest: send ephemeral to %q: %w", userID, chat.ErrUnknownUser)
	}
	m.record(Sent{Ref: chat.MessageRef{Adapter: m.name, Room: to.Room, ThreadID: to.ThreadID}, Out: out, EphemeralTo: userID}, true)
	return nil
}

// Update records out as the new content of the message ref, which Send must
// have returned.
func (m *Memory) Update(ctx context.Context, ref chat.MessageRef, out chat.Output) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ref.Adapter = m.name
	if !m.sentByMe(ref.MessageID) {
		return fmt.Errorf("chattest: update %s: %w", ref, ErrUnknownMessage)
	}
	m.record(Sent{Ref: ref, Out: out, Edited: true}, false)
	return nil
}

func (m *Memory) sentByMe(id string) bool {
	n, err := strconv.ParseUint(strings.TrimPrefix(id, "b"), 10, 64)
	if err != nil || !strings.HasPrefix(id, "b") || n == 0 {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return n <= m.outSeq
}

// record appends s to the log, giving it a new message id when fresh, wakes a
// waiting Next and calls the subscribers.
func (m *Memory) record(s Sent, fresh bool) Sent {
	m.mu.Lock()
	switch {
	case fresh && s.EphemeralTo != "":
		m.ephSeq++
		s.Ref.MessageID = "e" + strconv.FormatUint(m.ephSeq, 10)
	case fresh:
		m.outSeq++
		s.Ref.MessageID = "b" + strconv.FormatUint(m.outSeq, 10)
	}
	m.log = append(m.log, s)
	if m.wake != nil {
		close(m.wake)
		m.wake = nil
	}
	subs := m.subs
	m.mu.Unlock()
	for _, f := range subs {
		f(s)
	}
	return s
}

// Sent returns a copy of everything sent and edited since NewMemory or the
// last Reset, in order.
func (m *Memory) Sent() []Sent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.log)
}

// Next returns the next sent or edited message that Next has not returned
// yet, waiting for it until ctx ends.
func (m *Memory) Next(ctx context.Context) (Sent, error) {
	for {
		m.mu.Lock()
		if m.cursor < len(m.log) {
			s := m.log[m.cursor]
			m.cursor++
			m.mu.Unlock()
			return s, nil
		}
		if m.wake == nil {
			m.wake = make(chan struct{})
		}
		wake := m.wake
		m.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return Sent{}, fmt.Errorf("chattest: waiting for the next sent message: %w", ctx.Err())
		}
	}
}

// Subscribe calls f with every message sent or edited from now on, in the
// sender's goroutine, after it is logged. f must not block for long nor call
// Subscribe.
func (m *Memory) Subscribe(f func(Sent)) {
	m.mu.Lock()
	// A fresh slice, so that record's snapshot of the old one stays valid.
	m.subs = append(slices.Clip(m.subs), f)
	m.mu.Unlock()
}

// Reset forgets everything sent so far; Next then waits for what is sent
// next. Message ids keep counting.
func (m *Memory) Reset() {
	m.mu.Lock()
	m.log = nil
	m.cursor = 0
	m.mu.Unlock()
}
