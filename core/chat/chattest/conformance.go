package chattest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// Guard bounds every wait in the suite. It only turns a hang into a failure;
// the suite never asserts how long anything takes.
const Guard = 5 * time.Second

// Rooms used by the suite.
const (
	room      = "general"
	otherRoom = "random"
	user      = "alice"
)

// RunConformance runs the adapter conformance suite. Every adapter passes it.
func RunConformance(t *testing.T, h Harness) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s *session)
	}{
		{"delivers a user's message with adapter name, room, user id, text and a message id", testDelivers},
		{"does not deliver the bot's own messages back", testOwnMessages},
		{"sends to a room", testSendsToRoom},
		{"refuses an empty room with ErrUnknownRoom", testEmptyRoom},
		{"replies in a thread when threads are supported and in the room otherwise", testThreads},
		{"updates a sent message when it is an Editor", testUpdates},
		{"renders title, text, fields, code and buttons so every piece reaches the service", testRendersOutput},
		{"shows the fallback of an output that has nothing else", testFallback},
		{"returns a non-empty identity from Self", testSelf},
		{"returns from Run promptly after ctx is cancelled", testRunReturns},
		{"handles 100 messages in a burst without loss and in order per room", testBurstIn},
		{"posts 100 messages in a burst without loss and in order", testBurstOut},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, p := h.New(t)
			s := start(t, a, p)
			tc.run(t, s)
		})
	}
}

// session is one adapter running under the suite.
type session struct {
	a      chat.Adapter
	p      Peer
	caps   chat.Capabilities
	inbox  *inbox
	cancel context.CancelFunc
	ended  chan struct{} // closed when Run has returned
	runErr error         // what Run returned, set before ended is closed
}

// start runs a in the background and makes sure, at clean-up, that Run
// returns after its ctx is cancelled.
func start(t *testing.T, a chat.Adapter, p Peer) *session {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{a: a, p: p, caps: chat.CapabilitiesOf(a), inbox: newInbox(), cancel: cancel, ended: make(chan struct{})}
	go func() {
		s.runErr = a.Run(ctx, s.inbox)
		close(s.ended)
	}()
	t.Cleanup(func() {
		cancel()
		if err := s.wait(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// wait waits for Run to return after its ctx was cancelled.
func (s *session) wait() error {
	select {
	case <-s.ended:
		if s.runErr != nil && !errors.Is(s.runErr, context.Canceled) {
			return fmt.Errorf("the adapter's Run returned %v after its ctx was cancelled, want nil or context.Canceled", s.runErr)
		}
		return nil
	case <-time.After(Guard):
		return fmt.Errorf("the adapter's Run did not return within %s after its ctx was cancelled", Guard)
	}
}

// next returns the next message the handler got, failing when none comes or
// when Run ends first.
func (s *session) next(t *testing.T) chat.Message {
	t.Helper()
	timeout := time.NewTimer(Guard)
	defer timeout.Stop()
	for {
		if m, ok := s.inbox.take(); ok {
			return m
		}
		select {
		case <-s.inbox.wake:
		case <-s.ended:
			if m, ok := s.inbox.take(); ok {
				return m
			}
			t.Fatalf("the adapter's Run returned %v while the suite waited for a message", s.runErr)
		case <-timeout.C:
			t.Fatalf("the handler got no message within %s", Guard)
		}
	}
}

// send calls Send, waiting and retrying when the peer rate-limits the adapter
// as the core's send queue would.
func (s *session) send(t *testing.T, to chat.MessageRef, out chat.Output) chat.MessageRef {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Guard)
	defer cancel()
	for {
		ref, err := s.a.Send(ctx, to, out)
		var retry *chat.RetryAfterError
		if errors.As(err, &retry) {
			select {
			case <-time.After(retry.After):
				continue
			case <-ctx.Done():
			}
		}
		if err != nil {
			t.Fatalf("Send(%s, %q): %v", to, out.PlainText(), err)
		}
		return ref
	}
}

func (s *session) to(r string) chat.MessageRef {
	return chat.MessageRef{Adapter: s.a.Name(), Room: r}
}

// roundTrip makes alice say text in r and returns the message the handler got.
func (s *session) roundTrip(t *testing.T, r, text string) chat.Message {
	t.Helper()
	s.p.Say(t, r, user, "", text)
	m := s.next(t)
	if m.Text != text {
		t.Fatalf("handler got %q, want %q", m.Text, text)
	}
	return m
}

func testDelivers(t *testing.T, s *session) {
	s.p.Say(t, room, user, "", "hello there")
	m := s.next(t)
	checkMessage(t, m, s.a.Name(), room, user, "hello there")
	if m.Ref.ThreadID != "" {
		t.Errorf("message outside a thread has ThreadID %q", m.Ref.ThreadID)
	}
	if m.Direct {
		t.Error("message in a room has Direct set")
	}
	second := s.roundTrip(t, otherRoom, "and again")
	checkMessage(t, second, s.a.Name(), otherRoom, user, "and again")
	if second.Ref.MessageID == m.Ref.MessageID {
		t.Errorf("two messages share the id %q", m.Ref.MessageID)
	}
}

func checkMessage(t *testing.T, m chat.Message, adapter, r, u, text string) {
	t.Helper()
	if m.Ref.Adapter != adapter {
		t.Errorf("Ref.Adapter = %q, want %q", m.Ref.Adapter, adapter)
	}
	if m.Ref.Room != r {
		t.Errorf("Ref.Room = %q, want %q", m.Ref.Room, r)
	}
	if m.User.ID != u {
		t.Errorf("User.ID = %q, want %q", m.User.ID, u)
	}
	if m.Text != text {
		t.Errorf("Text = %q, want %q", m.Text, text)
	}
	if m.Ref.MessageID == "" {
		t.Error("Ref.MessageID is empty")
	}
	if m.Time.IsZero() {
		t.Error("Time is zero")
	}
}

func testOwnMessages(t *testing.T, s *session) {
	s.roundTrip(t, room, "warming up")
	s.send(t, s.to(room), chat.Text("posted by the bot"))
	s.p.Said(t)
	s.p.Say(t, room, s.a.Self().ID, "", "said as the bot")
	s.p.Say(t, room, user, "", "marker")
	if m := s.next(t); m.Text != "marker" {
		t.Errorf("handler got %q from %q before the marker: the bot's own messages came back", m.Text, m.User.ID)
	}
}

func testSendsToRoom(t *testing.T, s *session) {
	for _, r := range []string{room, otherRoom} {
		text := "hello " + r
		ref := s.send(t, s.to(r), chat.Output{Text: text})
		if ref.Adapter != s.a.Name() || ref.Room != r || ref.MessageID == "" || ref.ThreadID != "" {
			t.Errorf("Send to %s returned %+v, want adapter %q, room %q, a message id and no thread", r, ref, s.a.Name(), r)
		}
		got := s.p.Said(t)
		want := PeerMessage{Room: r, ID: ref.MessageID, Text: text}
		if got != want {
			t.Errorf("service saw %+v, want %+v", got, want)
		}
	}
}

func testEmptyRoom(t *testing.T, s *session) {
	_, err := s.a.Send(context.Background(), s.to(""), chat.Text("nowhere"))
	if !errors.Is(err, chat.ErrUnknownRoom) {
		t.Errorf("Send to an empty room returned %v, want chat.ErrUnknownRoom", err)
	}
}

func testThreads(t *testing.T, s *session) {
	root := s.roundTrip(t, room, "start a thread")
	ref := s.send(t, root.Ref.Thread(), chat.Text("in the thread"))
	got := s.p.Said(t)
	if got.Room != room || got.Text != "in the thread" || got.ID != ref.MessageID {
		t.Errorf("service saw %+v, want room %q, text %q, id %q", got, room, "in the thread", ref.MessageID)
	}
	if !s.caps.Threads {
		if got.Thread != "" {
			t.Errorf("adapter without threads posted in thread %q", got.Thread)
		}
		return
	}
	if got.Thread != root.Ref.MessageID || ref.ThreadID != root.Ref.MessageID {
		t.Errorf("reply went to thread %q (ref %+v), want %q", got.Thread, ref, root.Ref.MessageID)
	}

	s.p.Say(t, room, user, root.Ref.MessageID, "answer in the thread")
	m := s.next(t)
	checkMessage(t, m, s.a.Name(), room, user, "answer in the thread")
	if m.Ref.ThreadID != root.Ref.MessageID {
		t.Errorf("thread message has ThreadID %q, want %q", m.Ref.ThreadID, root.Ref.MessageID)
	}
	if next := m.Ref.Thread(); next.ThreadID != root.Ref.MessageID {
		t.Errorf("Thread() of a thread message is %+v, want thread %q", next, root.Ref.MessageID)
	}

	if ed, ok := s.a.(chat.Editor); ok {
		if err := ed.Update(context.Background(), ref, chat.Text("edited in the thread")); err != nil {
			t.Fatalf("Update(%s): %v", ref, err)
		}
		e := s.p.Edited(t)
		want := PeerMessage{Room: room, Thread: root.Ref.MessageID, ID: ref.MessageID, Text: "edited in the thread"}
		if e != want {
			t.Errorf("service saw the edit %+v, want %+v", e, want)
		}
	}
}

func testUpdates(t *testing.T, s *session) {
	ed, ok := s.a.(chat.Editor)
	if !ok {
		t.Skip("the adapter is not an Editor")
	}
	ref := s.send(t, s.to(room), chat.Text("working…"))
	s.p.Said(t)
	ctx, cancel := context.WithTimeout(context.Background(), Guard)
	defer cancel()
	for _, text := range []string{"half way", "done"} {
		if err := ed.Update(ctx, ref, chat.Output{Text: text}); err != nil {
			t.Fatalf("Update(%s, %q): %v", ref, text, err)
		}
		got := s.p.Edited(t)
		want := PeerMessage{Room: room, ID: ref.MessageID, Text: text}
		if got != want {
			t.Errorf("service saw the edit %+v, want %+v", got, want)
		}
	}
	bogus := chat.MessageRef{Adapter: s.a.Name(), Room: room, MessageID: "no-such-message"}
	if err := ed.Update(ctx, bogus, chat.Text("lost")); err == nil {
		t.Errorf("Update of a message that does not exist returned no error")
	}
}

func testRendersOutput(t *testing.T, s *session) {
	out := chat.Output{
		Title:  "Deploy finished",
		Text:   "project-x/main is live on edge",
		Status: "good",
		Fields: []chat.Field{
			{Title: "Environment", Value: "edge", Short: true},
			{Title: "Duration", Value: "42s", Short: true},
		},
		Code: "step 1 ok\nstep 2 ok\n",
		Buttons: []chat.Button{
			{Label: "Roll back", Command: "chima rollback project-x", Style: "danger"},
		},
	}
	s.send(t, s.to(room), out)
	got := s.p.Said(t)
	pieces := []string{out.Title, out.Text, "Environment", "edge", "Duration", "42s", "step 1 ok", "step 2 ok", "Roll back"}
	if !s.caps.Buttons {
		pieces = append(pieces, "chima rollback project-x")
	}
	for _, p := range pieces {
		if !strings.Contains(got.Text, p) {
			t.Errorf("the service shows %q, which lacks %q", got.Text, p)
		}
	}
}

func testFallback(t *testing.T, s *session) {
	s.send(t, s.to(room), chat.Output{Fallback: "only the fallback"})
	if got := s.p.Said(t); !strings.Contains(got.Text, "only the fallback") {
		t.Errorf("the service shows %q, which lacks the fallback", got.Text)
	}
}

func testSelf(t *testing.T, s *session) {
	s.roundTrip(t, room, "who are you")
	if self := s.a.Self(); self.ID == "" {
		t.Errorf("Self() = %+v, want a non-empty ID", self)
	}
}

func testRunReturns(t *testing.T, s *session) {
	s.roundTrip(t, room, "still there")
	s.cancel()
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
}

func testBurstIn(t *testing.T, s *session) {
	const n = 100
	rooms := []string{room, otherRoom}
	for i := range n {
		s.p.Say(t, rooms[i%2], user, "", fmt.Sprintf("burst %03d", i))
	}
	last := map[string]int{room: -1, otherRoom: -1}
	ids := make(map[string]bool, n)
	for range n {
		m := s.next(t)
		var i int
		if _, err := fmt.Sscanf(m.Text, "burst %d", &i); err != nil {
			t.Fatalf("unexpected message %q", m.Text)
		}
		if want := rooms[i%2]; m.Ref.Room != want {
			t.Errorf("%q arrived in room %q, want %q", m.Text, m.Ref.Room, want)
		}
		if i <= last[m.Ref.Room] {
			t.Errorf("%q arrived after burst %03d in %s", m.Text, last[m.Ref.Room], m.Ref.Room)
		}
		last[m.Ref.Room] = i
		if ids[m.Ref.MessageID] {
			t.Errorf("message id %q delivered twice", m.Ref.MessageID)
		}
		ids[m.Ref.MessageID] = true
	}
}

func testBurstOut(t *testing.T, s *session) {
	const n = 100
	refs := make([]chat.MessageRef, n)
	for i := range n {
		refs[i] = s.send(t, s.to(room), chat.Text("post %03d", i))
	}
	for i := range n {
		got := s.p.Said(t)
		want := PeerMessage{Room: room, ID: refs[i].MessageID, Text: fmt.Sprintf("post %03d", i)}
		if got != want {
			t.Fatalf("message %d: service saw %+v, want %+v", i, got, want)
		}
	}
}

// inbox is the suite's handler: it keeps every delivered message, without
// blocking the adapter, until the suite takes it.
type inbox struct {
	mu     sync.Mutex
	msgs   []chat.Message
	clicks []chat.Interaction
	wake chan struct{} // has a token when msgs may be non-empty
}

func newInbox() *inbox { return &inbox{wake: make(chan struct{}, 1)} }

func (b *inbox) HandleMessage(_ context.Context, m chat.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *inbox) HandleInteraction(_ context.Context, in chat.Interaction) {
	b.mu.Lock()
	b.clicks = append(b.clicks, in)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// take removes and returns the oldest message, if any.
func (b *inbox) take() (chat.Message, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.msgs) == 0 {
		return chat.Message{}, false
	}
	m := b.msgs[0]
	b.msgs = b.msgs[1:]
	return m, true
}
