package outbox

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// call is one Send or Update an adapter was asked for.
type call struct {
	op  string // "send" or "update"
	ref chat.MessageRef
	out chat.Output
}

// fakeAdapter is a scripted chat service: hook decides what each attempt
// answers, gates hold a room's calls until closed, and log keeps what was
// delivered, in order.
type fakeAdapter struct {
	name string
	max  int

	mu       sync.Mutex
	seq      int
	log      []call
	attempts map[string]int // by room
	hook     func(c call, attempt int) error
	gates    map[string]chan struct{}
	seen     chan call // every attempt, when not full
}

var (
	_ chat.Adapter = (*fakeAdapter)(nil)
	_ chat.Editor  = (*fakeAdapter)(nil)
	_ chat.Limiter = (*fakeAdapter)(nil)
)

func newFake(name string) *fakeAdapter {
	return &fakeAdapter{name: name, attempts: map[string]int{}, gates: map[string]chan struct{}{}, seen: make(chan call, 1024)}
}

func (f *fakeAdapter) Name() string                                  { return f.name }
func (f *fakeAdapter) Self() chat.User                               { return chat.User{ID: "bot"} }
func (f *fakeAdapter) Run(ctx context.Context, _ chat.Handler) error { <-ctx.Done(); return nil }
func (f *fakeAdapter) MaxTextLen() int                               { return f.max }

func (f *fakeAdapter) Send(ctx context.Context, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	if err := f.attempt(ctx, call{"send", to, out}); err != nil {
		return chat.MessageRef{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	ref := chat.MessageRef{Adapter: f.name, Room: to.Room, ThreadID: to.ThreadID, MessageID: fmt.Sprintf("m%d", f.seq)}
	f.log = append(f.log, call{"send", ref, out})
	return ref, nil
}

func (f *fakeAdapter) Update(ctx context.Context, ref chat.MessageRef, out chat.Output) error {
	if err := f.attempt(ctx, call{"update", ref, out}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, call{"update", ref, out})
	return nil
}

func (f *fakeAdapter) attempt(ctx context.Context, c call) error {
	f.mu.Lock()
	f.attempts[c.ref.Room]++
	n, gate, hook := f.attempts[c.ref.Room], f.gates[c.ref.Room], f.hook
	f.mu.Unlock()
	select {
	case f.seen <- c:
	default:
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if hook != nil {
		if err := hook(c, n); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// hold makes room's calls wait until the returned function is called.
func (f *fakeAdapter) hold(room string) (release func()) {
	g := make(chan struct{})
	f.mu.Lock()
	f.gates[room] = g
	f.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(g) }) }
}

func (f *fakeAdapter) delivered() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

func (f *fakeAdapter) attemptsIn(room string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts[room]
}

// texts returns the text of what was delivered to room, "+" marking edits.
func (f *fakeAdapter) texts(room string) []string {
	var out []string
	for _, c := range f.delivered() {
		if c.ref.Room != room {
			continue
		}
		t := c.out.Text
		if c.op == "update" {
			t = "+" + t
		}
		out = append(out, t)
	}
	return out
}

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*waiter
}

type waiter struct {
	at time.Time
	c  chan time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) At(t time.Time) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &waiter{at: t, c: make(chan time.Time, 1)}
	if !t.After(c.now) {
		w.c <- c.now
		return w.c, func() {}
	}
	c.waiters = append(c.waiters, w)
	return w.c, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.waiters = slices.DeleteFunc(c.waiters, func(x *waiter) bool { return x == w })
	}
}

// Advance moves the clock on by d, waking the waits it reaches.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waiters = slices.DeleteFunc(c.waiters, func(w *waiter) bool {
		if w.at.After(c.now) {
			return false
		}
		w.c <- c.now
		return true
	})
}

// waiting reports whether something waits for the clock to reach t.
func (c *fakeClock) waiting(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.ContainsFunc(c.waiters, func(w *waiter) bool { return w.at.Equal(t) })
}

// eventually fails t unless cond holds within a bounded guard; it asserts
// no duration, it only keeps a broken test from hanging.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// queueCount is how many queues the outbox has (each with a goroutine).
func (o *Outbox) queueCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.queues)
}
