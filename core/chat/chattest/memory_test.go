package chattest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
)

// memoryPeer plays the service for Memory: what users say is injected, what
// the bot posted is read from the log.
type memoryPeer struct{ m *chattest.Memory }

func (p memoryPeer) Say(_ *testing.T, room, user, thread, text string) {
	p.m.Inject(chat.Message{
		Ref:  chat.MessageRef{Room: room, ThreadID: thread},
		User: chat.User{ID: user, Name: user},
		Text: text,
	})
}

func (p memoryPeer) Said(t *testing.T) chattest.PeerMessage   { return p.next(t, false) }
func (p memoryPeer) Edited(t *testing.T) chattest.PeerMessage { return p.next(t, true) }

func (p memoryPeer) next(t *testing.T, edited bool) chattest.PeerMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), chattest.Guard)
	defer cancel()
	s, err := p.m.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Edited != edited {
		t.Fatalf("next sent message %+v has Edited %v, want %v", s, s.Edited, edited)
	}
	return chattest.PeerMessage{Room: s.Ref.Room, Thread: s.Ref.ThreadID, ID: s.Ref.MessageID, Text: s.Out.PlainText()}
}

func TestMemoryConformance(t *testing.T) {
	chattest.RunConformance(t, chattest.Harness{
		New: func(*testing.T) (chat.Adapter, chattest.Peer) {
			m := chattest.NewMemory("memory")
			return m, memoryPeer{m}
		},
	})
}

// run starts m with h and stops it at the end of the test.
func run(t *testing.T, m *chattest.Memory, h chat.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// collect is a handler that keeps what it gets.
type collect struct {
	mu   sync.Mutex
	msgs []chat.Message
}

func (c *collect) HandleMessage(_ context.Context, m chat.Message) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}

func (c *collect) HandleInteraction(context.Context, chat.Interaction) {}

func (c *collect) texts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ts []string
	for _, m := range c.msgs {
		ts = append(ts, m.Text)
	}
	return ts
}

func TestMemoryInjectFillsTheMessage(t *testing.T) {
	m := chattest.NewMemory("memory")
	var c collect
	run(t, m, &c)
	ref := m.Inject(chat.Message{Ref: chat.MessageRef{Room: "general"}, User: chat.User{ID: "alice"}, Text: "hi"})
	if ref.Adapter != "memory" || ref.Room != "general" || ref.MessageID == "" {
		t.Errorf("Inject returned %+v", ref)
	}
	// Inject may run before Run starts; the message is then queued.
	waitFor(t, func() bool { return len(c.texts()) == 1 })
	c.mu.Lock()
	got := c.msgs[0]
	c.mu.Unlock()
	if got.Ref != ref || got.Time.IsZero() || got.User.ID != "alice" {
		t.Errorf("handler got %+v, want ref %+v, a time and user alice", got, ref)
	}
	again := m.Inject(chat.Message{Ref: chat.MessageRef{Room: "general"}, User: chat.User{ID: "alice"}, Text: "hi"})
	if again.MessageID == ref.MessageID {
		t.Errorf("two injected messages share the id %q", ref.MessageID)
	}
}

func TestMemoryQueuesMessagesInjectedBeforeRun(t *testing.T) {
	m := chattest.NewMemory("memory")
	for i := range 3 {
		m.Inject(chat.Message{Ref: chat.MessageRef{Room: "general"}, User: chat.User{ID: "alice"}, Text: fmt.Sprint(i)})
	}
	var c collect
	run(t, m, &c)
	m.Inject(chat.Message{Ref: chat.MessageRef{Room: "general"}, User: chat.User{ID: "alice"}, Text: "3"})
	waitFor(t, func() bool { return len(c.texts()) == 4 })
	if got := fmt.Sprint(c.texts()); got != "[0 1 2 3]" {
		t.Errorf("handler got %s, want [0 1 2 3]", got)
	}
}

func TestMemoryDropsTheBotsOwnMessages(t *testing.T) {
	m := chattest.NewMemory("memory")
	m.SetSelf(chat.User{ID: "B1", Name: "robot"})
	var c collect
	run(t, m, &c)
	m.Inject(chat.Message{Ref: chat.MessageRef{Room: "general"}, User: chat.User{ID: "B1"}, Text: "mine"})
	m.Inject(chat.Message{Ref: chat.MessageRef{Room: "general"}, User: chat.User{ID: "alice"}, Text: "theirs"})
	waitFor(t, func() bool { return len(c.texts()) > 0 })
	if got := fmt.Sprint(c.texts()); got != "[theirs]" {
		t.Errorf("handler got %s, want [theirs]", got)
	}
}

func TestMemoryRecordsSendsAndEdits(t *testing.T) {
	ctx := context.Background()
	m := chattest.NewMemory("memory")
	var seen []chattest.Sent
	m.Subscribe(func(s chattest.Sent) { seen = append(seen, s) })

	ref, err := m.Send(ctx, chat.MessageRef{Room: "general", ThreadID: "m1"}, chat.Text("working"))
	if err != nil {
		t.Fatal(err)
	}
	want := chat.MessageRef{Adapter: "memory", Room: "general", MessageID: "b1", ThreadID: "m1"}
	if ref != want {
		t.Errorf("Send returned %+v, want %+v", ref, want)
	}
	if err := m.Update(ctx, ref, chat.Text("done")); err != nil {
		t.Fatal(err)
	}
	if err := m.Update(ctx, chat.MessageRef{Room: "general", MessageID: "b9"}, chat.Text("x")); !errors.Is(err, chattest.ErrUnknownMessage) {
		t.Errorf("Update of an unknown message returned %v, want ErrUnknownMessage", err)
	}
	if _, err := m.Send(ctx, chat.MessageRef{}, chat.Text("x")); !errors.Is(err, chat.ErrUnknownRoom) {
		t.Errorf("Send to no room returned %v, want chat.ErrUnknownRoom", err)
	}

	log := m.Sent()
	if len(log) != 2 || log[0].Edited || log[0].Out.Text != "working" || !log[1].Edited || log[1].Out.Text != "done" || log[1].Ref != ref {
		t.Errorf("Sent() = %+v", log)
	}
	if fmt.Sprint(seen) != fmt.Sprint(log) {
		t.Errorf("subscriber saw %+v, want %+v", seen, log)
	}
	for i, w := range log {
		s, err := m.Next(ctx)
		if err != nil || fmt.Sprint(s) != fmt.Sprint(w) {
			t.Errorf("Next #%d = %+v, %v; want %+v", i, s, err, w)
		}
	}

	m.Reset()
	if got := m.Sent(); len(got) != 0 {
		t.Errorf("Sent() after Reset = %+v", got)
	}
	ref2, _ := m.Send(ctx, chat.MessageRef{Room: "general"}, chat.Text("after reset"))
	if ref2.MessageID == ref.MessageID {
		t.Errorf("ids restarted after Reset: %q", ref2.MessageID)
	}
}

func TestMemoryNextWaitsForTheNextMessage(t *testing.T) {
	m := chattest.NewMemory("memory")
	got := make(chan chattest.Sent)
	go func() {
		s, err := m.Next(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- s
	}()
	if _, err := m.Send(context.Background(), chat.MessageRef{Room: "general"}, chat.Text("late")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s.Out.Text != "late" {
			t.Errorf("Next returned %+v", s)
		}
	case <-time.After(chattest.Guard):
		t.Fatal("Next did not return")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Next with a cancelled ctx returned %v", err)
	}
}

// waitFor waits until cond holds, failing after chattest.Guard.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(chattest.Guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkMemoryRoundTrip measures one injected message answered by one
// sent message, the Memory share of the dispatch benchmark.
func BenchmarkMemoryRoundTrip(b *testing.B) {
	m := chattest.NewMemory("memory")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	echo := chat.HandlerFunc(func(ctx context.Context, msg chat.Message) {
		_, _ = m.Send(ctx, msg.Ref.Thread(), chat.Output{Text: msg.Text})
	})
	go func() { _ = m.Run(ctx, echo) }()
	msg := chat.Message{Ref: chat.MessageRef{Room: "general"}, User: chat.User{ID: "alice"}, Text: "ping"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.Inject(msg)
		if _, err := m.Next(ctx); err != nil {
			b.Fatal(err)
		}
		if i%4096 == 0 {
			m.Reset()
		}
	}
}

func (memoryPeer) RoomID(_ *testing.T, name string) string { return name }
func (memoryPeer) UserID(_ *testing.T, name string) string { return name }
