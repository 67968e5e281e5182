package outbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chimaops/chima/core/chat"
)

// Queue returns while its room waits out a Retry-After, and the room's
// order holds: what was queued first goes out first, once the wait is over.
func TestQueueReturnsWhileItsRoomIsRateLimitedAndKeepsItsOrder(t *testing.T) {
	clk := newClock()
	o := New(Options{Clock: clk, Registerer: prometheus.NewRegistry()})
	a := newFake("slack")
	a.hook = func(c call, n int) error {
		if n == 1 {
			return &chat.RetryAfterError{After: time.Hour, Err: errors.New("ratelimited")}
		}
		return nil
	}
	var tickets []*Ticket
	for i := range 3 {
		tk, err := o.Queue(context.Background(), a, roomRef("busy"), txt(fmt.Sprint("reply ", i)))
		if err != nil {
			t.Fatalf("queue %d: %v", i, err)
		}
		tickets = append(tickets, tk)
	}
	until := clk.Now().Add(time.Hour)
	eventually(t, "the room to wait for its Retry-After", func() bool { return clk.waiting(until) })
	select {
	case <-tickets[0].Done():
		t.Fatal("the rate-limited message was answered before its Retry-After passed")
	default:
	}
	clk.Advance(time.Hour)
	for i, tk := range tickets {
		if _, err := tk.Ref(context.Background()); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
	}
	if got := strings.Join(a.texts("busy"), "|"); got != "reply 0|reply 1|reply 2" {
		t.Fatalf("delivered %q, want the replies in the order queued", got)
	}
	closeOutbox(t, o)
}

// A queued message edited before it is posted is posted with its latest
// content, once; one edited while it is being posted is edited after it.
func TestEditsOfAQueuedMessageReachItWhetherOrNotItIsPosted(t *testing.T) {
	cases := []struct {
		name string
		// inflight holds the post at the service while the edits come.
		inflight bool
		want     string
	}{
		{"still queued: posted with the latest content", false, "first|v3"},
		{"being posted: edited to the latest content after it", true, "first|v0|+v3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := New(Options{DefaultMinEditInterval: -1, Registerer: prometheus.NewRegistry()})
			a := newFake("slack")
			release := a.hold("ops")
			// The room is busy with another message, so that the next
			// one waits in the queue.
			if _, err := o.Queue(context.Background(), a, roomRef("ops"), txt("first")); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the first message at the service", func() bool { return a.attemptsIn("ops") == 1 })
			tk, err := o.Queue(context.Background(), a, roomRef("ops"), txt("v0"))
			if err != nil {
				t.Fatal(err)
			}
			if c.inflight {
				// Let the first through, and hold the second at the service.
				a.mu.Lock()
				a.gates["ops"] = nil
				a.mu.Unlock()
				release()
				release = a.hold("ops")
				eventually(t, "the second message at the service", func() bool { return a.attemptsIn("ops") == 2 })
			}
			for _, v := range []string{"v1", "v2", "v3"} {
				if err := o.UpdateQueued(context.Background(), tk, txt(v)); err != nil {
					t.Fatalf("edit %s: %v", v, err)
				}
			}
			release()
			if _, err := tk.Ref(context.Background()); err != nil {
				t.Fatal(err)
			}
			closeOutbox(t, o)
			if got := strings.Join(a.texts("ops"), "|"); got != c.want {
				t.Fatalf("delivered %q, want %q", got, c.want)
			}
		})
	}
}

// keyed records the chat.SendKey of every Send attempt.
type keyed struct {
	*fakeAdapter
	keys []string
}

func (k *keyed) Send(ctx context.Context, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	k.mu.Lock()
	k.keys = append(k.keys, chat.SendKey(ctx))
	k.mu.Unlock()
	return k.fakeAdapter.Send(ctx, to, out)
}

// Every attempt at one message carries one chat.SendKey, so a service that
// deduplicates shows a retried post once; another message, or another part
// of a split one, has another key.
func TestEveryAttemptAtAPostCarriesOneKey(t *testing.T) {
	o := New(Options{Backoff: func(int) time.Duration { return 0 }, Registerer: prometheus.NewRegistry()})
	f := newFake("slack")
	f.max = 10
	f.hook = func(c call, n int) error {
		if n == 1 {
			return errors.New("connection reset by peer") // the answer was lost
		}
		return nil
	}
	a := &keyed{fakeAdapter: f}
	for _, text := range []string{"first", "a second message, split in two"} {
		if _, err := o.Send(context.Background(), a, roomRef("ops"), txt(text)); err != nil {
			t.Fatal(err)
		}
	}
	closeOutbox(t, o)
	k := a.keys
	if len(k) < 4 || k[0] == "" || k[0] != k[1] || k[1] == k[2] || k[2] == k[len(k)-1] {
		t.Fatalf("keys of the attempts = %q, want the first two (one post, tried again) equal, and the others their own", k)
	}
}
