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
}

// Memory is an in-memory chat adapter for bot-level tests and benchmarks. It
// implements chat.Adapter, chat.Editor and chat.Threader (threads are
// supported); it renders no buttons. It is safe for concurrent use.
//
// Messages from the bot's own user (Self().ID) are never delivered, as on a
// real service. Sent messages are kept in an unbounded log until Reset.
type Memory struct {
	name string

	// dmu serialises deliveries so that messages reach the handler in the
	// order they were injected, including those queued before Run.
	dmu     sync.Mutex
	handler chat.Handler
	runCtx  context.Context
	running bool
	pending []chat.Message
	inSeq   atomic.Uint64

	mu     sync.Mutex
	self   chat.User
	log    []Sent
	cursor int           // index in log of what Next returns next
	wake   chan struct{} // closed on the next record when Next waits
	subs   []func(Sent)
	outSeq uint64
}

var (
	_ chat.Adapter  = (*Memory)(nil)
	_ chat.Editor   = (*Memory)(nil)
	_ chat.Threader = (*Memory)(nil)
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

// Run delivers injected messages to h until ctx ends, then returns nil.
// Messages injected before Run (or between two runs) are queued and
// delivered, in order, when Run starts.
func (m *Memory) Run(ctx context.Context, h chat.Handler) error {
	m.dmu.Lock()
	if m.running {
		m.dmu.Unlock()
		return errors.New("chattest: Memory is already running")
	}
	m.running, m.handler, m.runCtx = true, h, ctx
	pending := m.pending
	m.pending = nil
	for _, msg := range pending {
		h.HandleMessage(ctx, msg)
	}
	m.dmu.Unlock()

	<-ctx.Done()

	m.dmu.Lock()
	m.running, m.handler, m.runCtx = false, nil, nil
	m.dmu.Unlock()
	return nil
}

// Inject posts msg as a user would and returns its reference. It fills
// Ref.Adapter, a unique Ref.MessageID ("m1", "m2", …) when empty and Time
// when zero, then hands msg to the running handler in the caller's goroutine
// (or queues it until Run starts). A message from the bot's own user is not
// delivered. Do not call Inject from the handler itself.
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
	m.dmu.Lock()
	if m.running {
		m.handler.HandleMessage(m.runCtx, msg)
	} else {
		m.pending = append(m.pending, msg)
	}
	m.dmu.Unlock()
	return msg.Ref
}

// Send records out as posted to to.Room (in thread to.ThreadID when set) and
// returns its reference, with a message id "b1", "b2", …
func (m *Memory) Send(ctx context.Context, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	if err := ctx.Err(); err != nil {
		return chat.MessageRef{}, err
	}
	if to.Room == "" {
		return chat.MessageRef{}, fmt.Errorf("chattest: send: %w: empty room", chat.ErrUnknownRoom)
	}
	s := m.record(Sent{Ref: chat.MessageRef{Adapter: m.name, Room: to.Room, ThreadID: to.ThreadID}, Out: out}, true)
	return s.Ref, nil
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
	if fresh {
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
