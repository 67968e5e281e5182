package events_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chimaops/chima/core/events"
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// plugin is a Deliverer whose answers are scripted: each call takes the
// next answer ("ok", "fail" or "hang"), the last one repeating.
type plugin struct {
	mu      sync.Mutex
	answers []string
	got     []uint32 // the attempt of each call
	called  chan struct{}
}

func (p *plugin) DeliverEvent(ctx context.Context, _ string, ev *pluginv1.WebhookEvent) error {
	p.mu.Lock()
	p.got = append(p.got, ev.GetAttempt())
	a := p.answers[0]
	if len(p.answers) > 1 {
		p.answers = p.answers[1:]
	}
	p.mu.Unlock()
	select {
	case p.called <- struct{}{}:
	default:
	}
	switch a {
	case "fail":
		return errors.New("plugin p: plugin unavailable")
	case "hang":
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (p *plugin) attempts() []uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]uint32(nil), p.got...)
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "chima.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newQueue(st *store.Store, p *plugin, retry store.Retry) *events.Queue {
	return events.New(events.Options{Store: st, Deliver: p, Retry: retry,
		Subscribers: func(string) []string { return []string{"p"} }, Ready: func() []string { return []string{"p"} }})
}

// run runs q until the returned stop is called.
func run(q *events.Queue) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// waitState waits until the one handing is in state, after attempts
// attempts.
func waitState(t *testing.T, st *store.Store, state store.EventState, attempts int) store.EventDelivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := st.ListEventDeliveries(context.Background(), store.EventFilter{State: state})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 && list[0].Attempts == attempts {
			return list[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no handing became %s after %d attempts: %+v", state, attempts, list)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAnAttemptCutShortByShutdownIsHandedAgainByTheNextRun(t *testing.T) {
	st := openStore(t)
	p := &plugin{answers: []string{"hang", "ok"}, called: make(chan struct{}, 1)}
	q := newQueue(st, p, store.Retry{})
	stop := run(q)
	if _, err := q.Receive(context.Background(), store.Delivery{Source: "github", ID: "d1", Event: "push", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	<-p.called
	stop() // the bot stops while the plugin handles it
	waitState(t, st, store.EventRunning, 1)
	stop = run(newQueue(st, p, store.Retry{}))
	defer stop()
	waitState(t, st, store.EventHandled, 2)
	if got := p.attempts(); len(got) != 2 || got[1] != 2 {
		t.Fatalf("attempts seen by the plugin %v; want the second handed as attempt 2", got)
	}
}

func TestWakeHandsAWaitingDeliveryAtOnceNotAfterItsBackoff(t *testing.T) {
	st := openStore(t)
	p := &plugin{answers: []string{"fail", "ok"}, called: make(chan struct{}, 1)}
	q := newQueue(st, p, store.Retry{Backoff: time.Hour, MaxBackoff: time.Hour})
	stop := run(q)
	defer stop()
	if _, err := q.Receive(context.Background(), store.Delivery{Source: "github", ID: "d1", Event: "push", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if e := waitState(t, st, store.EventPending, 1); time.Until(e.NextAt) < 30*time.Minute {
		t.Fatalf("after a failed attempt: %+v, want it waiting an hour", e)
	}
	q.Wake("p")
	waitState(t, st, store.EventHandled, 2)
}

func TestThePendingGaugeFallsToZeroOnceABurstIsHandled(t *testing.T) {
	st := openStore(t)
	p := &plugin{answers: []string{"ok"}, called: make(chan struct{}, 1)}
	pending := prometheus.NewGauge(prometheus.GaugeOpts{Name: "pending"})
	// Poll is long: only the count when the last handing ended can bring
	// the gauge down in time.
	q := events.New(events.Options{Store: st, Deliver: p, Pending: pending, Poll: time.Hour,
		Subscribers: func(string) []string { return []string{"p"} }, Ready: func() []string { return []string{"p"} }})
	stop := run(q)
	defer stop()
	for i := range 20 {
		d := store.Delivery{Source: "github", ID: fmt.Sprintf("d%d", i), Event: "push", Payload: []byte(`{}`)}
		if _, err := q.Receive(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		open, err := st.OpenEventDeliveries(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(open) == 0 && testutil.ToFloat64(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("open handings %v, gauge %v; want none and 0", open, testutil.ToFloat64(pending))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
