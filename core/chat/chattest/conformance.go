package chattest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// Guard bounds every wait in the suite. It only turns a hang into a failure;
// the suite never asserts how long anything takes.
const Guard = 5 * time.Second

// Rooms and users the suite names; peers map them to the service's ids.
const (
	room      = "general"
	otherRoom = "random"
	user      = "alice"
	otherUser = "bob"
)

// RunConformance runs the adapter conformance suite. Every adapter passes it.
func RunConformance(t *testing.T, h Harness) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s *session)
	}{
		{"delivers a user's message with adapter name, room id, user id, text and a message id", testDelivers},
		{"does not deliver the bot's own messages back", testOwnMessages},
		{"sends to a room", testSendsToRoom},
		{"refuses an empty room with ErrUnknownRoom", testEmptyRoom},
		{"refuses a room the service does not have with ErrUnknownRoom", testUnknownRoom},
		{"replies in a thread when threads are supported and in the room otherwise", testThreads},
		{"updates a sent message when it is an Editor", testUpdates},
		{"renders title, text, fields, code and buttons so every piece reaches the service", testRendersOutput},
		{"shows the fallback of an output that has nothing else", testFallback},
		{"returns a non-empty identity from Self", testSelf},
		{"returns from Run promptly after ctx is cancelled", testRunReturns},
		{"handles 100 messages in a burst without loss, in order per room where the service promises order", testBurstIn},
		{"posts 100 messages in a burst without loss, in order where the service promises order", testBurstOut},
		{"delivers a direct message with Direct set and replies in that conversation", testDirect},
		{"sends to the direct conversation OpenDirect opens with a user who has not written", testOpenDirect},
		{"delivers a native mention with Mentioned set and the mention removed from the text", testMention},
		{"hands button clicks to HandleInteraction with the message, user, action id and value", testClicks},
		{"returns a RetryAfterError when rate limited and posts once after it", testRateLimit},
		{"reconnects by itself after the connection drops and delivers what is said then once", testDrop},
		{"sends a message of exactly MaxText characters whole", testMaxText},
		{"resolves rooms by name, #name and id and refuses an unknown one with ErrUnknownRoom", testLookupRoom},
		{"resolves users by name, @name and id and refuses an unknown one with ErrUnknownUser", testLookupUser},
		{"shows an ephemeral message to one user without posting it", testEphemeral},
		{"answers 401 to an unsigned request on every route and runs nothing", testRoutesVerify},
		{"renders the golden outputs as the golden files say", testGolden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, p := h.New(t)
			s := start(t, h, a, p)
			tc.run(t, s)
		})
	}
}

// session is one adapter running under the suite.
type session struct {
	h      Harness
	a      chat.Adapter
	p      Peer
	caps   chat.Capabilities
	inbox  *inbox
	cancel context.CancelFunc
	ended  chan struct{} // closed when Run has returned
	runErr error         // what Run returned, set before ended is closed

	// routes are the adapter's routes, mounted at base, when it is a
	// RouteProvider.
	routes []chat.Route
	base   string
}

// start mounts a's routes, runs a in the background and makes sure, at
// clean-up, that Run returns after its ctx is cancelled.
func start(t *testing.T, h Harness, a chat.Adapter, p Peer) *session {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{h: h, a: a, p: p, caps: chat.CapabilitiesOf(a), inbox: newInbox(), cancel: cancel, ended: make(chan struct{})}
	if rp, ok := a.(chat.RouteProvider); ok {
		s.routes = rp.Routes()
		srv := httptest.NewServer(mount(t, a.Name(), s.routes))
		t.Cleanup(srv.Close)
		s.base = srv.URL
		if peer, ok := p.(RoutePeer); ok {
			peer.Mounted(t, s.base)
		}
	}
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

// defaultMaxBody is the core's body limit for a Route without MaxBody.
const defaultMaxBody = 1 << 20

// mount serves routes as the core does: at /<adapter>/<path>, the body read
// whole within its limit (413 beyond), then Verify (401 on its error), then
// the handler with the body again.
func mount(t *testing.T, adapter string, routes []chat.Route) http.Handler {
	t.Helper()
	mux := http.NewServeMux()
	for _, r := range routes {
		pattern := routePattern(adapter, r)
		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Fatalf("route %q cannot be mounted: %v", pattern, v)
				}
			}()
			mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				limit := r.MaxBody
				if limit <= 0 {
					limit = defaultMaxBody
				}
				body, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
				if err != nil {
					http.Error(w, "read body", http.StatusBadRequest)
					return
				}
				if int64(len(body)) > limit {
					http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
					return
				}
				if r.Verify == nil || r.Handler == nil {
					http.Error(w, "route without Verify or Handler", http.StatusInternalServerError)
					return
				}
				if err := r.Verify(req, body); err != nil {
					http.Error(w, "unauthorized", http.StatusUnauthorized)
					return
				}
				req.Body = io.NopCloser(bytes.NewReader(body))
				r.Handler.ServeHTTP(w, req)
			}))
		}()
	}
	return mux
}

func routePattern(adapter string, r chat.Route) string {
	p := r.Method + " /" + adapter
	if r.Path != "" {
		p += "/" + r.Path
	}
	return p
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
	m, _ := s.nextEvent(t, false)
	return m
}

// nextClick returns the next interaction the handler got.
func (s *session) nextClick(t *testing.T) chat.Interaction {
	t.Helper()
	_, in := s.nextEvent(t, true)
	return in
}

func (s *session) nextEvent(t *testing.T, click bool) (chat.Message, chat.Interaction) {
	t.Helper()
	what := "message"
	if click {
		what = "interaction"
	}
	timeout := time.NewTimer(Guard)
	defer timeout.Stop()
	for {
		if m, in, ok := s.inbox.take(click); ok {
			return m, in
		}
		select {
		case <-s.inbox.wake:
		case <-s.ended:
			if m, in, ok := s.inbox.take(click); ok {
				return m, in
			}
			t.Fatalf("the adapter's Run returned %v while the suite waited for an %s", s.runErr, what)
		case <-timeout.C:
			t.Fatalf("the handler got no %s within %s", what, Guard)
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

// room returns the service's id of the room the suite calls name.
func (s *session) room(t *testing.T, name string) string {
	t.Helper()
	return s.p.RoomID(t, name)
}

// user returns the service's id of the user the suite calls name.
func (s *session) user(t *testing.T, name string) string {
	t.Helper()
	return s.p.UserID(t, name)
}

// to returns the reference to send to the room the suite calls name.
func (s *session) to(t *testing.T, name string) chat.MessageRef {
	t.Helper()
	return chat.MessageRef{Adapter: s.a.Name(), Room: s.room(t, name)}
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

// marker makes alice say a marker in room and fails unless it is the next
// message the handler gets: whatever came before it was delivered wrongly.
func (s *session) marker(t *testing.T, what string) {
	t.Helper()
	s.p.Say(t, room, user, "", "marker")
	if m := s.next(t); m.Text != "marker" {
		t.Errorf("handler got %+v before the marker: %s", m, what)
	}
}

// postMarker sends a marker to room and fails unless it is the next post the
// service sees: whatever came before it was posted wrongly.
func (s *session) postMarker(t *testing.T, what string) {
	t.Helper()
	s.send(t, s.to(t, room), chat.Text("post marker"))
	if got := s.p.Said(t); got.Text != "post marker" {
		t.Errorf("service saw %+v before the marker: %s", got, what)
	}
}

func testDelivers(t *testing.T, s *session) {
	s.p.Say(t, room, user, "", "hello there")
	m := s.next(t)
	checkMessage(t, m, s.a.Name(), s.room(t, room), s.user(t, user), "hello there")
	if m.Ref.ThreadID != "" {
		t.Errorf("message outside a thread has ThreadID %q", m.Ref.ThreadID)
	}
	if m.Direct {
		t.Error("message in a room has Direct set")
	}
	if m.Mentioned {
		t.Error("message without a mention has Mentioned set")
	}
	second := s.roundTrip(t, otherRoom, "and again")
	checkMessage(t, second, s.a.Name(), s.room(t, otherRoom), s.user(t, user), "and again")
	if second.Ref.MessageID == m.Ref.MessageID {
		t.Errorf("two messages share the id %q", m.Ref.MessageID)
	}
	s.p.Say(t, room, otherUser, "", "me too")
	checkMessage(t, s.next(t), s.a.Name(), s.room(t, room), s.user(t, otherUser), "me too")
}

func checkMessage(t *testing.T, m chat.Message, adapter, r, u, text string) {
	t.Helper()
	if m.Ref.Adapter != adapter {
		t.Errorf("Ref.Adapter = %q, want %q", m.Ref.Adapter, adapter)
	}
	if m.Ref.Room != r {
		t.Errorf("Ref.Room = %q, want the room's id %q", m.Ref.Room, r)
	}
	if m.User.ID != u {
		t.Errorf("User.ID = %q, want the user's id %q", m.User.ID, u)
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
	s.send(t, s.to(t, room), chat.Text("posted by the bot"))
	s.p.Said(t)
	s.p.Say(t, room, s.a.Self().ID, "", "said as the bot")
	s.marker(t, "the bot's own messages came back")
}

func testSendsToRoom(t *testing.T, s *session) {
	for _, r := range []string{room, otherRoom} {
		text := "hello " + r
		id := s.room(t, r)
		ref := s.send(t, s.to(t, r), chat.Output{Text: text})
		if ref.Adapter != s.a.Name() || ref.Room != id || ref.MessageID == "" || ref.ThreadID != "" {
			t.Errorf("Send to %s returned %+v, want adapter %q, room %q, a message id and no thread", id, ref, s.a.Name(), id)
		}
		got := s.p.Said(t)
		want := PeerMessage{Room: id, ID: ref.MessageID, Text: text}
		if got != want {
			t.Errorf("service saw %+v, want %+v", got, want)
		}
	}
}

func testEmptyRoom(t *testing.T, s *session) {
	_, err := s.a.Send(context.Background(), chat.MessageRef{Adapter: s.a.Name()}, chat.Text("nowhere"))
	if !errors.Is(err, chat.ErrUnknownRoom) {
		t.Errorf("Send to an empty room returned %v, want chat.ErrUnknownRoom", err)
	}
}

func (s *session) unknownRoom() string {
	if s.h.UnknownRoom != "" {
		return s.h.UnknownRoom
	}
	return DefaultUnknownRoom
}

func testUnknownRoom(t *testing.T, s *session) {
	s.roundTrip(t, room, "connected")
	ctx, cancel := context.WithTimeout(context.Background(), Guard)
	defer cancel()
	to := chat.MessageRef{Adapter: s.a.Name(), Room: s.unknownRoom()}
	_, err := s.a.Send(ctx, to, chat.Text("nowhere"))
	if !errors.Is(err, chat.ErrUnknownRoom) {
		t.Errorf("Send to room %q, which the service does not have, returned %v, want chat.ErrUnknownRoom", to.Room, err)
	}
	s.postMarker(t, "a send to an unknown room was posted somewhere")
}

func testThreads(t *testing.T, s *session) {
	id := s.room(t, room)
	root := s.roundTrip(t, room, "start a thread")
	ref := s.send(t, root.Ref.Thread(), chat.Text("in the thread"))
	got := s.p.Said(t)
	if got.Room != id || got.Text != "in the thread" || got.ID != ref.MessageID {
		t.Errorf("service saw %+v, want room %q, text %q, id %q", got, id, "in the thread", ref.MessageID)
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
	checkMessage(t, m, s.a.Name(), id, s.user(t, user), "answer in the thread")
	if m.Ref.ThreadID != root.Ref.MessageID {
		t.Errorf("thread message has ThreadID %q, want %q", m.Ref.ThreadID, root.Ref.MessageID)
	}
	if next := m.Ref.Thread(); next.ThreadID != root.Ref.MessageID {
		t.Errorf("Thread() of a thread message is %+v, want thread %q", next, root.Ref.MessageID)
	}

	// A reply to a reply stays in the thread (Mattermost refuses a reply
	// rooted at a reply; the adapter must root it at the thread).
	deeper := s.send(t, m.Ref.Thread(), chat.Text("deeper in the thread"))
	if got := s.p.Said(t); got.Thread != root.Ref.MessageID || got.ID != deeper.MessageID {
		t.Errorf("reply to a thread message: service saw %+v, want thread %q and id %q", got, root.Ref.MessageID, deeper.MessageID)
	}

	if ed, ok := s.a.(chat.Editor); ok {
		if err := ed.Update(context.Background(), ref, chat.Text("edited in the thread")); err != nil {
			t.Fatalf("Update(%s): %v", ref, err)
		}
		e := s.p.Edited(t)
		want := PeerMessage{Room: id, Thread: root.Ref.MessageID, ID: ref.MessageID, Text: "edited in the thread"}
		if e != want {
			t.Errorf("service saw the edit %+v, want %+v", e, want)
		}
	}
}

func testUpdates(t *testing.T, s *session) {
	ed, ok := s.a.(chat.Editor)
	if !ok {
		t.Skip("the adapter is not a chat.Editor")
	}
	id := s.room(t, room)
	ref := s.send(t, s.to(t, room), chat.Text("working…"))
	s.p.Said(t)
	ctx, cancel := context.WithTimeout(context.Background(), Guard)
	defer cancel()
	for _, text := range []string{"half way", "done"} {
		if err := ed.Update(ctx, ref, chat.Output{Text: text}); err != nil {
			t.Fatalf("Update(%s, %q): %v", ref, text, err)
		}
		got := s.p.Edited(t)
		want := PeerMessage{Room: id, ID: ref.MessageID, Text: text}
		if got != want {
			t.Errorf("service saw the edit %+v, want %+v", got, want)
		}
	}
	bogus := chat.MessageRef{Adapter: s.a.Name(), Room: id, MessageID: "no-such-message"}
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
			{Label: "Roll back", Command: "chima rollback project-x", Style: "danger", ActionID: "chima.test:rollback", Value: "project-x"},
		},
	}
	s.send(t, s.to(t, room), out)
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
	s.send(t, s.to(t, room), chat.Output{Fallback: "only the fallback"})
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
	ids := []string{s.room(t, room), s.room(t, otherRoom)}
	for i := range n {
		s.p.Say(t, rooms[i%2], user, "", fmt.Sprintf("burst %03d", i))
	}
	last := map[string]int{ids[0]: -1, ids[1]: -1}
	seen := make(map[int]bool, n)
	msgIDs := make(map[string]bool, n)
	for range n {
		m := s.next(t)
		var i int
		if _, err := fmt.Sscanf(m.Text, "burst %d", &i); err != nil {
			t.Fatalf("unexpected message %q", m.Text)
		}
		if want := ids[i%2]; m.Ref.Room != want {
			t.Errorf("%q arrived in room %q, want %q", m.Text, m.Ref.Room, want)
		}
		if seen[i] {
			t.Errorf("%q delivered twice", m.Text)
		}
		seen[i] = true
		if !s.h.Unordered && i <= last[m.Ref.Room] {
			t.Errorf("%q arrived after burst %03d in %s", m.Text, last[m.Ref.Room], m.Ref.Room)
		}
		last[m.Ref.Room] = max(last[m.Ref.Room], i)
		if msgIDs[m.Ref.MessageID] {
			t.Errorf("message id %q delivered twice", m.Ref.MessageID)
		}
		msgIDs[m.Ref.MessageID] = true
	}
}

func testBurstOut(t *testing.T, s *session) {
	const n = 100
	id := s.room(t, room)
	want := make(map[string]PeerMessage, n)
	order := make([]string, n)
	for i := range n {
		ref := s.send(t, s.to(t, room), chat.Text("post %03d", i))
		order[i] = ref.MessageID
		want[ref.MessageID] = PeerMessage{Room: id, ID: ref.MessageID, Text: fmt.Sprintf("post %03d", i)}
	}
	if len(want) != n {
		t.Fatalf("Send returned %d distinct message ids for %d posts", len(want), n)
	}
	for i := range n {
		got := s.p.Said(t)
		if !s.h.Unordered && got.ID != order[i] {
			t.Fatalf("post %d: service saw %+v, want id %q", i, got, order[i])
		}
		w, ok := want[got.ID]
		if !ok {
			t.Fatalf("post %d: service saw %+v, which is not one Send returned or was seen twice", i, got)
		}
		if got != w {
			t.Fatalf("post %d: service saw %+v, want %+v", i, got, w)
		}
		delete(want, got.ID)
	}
}

func testDirect(t *testing.T, s *session) {
	dp, ok := s.p.(DirectPeer)
	if !ok {
		if s.caps.Direct {
			t.Fatal("the adapter is a chat.DirectMessenger but the peer is not a chattest.DirectPeer")
		}
		t.Skip("the peer is not a chattest.DirectPeer")
	}
	dm := dp.DirectRoom(t, user)
	if dm == s.room(t, room) || dm == "" {
		t.Fatalf("DirectRoom(%q) = %q, want the id of a conversation of its own", user, dm)
	}
	dp.SayDirect(t, user, "psst")
	m := s.next(t)
	checkMessage(t, m, s.a.Name(), dm, s.user(t, user), "psst")
	if !m.Direct {
		t.Error("direct message delivered without Direct")
	}
	to := chat.MessageRef{Adapter: s.a.Name(), Room: m.Ref.Room}
	if dmer, ok := s.a.(chat.DirectMessenger); ok {
		ctx, cancel := context.WithTimeout(context.Background(), Guard)
		defer cancel()
		ref, err := dmer.OpenDirect(ctx, s.user(t, user))
		if err != nil {
			t.Fatalf("OpenDirect(%q): %v", s.user(t, user), err)
		}
		if ref.Adapter != s.a.Name() || ref.Room != dm {
			t.Errorf("OpenDirect(%q) = %+v, want adapter %q and room %q", s.user(t, user), ref, s.a.Name(), dm)
		}
		to = ref
	}
	ref := s.send(t, to, chat.Text("psst back"))
	if got, want := s.p.Said(t), (PeerMessage{Room: dm, ID: ref.MessageID, Text: "psst back"}); got != want {
		t.Errorf("service saw the reply %+v, want %+v", got, want)
	}
	s.p.Say(t, room, user, "", "in the room again")
	if m := s.next(t); m.Direct || m.Ref.Room != s.room(t, room) {
		t.Errorf("a room message after a direct one was delivered as %+v", m)
	}
}

func testOpenDirect(t *testing.T, s *session) {
	dmer, ok := s.a.(chat.DirectMessenger)
	if !ok {
		t.Skip("the adapter is not a chat.DirectMessenger")
	}
	dp, ok := s.p.(DirectPeer)
	if !ok {
		t.Fatal("the adapter is a chat.DirectMessenger but the peer is not a chattest.DirectPeer")
	}
	s.roundTrip(t, room, "connected")
	ctx, cancel := context.WithTimeout(context.Background(), Guard)
	defer cancel()
	uid := s.user(t, otherUser)
	ref, err := dmer.OpenDirect(ctx, uid)
	if err != nil {
		t.Fatalf("OpenDirect(%q): %v", uid, err)
	}
	dm := dp.DirectRoom(t, otherUser)
	if ref.Adapter != s.a.Name() || ref.Room != dm {
		t.Errorf("OpenDirect(%q) = %+v, want adapter %q and room %q", uid, ref, s.a.Name(), dm)
	}
	sent := s.send(t, ref, chat.Text("a word in private"))
	if got, want := s.p.Said(t), (PeerMessage{Room: dm, ID: sent.MessageID, Text: "a word in private"}); got != want {
		t.Errorf("service saw %+v, want %+v", got, want)
	}
	dp.SayDirect(t, otherUser, "thanks")
	m := s.next(t)
	checkMessage(t, m, s.a.Name(), dm, uid, "thanks")
	if !m.Direct {
		t.Error("direct message delivered without Direct")
	}
}

func testMention(t *testing.T, s *session) {
	mp, ok := s.p.(MentionPeer)
	if !ok {
		t.Skip("the peer is not a chattest.MentionPeer")
	}
	mp.SayMention(t, room, user, "deploy project-x")
	m := s.next(t)
	checkMessage(t, m, s.a.Name(), s.room(t, room), s.user(t, user), "deploy project-x")
	if !m.Mentioned {
		t.Error("a native mention of the bot was delivered without Mentioned")
	}
	s.p.Say(t, room, user, "", "no mention here")
	if m := s.next(t); m.Mentioned || m.Text != "no mention here" {
		t.Errorf("a message without a mention was delivered as %+v", m)
	}
}

// clickButtons is the output whose clicks the suite checks: action ids and
// values as the core sets them, one value with characters a careless
// encoding breaks.
var clickButtons = []chat.Button{
	{Label: "Approve", Style: "primary", ActionID: "chima.test:a", Value: "v1"},
	{Label: "Roll back", Style: "danger", Command: "chima rollback project-x", ActionID: "chima.test:b", Value: `v2 {"env":"édge"} & <x>=1+2`},
}

func testClicks(t *testing.T, s *session) {
	if !s.caps.Buttons {
		t.Skip("the adapter renders no buttons (it is no chat.ButtonRenderer that supports them)")
	}
	cp, ok := s.p.(ClickPeer)
	if !ok {
		t.Fatal("the adapter renders buttons but the peer is not a chattest.ClickPeer")
	}
	id := s.room(t, room)
	root := s.roundTrip(t, room, "start a thread")
	cases := []struct {
		name   string
		to     chat.MessageRef
		user   string
		button int
	}{
		{"in the room", s.to(t, room), user, 0},
		{"in a thread", root.Ref.Thread(), otherUser, 1},
	}
	for _, c := range cases {
		if c.to.ThreadID != "" && !s.caps.Threads {
			continue
		}
		ref := s.send(t, c.to, chat.Output{Text: "pick one " + c.name, Buttons: clickButtons})
		msg := s.p.Said(t)
		cp.Click(t, msg, c.user, c.button)
		in := s.nextClick(t)
		b := clickButtons[c.button]
		want := chat.MessageRef{Adapter: s.a.Name(), Room: id, MessageID: ref.MessageID, ThreadID: ref.ThreadID}
		if in.Ref != want {
			t.Errorf("click %s: Ref = %+v, want %+v", c.name, in.Ref, want)
		}
		if in.User.ID != s.user(t, c.user) {
			t.Errorf("click %s: User.ID = %q, want %q", c.name, in.User.ID, s.user(t, c.user))
		}
		if in.ActionID != b.ActionID || in.Value != b.Value {
			t.Errorf("click %s: ActionID, Value = %q, %q; want %q, %q", c.name, in.ActionID, in.Value, b.ActionID, b.Value)
		}
		if in.Direct {
			t.Errorf("click %s in a room has Direct set", c.name)
		}
		if in.Time.IsZero() {
			t.Errorf("click %s: Time is zero", c.name)
		}
	}
	s.marker(t, "a click reached the handler as a message")

	dp, ok := s.p.(DirectPeer)
	dmer, ok2 := s.a.(chat.DirectMessenger)
	if !ok || !ok2 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), Guard)
	defer cancel()
	to, err := dmer.OpenDirect(ctx, s.user(t, user))
	if err != nil {
		t.Fatalf("OpenDirect: %v", err)
	}
	ref := s.send(t, to, chat.Output{Text: "pick one in private", Buttons: clickButtons})
	cp.Click(t, s.p.Said(t), user, 0)
	in := s.nextClick(t)
	if !in.Direct || in.Ref.Room != dp.DirectRoom(t, user) || in.Ref.MessageID != ref.MessageID {
		t.Errorf("click in a direct conversation: got %+v, want Direct and ref %+v", in, ref)
	}
}

func testRateLimit(t *testing.T, s *session) {
	rp, ok := s.p.(RateLimitPeer)
	if !ok {
		t.Skip("the peer is not a chattest.RateLimitPeer")
	}
	s.roundTrip(t, room, "connected")
	const after = 3 * time.Second
	rp.LimitNext(t, after)
	ctx, cancel := context.WithTimeout(context.Background(), Guard)
	defer cancel()
	_, err := s.a.Send(ctx, s.to(t, room), chat.Text("refused"))
	var retry *chat.RetryAfterError
	if !errors.As(err, &retry) {
		t.Fatalf("Send while rate limited returned %v, want a *chat.RetryAfterError", err)
	}
	// Services give whole seconds; allow for rounding, not for ignoring.
	if retry.After < after-time.Second || retry.After > after+time.Minute {
		t.Errorf("RetryAfterError.After = %s, want about the %s the service asked for", retry.After, after)
	}
	ref, err := s.a.Send(ctx, s.to(t, room), chat.Text("taken"))
	if err != nil {
		t.Fatalf("Send after the rate limit: %v", err)
	}
	if got := s.p.Said(t); got.Text != "taken" || got.ID != ref.MessageID {
		t.Errorf("service saw %+v first, want the post after the limit (%q, id %q): the refused one must not be posted", got, "taken", ref.MessageID)
	}
	s.postMarker(t, "something was posted twice")
}

func testDrop(t *testing.T, s *session) {
	dp, ok := s.p.(DropPeer)
	if !ok {
		t.Skip("the peer is not a chattest.DropPeer")
	}
	s.roundTrip(t, room, "before the drop")
	dp.Drop(t)
	s.p.Say(t, room, user, "", "after the drop")
	m := s.next(t)
	checkMessage(t, m, s.a.Name(), s.room(t, room), s.user(t, user), "after the drop")
	select {
	case <-s.ended:
		t.Fatalf("Run returned %v after the connection dropped, want it to reconnect", s.runErr)
	default:
	}
	ref := s.send(t, s.to(t, room), chat.Text("back"))
	if got := s.p.Said(t); got.Text != "back" || got.ID != ref.MessageID {
		t.Errorf("service saw %+v, want the post after the reconnect", got)
	}
	s.marker(t, "a message was delivered twice across the reconnect")
	dp.Drop(t)
	s.roundTrip(t, otherRoom, "after the second drop")
}

// longText returns a text of n characters (runes), several of them
// multibyte, without white space, which a service may fold.
func longText(n int) string {
	const pattern = "abcdéß中✓"
	var b strings.Builder
	for i := 0; i < n; i++ {
		r := []rune(pattern)
		b.WriteRune(r[i%len(r)])
	}
	return b.String()
}

func testMaxText(t *testing.T, s *session) {
	if s.caps.MaxText <= 0 {
		t.Skip("the adapter declares no MaxText (it is no chat.Limiter)")
	}
	text := longText(s.caps.MaxText)
	ref := s.send(t, s.to(t, room), chat.Output{Text: text})
	got := s.p.Said(t)
	if got.ID != ref.MessageID {
		t.Errorf("service saw post %q, want %q", got.ID, ref.MessageID)
	}
	// A service may break a long text into blocks; only white space may
	// come between the pieces.
	if seen := strings.Join(strings.Fields(got.Text), ""); seen != text {
		t.Errorf("service saw %d characters of the %d sent (first difference at character %d)", len([]rune(seen)), len([]rune(text)), firstDiff(seen, text))
	}
}

func firstDiff(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	for i := range min(len(ra), len(rb)) {
		if ra[i] != rb[i] {
			return i
		}
	}
	return min(len(ra), len(rb))
}

func testLookupRoom(t *testing.T, s *session) {
	d, ok := s.a.(chat.Directory)
	if !ok {
		t.Skip("the adapter is not a chat.Directory")
	}
	s.roundTrip(t, room, "connected")
	ctx, cancel := context.WithTimeout(context.Background(), Guard)
	defer cancel()
	for _, name := range []string{room, otherRoom} {
		want := chat.Room{ID: s.room(t, name), Name: name}
		for _, q := range []string{name, "#" + name, want.ID} {
			got, err := d.LookupRoom(ctx, q)
			if err != nil || got != want {
				t.Errorf("LookupRoom(%q) = %+v, %v; want %+v", q, got, err, want)
			}
		}
	}
	for _, q := range []string{"no-such-room-anywhere", "#no-such-room-anywhere", s.unknownRoom()} {
		if got, err := d.LookupRoom(ctx, q); !errors.Is(err, chat.ErrUnknownRoom) {
			t.Errorf("LookupRoom(%q) = %+v, %v; want chat.ErrUnknownRoom", q, got, err)
		}
	}
}

func testLookupUser(t *testing.T, s *session) {
	d, ok := s.a.(chat.Directory)
	if !ok {
		t.Skip("the adapter is not a chat.Directory")
	}
	s.roundTrip(t, room, "connected")
	ctx, cancel := context.WithTimeout(context.Background(), Guard)
	defer cancel()
	for _, name := range []string{user, otherUser} {
		id := s.user(t, name)
		for _, q := range []string{name, "@" + name, id} {
			got, err := d.LookupUser(ctx, q)
			if err != nil || got.ID != id || got.Name != name {
				t.Errorf("LookupUser(%q) = %+v, %v; want ID %q and Name %q", q, got, err, id, name)
			}
		}
	}
	for _, q := range []string{"nobody-at-all", "@nobody-at-all"} {
		if got, err := d.LookupUser(ctx, q); !errors.Is(err, chat.ErrUnknownUser) {
			t.Errorf("LookupUser(%q) = %+v, %v; want chat.ErrUnknownUser", q, got, err)
		}
	}
}

func testEphemeral(t *testing.T, s *session) {
	es, ok := s.a.(chat.EphemeralSender)
	if !ok {
		t.Skip("the adapter is not a chat.EphemeralSender")
	}
	ep, ok := s.p.(EphemeralPeer)
	if !ok {
		t.Fatal("the adapter is a chat.EphemeralSender but the peer is not a chattest.EphemeralPeer")
	}
	s.roundTrip(t, room, "connected")
	ctx, cancel := context.WithTimeout(context.Background(), Guard)
	defer cancel()
	uid := s.user(t, user)
	if err := es.SendEphemeral(ctx, s.to(t, room), uid, chat.Text("for your eyes only")); err != nil {
		t.Fatalf("SendEphemeral: %v", err)
	}
	msg, to := ep.SaidEphemeral(t)
	if msg.Room != s.room(t, room) || msg.Text != "for your eyes only" || to != uid {
		t.Errorf("service saw the ephemeral %+v shown to %q, want room %q, text %q, user %q", msg, to, s.room(t, room), "for your eyes only", uid)
	}
	s.postMarker(t, "the ephemeral message was posted to everyone")
	unknown := chat.MessageRef{Adapter: s.a.Name(), Room: s.unknownRoom()}
	if err := es.SendEphemeral(ctx, unknown, uid, chat.Text("nowhere")); !errors.Is(err, chat.ErrUnknownRoom) {
		t.Errorf("SendEphemeral to room %q, which the service does not have, returned %v, want chat.ErrUnknownRoom", unknown.Room, err)
	}
}

var wildcard = regexp.MustCompile(`\{[^}]*\}`)

func testRoutesVerify(t *testing.T, s *session) {
	if _, ok := s.a.(chat.RouteProvider); !ok {
		t.Skip("the adapter is not a chat.RouteProvider")
	}
	if len(s.routes) == 0 {
		t.Skip("the adapter serves no routes in this configuration")
	}
	for _, r := range s.routes {
		pattern := routePattern(s.a.Name(), r)
		if r.Method != http.MethodPost && r.Method != http.MethodGet {
			t.Errorf("route %q: method %q, want POST or GET", pattern, r.Method)
		}
		if r.Verify == nil || r.Handler == nil {
			t.Errorf("route %q has no Verify or no Handler", pattern)
			continue
		}
		path := "/" + s.a.Name()
		if r.Path != "" {
			path += "/" + wildcard.ReplaceAllString(r.Path, "test")
		}
		for _, body := range []string{"", `{"type":"event_callback","token":"x"}`, "payload=%7B%7D&token=x"} {
			req, err := http.NewRequest(r.Method, s.base+path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", r.Method, path, err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("unsigned %s %s with body %q: status %d, want 401", r.Method, path, body, res.StatusCode)
			}
			verr := r.Verify(httptest.NewRequest(r.Method, path, strings.NewReader(body)), []byte(body))
			if !errors.Is(verr, chat.ErrUnauthorized) {
				t.Errorf("route %q: Verify of an unsigned request returned %v, want an error wrapping chat.ErrUnauthorized", pattern, verr)
			}
		}
	}
	s.marker(t, "an unsigned request reached the handler")
}

// inbox is the suite's handler: it keeps every delivered message and
// interaction, without blocking the adapter, until the suite takes it.
type inbox struct {
	mu     sync.Mutex
	msgs   []chat.Message
	clicks []chat.Interaction
	wake   chan struct{} // has a token when msgs or clicks may be non-empty
}

func newInbox() *inbox { return &inbox{wake: make(chan struct{}, 1)} }

func (b *inbox) HandleMessage(_ context.Context, m chat.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	b.signal()
}

func (b *inbox) HandleInteraction(_ context.Context, in chat.Interaction) {
	b.mu.Lock()
	b.clicks = append(b.clicks, in)
	b.mu.Unlock()
	b.signal()
}

func (b *inbox) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// take removes and returns the oldest message (or, with click, the oldest
// interaction), if any.
func (b *inbox) take(click bool) (chat.Message, chat.Interaction, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if click {
		if len(b.clicks) == 0 {
			return chat.Message{}, chat.Interaction{}, false
		}
		in := b.clicks[0]
		b.clicks = b.clicks[1:]
		return chat.Message{}, in, true
	}
	if len(b.msgs) == 0 {
		return chat.Message{}, chat.Interaction{}, false
	}
	m := b.msgs[0]
	b.msgs = b.msgs[1:]
	return m, chat.Interaction{}, true
}
