package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chimaops/chima/core/chat"
)

func roomRef(name string) chat.MessageRef { return chat.MessageRef{Room: name} }

type sendResult struct {
	ref chat.MessageRef
	err error
}

func sendAsync(o *Outbox, a chat.Adapter, to chat.MessageRef, text string) <-chan sendResult {
	c := make(chan sendResult, 1)
	go func() {
		ref, err := o.Send(context.Background(), a, to, txt(text))
		c <- sendResult{ref, err}
	}()
	return c
}

func closeOutbox(t *testing.T, o *Outbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// A room the service rate-limits waits out its Retry-After, with what was
// queued behind in order, while another room of the same adapter and the
// same room of another adapter keep sending. The clock never moves until
// the test says so: the other rooms are not merely faster, they do not
// wait at all.
func TestRetryAfterHoldsOnlyItsRoomAndKeepsItsOrder(t *testing.T) {
	clk := newClock()
	reg := prometheus.NewRegistry()
	o := New(Options{Clock: clk, Registerer: reg})
	slack, mm := newFake("slack"), newFake("mattermost")
	slack.hook = func(c call, n int) error {
		if c.ref.Room == "busy" && n == 1 {
			return &chat.RetryAfterError{After: time.Minute, Err: errors.New("ratelimited")}
		}
		return nil
	}
	first := sendAsync(o, slack, roomRef("busy"), "first")
	until := clk.Now().Add(time.Minute)
	eventually(t, "the busy room to wait for its Retry-After", func() bool { return clk.waiting(until) })
	second := sendAsync(o, slack, roomRef("busy"), "second")
	eventually(t, "the second message to be queued", func() bool { return o.Pending() == 2 })

	for i := range 3 {
		if _, err := o.Send(context.Background(), slack, roomRef("calm"), txt(fmt.Sprint("calm ", i))); err != nil {
			t.Fatalf("send to another room while one is rate limited: %v", err)
		}
	}
	if _, err := o.Send(context.Background(), mm, roomRef("busy"), txt("other adapter")); err != nil {
		t.Fatalf("send through another adapter: %v", err)
	}
	if n := slack.attemptsIn("busy"); n != 1 {
		t.Fatalf("the rate-limited room was tried %d times before its Retry-After passed, want 1", n)
	}
	select {
	case r := <-first:
		t.Fatalf("the rate-limited send returned before its Retry-After passed: %+v", r)
	case r := <-second:
		t.Fatalf("the message queued behind it returned first: %+v", r)
	default:
	}

	clk.Advance(time.Minute)
	for _, c := range []<-chan sendResult{first, second} {
		if r := <-c; r.err != nil {
			t.Fatalf("send after the Retry-After: %v", r.err)
		}
	}
	if got := slack.texts("busy"); strings.Join(got, "|") != "first|second" {
		t.Fatalf("the busy room got %q, want first then second", got)
	}
	if got := testutil.ToFloat64(o.m.retried.WithLabelValues("slack", "rate_limited")); got != 1 {
		t.Fatalf("retries{rate_limited} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(o.m.sent.WithLabelValues("slack", "send")); got != 5 {
		t.Fatalf("sent{slack,send} = %v, want 5", got)
	}
	closeOutbox(t, o)
}

// Edits of one message wait for the edit interval, and those that arrive
// meanwhile replace each other: one edit goes out, the latest.
func TestEditsOfOneMessageCoalesceAndTheLatestIsSent(t *testing.T) {
	clk := newClock()
	o := New(Options{Clock: clk, Registerer: prometheus.NewRegistry()})
	a := newFake("slack")
	ref, err := o.Send(context.Background(), a, roomRef("ops"), txt("deploying"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 100; i++ {
		if err := o.Update(context.Background(), a, ref, txt(fmt.Sprint("step ", i))); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	if n := o.Pending(); n != 1 {
		t.Fatalf("pending = %d after 100 edits of one message, want 1", n)
	}
	if got := a.texts("ops"); len(got) != 1 {
		t.Fatalf("an edit went out before the interval since the post passed: %q", got)
	}
	clk.Advance(time.Second)
	eventually(t, "the coalesced edit", func() bool { return len(a.delivered()) == 2 })

	// Edits after it wait for the interval since it.
	for i := 101; i <= 102; i++ {
		if err := o.Update(context.Background(), a, ref, txt(fmt.Sprint("step ", i))); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Second)
	eventually(t, "the second edit", func() bool { return len(a.delivered()) == 3 })
	if got := strings.Join(a.texts("ops"), "|"); got != "deploying|+step 100|+step 102" {
		t.Fatalf("delivered %q", got)
	}
	if got := testutil.ToFloat64(o.m.coalesced.WithLabelValues("slack")); got != 100 {
		t.Fatalf("coalesced = %v, want 100 (99 + 1)", got)
	}
	closeOutbox(t, o)
}

// An edit that arrives while the last one is with the service waits for
// it, merging with those that follow; the final content always goes out.
func TestAnEditArrivingWhileOneIsInFlightIsSentAfterIt(t *testing.T) {
	o := New(Options{DefaultMinEditInterval: -1, Registerer: prometheus.NewRegistry()})
	a := newFake("slack")
	ref, err := o.Send(context.Background(), a, roomRef("ops"), txt("v0"))
	if err != nil {
		t.Fatal(err)
	}
	release := a.hold("ops")
	if err := o.Update(context.Background(), a, ref, txt("v1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first edit to reach the service", func() bool { return a.attemptsIn("ops") == 2 })
	for _, v := range []string{"v2", "v3", "v4"} {
		if err := o.Update(context.Background(), a, ref, txt(v)); err != nil {
			t.Fatal(err)
		}
	}
	release()
	closeOutbox(t, o)
	if got := strings.Join(a.texts("ops"), "|"); got != "v0|+v1|+v4" {
		t.Fatalf("delivered %q, want v0, v1 and the last edit v4", got)
	}
}

// A message's edits come after its post even when the room is rate
// limited and many messages are posted and edited at once.
func TestEveryEditFollowsThePostOfItsMessage(t *testing.T) {
	o := New(Options{DefaultMinEditInterval: -1, Backoff: func(int) time.Duration { return 0 }, Registerer: prometheus.NewRegistry()})
	a := newFake("slack")
	var mu sync.Mutex
	a.hook = func(c call, n int) error {
		mu.Lock()
		defer mu.Unlock()
		if n%3 == 0 {
			return &chat.RetryAfterError{After: time.Microsecond}
		}
		return nil
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			r := roomRef(fmt.Sprint("r", i%4))
			ref, err := o.Send(context.Background(), a, r, txt(fmt.Sprint("post ", i)))
			if err != nil {
				t.Errorf("send: %v", err)
				return
			}
			for j := range 5 {
				if err := o.Update(context.Background(), a, ref, txt(fmt.Sprintf("post %d edit %d", i, j))); err != nil {
					t.Errorf("update: %v", err)
				}
			}
		})
	}
	wg.Wait()
	closeOutbox(t, o)
	posted := map[string]bool{}
	last := map[string]string{}
	for _, c := range a.delivered() {
		switch c.op {
		case "send":
			posted[c.ref.MessageID] = true
		case "update":
			if !posted[c.ref.MessageID] {
				t.Fatalf("edit %q reached the service before its message was posted", c.out.Text)
			}
			last[c.ref.MessageID] = c.out.Text
		}
	}
	if len(posted) != 40 || len(last) != 40 {
		t.Fatalf("posted %d messages and edited %d, want 40 each", len(posted), len(last))
	}
	for id, text := range last {
		if !strings.HasSuffix(text, "edit 4") {
			t.Fatalf("message %s ends as %q, want its last edit", id, text)
		}
	}
}

// A flood of edits to more messages than the outbox may hold, on a service
// that answers nothing, keeps pending items within the caps and memory
// flat; those refused are counted, and once the service answers every
// message accepted ends with its latest accepted content.
func TestAFloodOfEditsStaysWithinTheCaps(t *testing.T) {
	const (
		rooms, messages, edits = 10, 1000, 100_000
		perQueue, total        = 25, 200
	)
	o := New(Options{DefaultMinEditInterval: -1, MaxPending: perQueue, MaxPendingTotal: total, Registerer: prometheus.NewRegistry()})
	a := newFake("slack")
	var releases []func()
	for r := range rooms {
		releases = append(releases, a.hold(fmt.Sprint("r", r)))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	latest := map[string]string{} // by message id: the last accepted text
	refused, maxPending := 0, 0
	for i := range edits {
		msg := i % messages
		ref := chat.MessageRef{Adapter: "slack", Room: fmt.Sprint("r", msg%rooms), MessageID: fmt.Sprint("m", msg)}
		text := fmt.Sprintf("%d:%s", i, strings.Repeat("x", 512)) // its own allocation
		switch err := o.Update(context.Background(), a, ref, txt(text)); {
		case errors.Is(err, ErrFull):
			refused++
		case err != nil:
			t.Fatalf("update: %v", err)
		default:
			latest[ref.MessageID] = text
		}
		if i%1000 == 0 {
			maxPending = max(maxPending, o.Pending())
			o.mu.Lock()
			for _, q := range o.queues {
				if len(q.items) > perQueue {
					t.Errorf("queue %v holds %d items, cap %d", q.key, len(q.items), perQueue)
				}
			}
			o.mu.Unlock()
		}
	}
	maxPending = max(maxPending, o.Pending())
	runtime.GC()
	runtime.ReadMemStats(&after)
	if maxPending > total {
		t.Fatalf("pending reached %d, cap %d", maxPending, total)
	}
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 8<<20 {
		t.Fatalf("the heap grew by %d bytes under the flood: memory is not bounded", grew)
	}
	if got := testutil.ToFloat64(o.m.failed.WithLabelValues("slack", reasonFull)); int(got) != refused || refused == 0 {
		t.Fatalf("failed{full} = %v, %d refused", got, refused)
	}

	for _, release := range releases {
		release()
	}
	closeOutbox(t, o)
	final := map[string]string{}
	for _, c := range a.delivered() {
		final[c.ref.MessageID] = c.out.Text
	}
	for id, text := range latest {
		if final[id] != text {
			t.Fatalf("message %s ends as %.12q…, want its latest accepted edit %.12q…", id, final[id], text)
		}
	}
}

type notRetryable struct{}

func (notRetryable) Error() string   { return "channel_not_found" }
func (notRetryable) Retryable() bool { return false }

// What cannot be delivered is given up after MaxAttempts (at once when the
// error is permanent), told to the sender, logged and counted.
func TestUndeliverableMessagesAreLoggedAndCounted(t *testing.T) {
	cases := []struct {
		name         string
		err          error
		attempts     int
		reason       string
		retried      string
		retriedTimes float64
	}{
		{"an unknown room is not retried", fmt.Errorf("post: %w", chat.ErrUnknownRoom), 1, reasonPermanent, "", 0},
		{"an error that says it is not retryable is not retried", notRetryable{}, 1, reasonPermanent, "", 0},
		{"a refusal for good is not retried", fmt.Errorf("post: %w: invalid_blocks", chat.ErrRefused), 1, reasonPermanent, "", 0},
		{"transient errors are retried up to MaxAttempts", errors.New("502 bad gateway"), 5, reasonRetries, "transient", 4},
		{"rate limits are retried up to MaxAttempts", &chat.RetryAfterError{After: time.Microsecond}, 5, reasonRetries, "rate_limited", 4},
	}
	for _, op := range []string{"send", "update"} {
		for _, tc := range cases {
			t.Run(op+"/"+tc.name, func(t *testing.T) {
				var logs bytes.Buffer
				var lmu sync.Mutex
				o := New(Options{
					Logger:     slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &lmu}, nil)),
					Backoff:    func(int) time.Duration { return 0 },
					Registerer: prometheus.NewRegistry(),
				})
				a := newFake("slack")
				a.hook = func(c call, _ int) error {
					if c.op == op {
						return tc.err
					}
					return nil
				}
				switch op {
				case "send":
					_, err := o.Send(context.Background(), a, roomRef("ops"), txt("hello"))
					if !errors.Is(err, tc.err) {
						t.Fatalf("send returned %v, want %v", err, tc.err)
					}
				case "update":
					if err := o.Update(context.Background(), a, chat.MessageRef{Room: "ops", MessageID: "m1"}, txt("hello")); err != nil {
						t.Fatalf("update: %v", err)
					}
				}
				closeOutbox(t, o)
				if got := a.attemptsIn("ops"); got != tc.attempts {
					t.Errorf("attempts = %d, want %d", got, tc.attempts)
				}
				if got := testutil.ToFloat64(o.m.failed.WithLabelValues("slack", tc.reason)); got != 1 {
					t.Errorf("failed{%s} = %v, want 1", tc.reason, got)
				}
				if tc.retried != "" {
					if got := testutil.ToFloat64(o.m.retried.WithLabelValues("slack", tc.retried)); got != tc.retriedTimes {
						t.Errorf("retries{%s} = %v, want %v", tc.retried, got, tc.retriedTimes)
					}
				}
				lmu.Lock()
				defer lmu.Unlock()
				if !strings.Contains(logs.String(), "chat message not delivered") || !strings.Contains(logs.String(), "reason="+tc.reason) {
					t.Errorf("not logged: %s", logs.String())
				}
			})
		}
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// A sender that stops waiting withdraws its message while it is queued.
func TestASendWhoseContextEndsIsWithdrawn(t *testing.T) {
	clk := newClock()
	o := New(Options{Clock: clk, Registerer: prometheus.NewRegistry()})
	a := newFake("slack")
	a.hook = func(c call, n int) error {
		if n == 1 {
			return &chat.RetryAfterError{After: time.Hour}
		}
		return nil
	}
	blocked := sendAsync(o, a, roomRef("ops"), "first")
	eventually(t, "the rate limit", func() bool { return clk.waiting(clk.Now().Add(time.Hour)) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := o.Send(ctx, a, roomRef("ops"), txt("second")); done <- err }()
	eventually(t, "the second message queued", func() bool { return o.Pending() == 2 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("send returned %v, want context.Canceled", err)
	}
	if got := testutil.ToFloat64(o.m.failed.WithLabelValues("slack", reasonCanceled)); got != 1 {
		t.Fatalf("failed{canceled} = %v", got)
	}
	clk.Advance(time.Hour)
	<-blocked
	closeOutbox(t, o)
	if got := strings.Join(a.texts("ops"), "|"); got != "first" {
		t.Fatalf("delivered %q, want only the message still awaited", got)
	}
}

// Close delivers what waits, edits without waiting out their interval,
// and then refuses new messages.
func TestCloseDeliversWhatWaits(t *testing.T) {
	clk := newClock()
	o := New(Options{Clock: clk, DefaultMinEditInterval: time.Hour, Registerer: prometheus.NewRegistry()})
	a := newFake("slack")
	ref, err := o.Send(context.Background(), a, roomRef("ops"), txt("deploying"))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Update(context.Background(), a, ref, txt("done")); err != nil {
		t.Fatal(err)
	}
	closeOutbox(t, o)
	if got := strings.Join(a.texts("ops"), "|"); got != "deploying|+done" {
		t.Fatalf("delivered %q, want the last edit too", got)
	}
	if _, err := o.Send(context.Background(), a, roomRef("ops"), txt("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close = %v, want ErrClosed", err)
	}
	if err := o.Update(context.Background(), a, ref, txt("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("update after close = %v, want ErrClosed", err)
	}
	if got := testutil.ToFloat64(o.m.failed.WithLabelValues("slack", reasonClosed)); got != 2 {
		t.Fatalf("failed{closed} = %v, want 2", got)
	}
}

// When Close's deadline passes before a stuck service answers, what is
// left is given up, counted, and its senders are told.
func TestCloseGivesUpAtItsDeadline(t *testing.T) {
	o := New(Options{DefaultMinEditInterval: -1, Registerer: prometheus.NewRegistry()})
	a := newFake("slack")
	defer a.hold("stuck")()
	sent := sendAsync(o, a, roomRef("stuck"), "never")
	eventually(t, "the send to reach the service", func() bool { return a.attemptsIn("stuck") == 1 })
	if err := o.Update(context.Background(), a, chat.MessageRef{Room: "stuck", MessageID: "m9"}, txt("edit")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := o.Close(ctx); err == nil || !strings.Contains(err.Error(), "2 messages") {
		t.Fatalf("close = %v, want an error counting 2 undelivered", err)
	}
	if r := <-sent; r.err == nil {
		t.Fatal("the sender of a message given up was not told")
	}
	if got := testutil.ToFloat64(o.m.failed.WithLabelValues("slack", reasonShutdown)); got != 2 {
		t.Fatalf("failed{shutdown} = %v, want 2", got)
	}
	if n := o.Pending(); n != 0 {
		t.Fatalf("pending after close = %d", n)
	}
}

// An idle queue lingers only until its last edit interval is over, then
// its goroutine ends.
func TestIdleQueuesReleaseTheirGoroutine(t *testing.T) {
	clk := newClock()
	o := New(Options{Clock: clk, Registerer: prometheus.NewRegistry()})
	a := newFake("slack")
	base := runtime.NumGoroutine()
	for r := range 20 {
		if _, err := o.Send(context.Background(), a, roomRef(fmt.Sprint("r", r)), txt("hi")); err != nil {
			t.Fatal(err)
		}
	}
	if n := o.queueCount(); n != 20 {
		t.Fatalf("queues = %d within the edit interval, want 20 (they keep the interval)", n)
	}
	clk.Advance(time.Second)
	eventually(t, "idle queues to end", func() bool { return o.queueCount() == 0 })
	eventually(t, "their goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
}

// A message longer than the service takes goes out as several, in order;
// an edit is truncated. Nothing reaches the service over its limit.
func TestLongMessagesAreSplitAndLongEditsTruncated(t *testing.T) {
	o := New(Options{DefaultMinEditInterval: -1, Registerer: prometheus.NewRegistry()})
	a := newFake("mattermost")
	a.max = 200
	var lines []string
	for i := range 40 {
		lines = append(lines, fmt.Sprintf("line %02d ünïcødé ✓", i))
	}
	long := chat.Output{Title: "Report", Text: strings.Join(lines, "\n"), Fields: []chat.Field{{Title: "app", Value: "demo"}}}
	ref, err := o.Send(context.Background(), a, roomRef("ops"), long)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Update(context.Background(), a, ref, long); err != nil {
		t.Fatal(err)
	}
	closeOutbox(t, o)
	got := a.delivered()
	if len(got) < 3 || got[len(got)-1].op != "update" {
		t.Fatalf("delivered %d calls, want several posts and an edit", len(got))
	}
	if got[0].ref.MessageID != ref.MessageID {
		t.Fatalf("Send returned %s, want the first part %s", ref.MessageID, got[0].ref.MessageID)
	}
	var joined []string
	for _, c := range got {
		if n := size(c.out); n > a.max {
			t.Fatalf("%s of %d characters reached a service that takes %d", c.op, n, a.max)
		}
		if c.op == "send" {
			joined = append(joined, c.out.Text)
		}
	}
	if strings.Join(joined, "\n") != long.Text {
		t.Fatal("the parts do not add up to the message")
	}
	if got[0].out.Title != "Report" || len(got[len(got)-2].out.Fields) != 1 {
		t.Fatal("the title must lead the first part and the fields end the last")
	}
	if edit := got[len(got)-1].out.Text; !strings.Contains(edit, "… (truncated, ") {
		t.Fatalf("the edit was not marked truncated: %q", edit)
	}
	if testutil.ToFloat64(o.m.reshaped.WithLabelValues("mattermost", "split")) != 1 || testutil.ToFloat64(o.m.reshaped.WithLabelValues("mattermost", "truncated")) != 1 {
		t.Fatal("reshaped messages not counted")
	}
}

// Two outboxes on one registry share its collectors instead of panicking
// (a bot rebuilt in tests reuses its Metrics).
func TestTwoOutboxesShareARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	o1, o2 := New(Options{Registerer: reg}), New(Options{Registerer: reg})
	if o1.m.sent != o2.m.sent {
		t.Fatal("the second outbox did not reuse the registered collector")
	}
}

func txt(s string) chat.Output { return chat.Output{Text: s} }

// A service that is slow to answer one room holds up neither its other
// rooms nor the caller of Update.
func TestASlowRoomHoldsUpNobodyElse(t *testing.T) {
	o := New(Options{Registerer: prometheus.NewRegistry()})
	a := newFake("slack")
	release := a.hold("slow")
	stuck := sendAsync(o, a, roomRef("slow"), "stuck")
	eventually(t, "the slow room's send to reach the service", func() bool { return a.attemptsIn("slow") == 1 })
	if err := o.Update(context.Background(), a, chat.MessageRef{Room: "slow", MessageID: "m0"}, txt("edit")); err != nil {
		t.Fatalf("an edit for the slow room was refused: %v", err)
	}
	for i := range 10 {
		if _, err := o.Send(context.Background(), a, roomRef(fmt.Sprint("r", i)), txt("hi")); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case r := <-stuck:
		t.Fatalf("the slow room's send returned while the service had not answered: %+v", r)
	default:
	}
	release()
	if r := <-stuck; r.err != nil {
		t.Fatal(r.err)
	}
	closeOutbox(t, o)
	if got := strings.Join(a.texts("slow"), "|"); got != "stuck|+edit" {
		t.Fatalf("the slow room got %q", got)
	}
}

// The edit interval is set per adapter: one whose interval is 0 edits at
// once while another's edit waits for the clock.
func TestTheEditIntervalIsPerAdapter(t *testing.T) {
	clk := newClock()
	o := New(Options{Clock: clk, MinEditInterval: map[string]time.Duration{"console": 0}, Registerer: prometheus.NewRegistry()})
	console, slack := newFake("console"), newFake("slack")
	for _, a := range []*fakeAdapter{console, slack} {
		ref, err := o.Send(context.Background(), a, roomRef("ops"), txt("v0"))
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Update(context.Background(), a, ref, txt("v1")); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the console's edit, without the clock moving", func() bool { return len(console.delivered()) == 2 })
	if got := slack.delivered(); len(got) != 1 {
		t.Fatalf("slack's edit went out before its interval: %+v", got)
	}
	clk.Advance(DefaultMinEditInterval)
	eventually(t, "slack's edit once its interval passed", func() bool { return len(slack.delivered()) == 2 })
	closeOutbox(t, o)
}
