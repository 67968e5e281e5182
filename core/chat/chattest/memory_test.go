package chattest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
)

// memoryPeer plays the service for Memory: rooms and users get ids unlike
// their names ("general" is "R-general", "alice" "U-alice"), what users say
// and click is injected, what the bot posted is read from a subscription.
type memoryPeer struct {
	m                   *chattest.Memory
	posts, edits, ephem chan chattest.Sent
	mu                  sync.Mutex
	sent                map[string]chattest.Sent // posts by message id
}

// newMemoryHarness returns the harness of Memory with buttons on, a text
// limit and a directory. wrap, when not nil, turns the Memory into a broken
// adapter.
func newMemoryHarness(wrap func(*chattest.Memory) chat.Adapter) chattest.Harness {
	return chattest.Harness{
		Golden: "testdata/golden",
		New: func(*testing.T) (chat.Adapter, chattest.Peer) {
			m, p := newMemoryPeer()
			if wrap == nil {
				return m, p
			}
			return wrap(m), p
		},
	}
}

func newMemoryPeer() (*chattest.Memory, *memoryPeer) {
	m := chattest.NewMemory("memory")
	m.SetButtons(true)
	m.SetMaxText(1000)
	m.AddRoom(chat.Room{ID: "R-general", Name: "general"}) // the service's default room
	p := &memoryPeer{
		m:     m,
		posts: make(chan chattest.Sent, 4096),
		edits: make(chan chattest.Sent, 4096),
		ephem: make(chan chattest.Sent, 4096),
		sent:  map[string]chattest.Sent{},
	}
	m.Subscribe(func(s chattest.Sent) {
		switch {
		case s.Edited:
			p.edits <- s
		case s.EphemeralTo != "":
			p.ephem <- s
		default:
			p.mu.Lock()
			p.sent[s.Ref.MessageID] = s
			p.mu.Unlock()
			p.posts <- s
		}
	})
	return m, p
}

func (p *memoryPeer) RoomID(_ *testing.T, name string) string {
	id := "R-" + name
	p.m.AddRoom(chat.Room{ID: id, Name: name})
	return id
}

func (p *memoryPeer) UserID(_ *testing.T, name string) string {
	id := "U-" + name
	p.m.AddUser(chat.User{ID: id, Name: name})
	return id
}

// author is the user posting as name: the bot itself for its own id.
func (p *memoryPeer) author(t *testing.T, name string) chat.User {
	if self := p.m.Self(); name == self.ID {
		return self
	}
	return chat.User{ID: p.UserID(t, name), Name: name}
}

func (p *memoryPeer) Say(t *testing.T, room, user, thread, text string) {
	p.m.Inject(chat.Message{
		Ref:  chat.MessageRef{Room: p.RoomID(t, room), ThreadID: thread},
		User: p.author(t, user),
		Text: text,
	})
}

func (p *memoryPeer) SayDirect(t *testing.T, user, text string) {
	p.m.Inject(chat.Message{
		Ref:    chat.MessageRef{Room: p.DirectRoom(t, user)},
		User:   p.author(t, user),
		Text:   text,
		Direct: true,
	})
}

func (p *memoryPeer) DirectRoom(t *testing.T, user string) string {
	return chattest.DirectRoom(p.UserID(t, user))
}

// SayMention injects what an adapter delivers for a native mention: Memory
// has no wire format of its own.
func (p *memoryPeer) SayMention(t *testing.T, room, user, text string) {
	p.m.Inject(chat.Message{
		Ref:       chat.MessageRef{Room: p.RoomID(t, room)},
		User:      p.author(t, user),
		Text:      text,
		Mentioned: true,
	})
}

func (p *memoryPeer) Click(t *testing.T, msg chattest.PeerMessage, user string, button int) {
	t.Helper()
	p.mu.Lock()
	s, ok := p.sent[msg.ID]
	p.mu.Unlock()
	if !ok || button >= len(s.Out.Buttons) {
		t.Fatalf("no button %d on bot message %+v", button, msg)
	}
	b := s.Out.Buttons[button]
	p.m.Click(chat.Interaction{
		Ref:      s.Ref,
		User:     p.author(t, user),
		ActionID: b.ActionID,
		Value:    b.Value,
		Direct:   strings.HasPrefix(s.Ref.Room, "D-"),
	})
}

func (p *memoryPeer) LimitNext(_ *testing.T, after time.Duration) { p.m.LimitNext(after) }

func (p *memoryPeer) Said(t *testing.T) chattest.PeerMessage   { return p.wait(t, p.posts, "post") }
func (p *memoryPeer) Edited(t *testing.T) chattest.PeerMessage { return p.wait(t, p.edits, "edit") }

func (p *memoryPeer) SaidEphemeral(t *testing.T) (chattest.PeerMessage, string) {
	select {
	case s := <-p.ephem:
		return peerMessage(s), s.EphemeralTo
	case <-time.After(chattest.Guard):
		t.Fatalf("no ephemeral message of the bot within %s", chattest.Guard)
		return chattest.PeerMessage{}, ""
	}
}

// Raw is the output as Memory recorded it, as indented JSON without the
// message id (which counts up across a test).
func (p *memoryPeer) Raw(t *testing.T, msg chattest.PeerMessage) []byte {
	t.Helper()
	p.mu.Lock()
	s, ok := p.sent[msg.ID]
	p.mu.Unlock()
	if !ok {
		t.Fatalf("no bot message %+v", msg)
	}
	b, err := json.MarshalIndent(struct {
		Room, Thread string
		Out          chat.Output
	}{s.Ref.Room, s.Ref.ThreadID, s.Out}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func (p *memoryPeer) wait(t *testing.T, c chan chattest.Sent, what string) chattest.PeerMessage {
	t.Helper()
	select {
	case s := <-c:
		return peerMessage(s)
	case <-time.After(chattest.Guard):
		t.Fatalf("no %s of the bot within %s", what, chattest.Guard)
		return chattest.PeerMessage{}
	}
}

func peerMessage(s chattest.Sent) chattest.PeerMessage {
	return chattest.PeerMessage{Room: s.Ref.Room, Thread: s.Ref.ThreadID, ID: s.Ref.MessageID, Text: s.Out.PlainText()}
}

func TestMemoryConformance(t *testing.T) {
	chattest.RunConformance(t, newMemoryHarness(nil))
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

func TestMemoryWithoutADirectoryHasEveryRoomAndUser(t *testing.T) {
	ctx := context.Background()
	m := chattest.NewMemory("memory")
	tests := []struct {
		name string
		call func() (any, error)
		want any
	}{
		{"a room is its name", func() (any, error) { return m.LookupRoom(ctx, "#ops") }, chat.Room{ID: "ops", Name: "ops"}},
		{"a user is their name", func() (any, error) { return m.LookupUser(ctx, "@alice") }, chat.User{ID: "alice", Name: "alice"}},
		{"a direct conversation is D-user", func() (any, error) { return m.OpenDirect(ctx, "alice") }, chat.MessageRef{Adapter: "memory", Room: "D-alice"}},
		{"any room takes a post", func() (any, error) {
			ref, err := m.Send(ctx, chat.MessageRef{Room: "anywhere"}, chat.Text("x"))
			return ref.Room, err
		}, "anywhere"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.call()
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	m.AddRoom(chat.Room{ID: "R-ops", Name: "ops"})
	if _, err := m.Send(ctx, chat.MessageRef{Room: "anywhere"}, chat.Text("x")); !errors.Is(err, chat.ErrUnknownRoom) {
		t.Errorf("with a directory, Send to a room not in it returned %v, want chat.ErrUnknownRoom", err)
	}
	if _, err := m.Send(ctx, chat.MessageRef{Room: "ops"}, chat.Text("x")); !errors.Is(err, chat.ErrUnknownRoom) {
		t.Errorf("with a directory, Send to a room's name (not its id) returned %v, want chat.ErrUnknownRoom", err)
	}
}

func TestMemoryDeliversClicksInOrderWithMessagesAndRateLimitsOnce(t *testing.T) {
	m := chattest.NewMemory("memory")
	var got []string
	var mu sync.Mutex
	h := chat.Handlers{
		Message: func(_ context.Context, msg chat.Message) { mu.Lock(); got = append(got, "msg "+msg.Text); mu.Unlock() },
		Interaction: func(_ context.Context, in chat.Interaction) {
			mu.Lock()
			got = append(got, "click "+in.Value)
			mu.Unlock()
		},
	}
	m.Inject(chat.Message{Ref: chat.MessageRef{Room: "general"}, User: chat.User{ID: "alice"}, Text: "one"})
	m.Click(chat.Interaction{Ref: chat.MessageRef{Room: "general", MessageID: "b1"}, User: chat.User{ID: "alice"}, ActionID: "a", Value: "two"})
	run(t, m, h)
	m.Inject(chat.Message{Ref: chat.MessageRef{Room: "general"}, User: chat.User{ID: "alice"}, Text: "three"})
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 })
	if fmt.Sprint(got) != "[msg one click two msg three]" {
		t.Errorf("handler got %q", got)
	}

	m.LimitNext(2 * time.Second)
	_, err := m.Send(context.Background(), chat.MessageRef{Room: "general"}, chat.Text("refused"))
	var retry *chat.RetryAfterError
	if !errors.As(err, &retry) || retry.After != 2*time.Second || !errors.Is(err, chattest.ErrRateLimited) {
		t.Errorf("Send after LimitNext returned %v, want a RetryAfterError of 2s", err)
	}
	if _, err := m.Send(context.Background(), chat.MessageRef{Room: "general"}, chat.Text("taken")); err != nil {
		t.Errorf("the Send after the limited one: %v", err)
	}
	if log := m.Sent(); len(log) != 1 || log[0].Out.Text != "taken" {
		t.Errorf("Sent() = %+v, want only the post after the limit", log)
	}
}
