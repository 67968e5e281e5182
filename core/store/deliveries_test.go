package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

var retry3 = Retry{MaxAttempts: 3, Backoff: time.Second, MaxBackoff: 3 * time.Second}

func TestADeliveryIsQueuedOncePerPluginAndARedeliveryIsDropped(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	d := Delivery{Source: "github", ID: "72d3162e", Event: "deployment", Payload: []byte(`{"a":1}`),
		Headers: map[string]string{"X-GitHub-Event": "deployment"}}
	rc, err := s.ReceiveDelivery(ctx, d, []string{"deploy", "cistatus", "deploy"})
	if err != nil || !rc.New || !slices.Equal(rc.Queued, []string{"cistatus", "deploy"}) {
		t.Fatalf("first receipt = %+v, %v; want new, queued for cistatus and deploy once each", rc, err)
	}
	for i := range 2 {
		rc, err := s.ReceiveDelivery(ctx, d, []string{"cistatus", "deploy"})
		if err != nil || rc.New || len(rc.Queued) != 0 {
			t.Fatalf("redelivery %d: receipt = %+v, %v; want it dropped", i+1, rc, err)
		}
	}
	list, err := s.ListEventDeliveries(ctx, EventFilter{})
	if err != nil || len(list) != 2 {
		t.Fatalf("handings = %+v, %v; want two", list, err)
	}
	got, err := s.GetDelivery(ctx, "github", d.ID)
	if err != nil || got.State != DeliveryReceived || got.Attempts != 3 || string(got.Payload) != `{"a":1}` {
		t.Fatalf("stored delivery = %+v, %v", got, err)
	}
}

func TestADeliveryNobodySubscribedToIsRecordedAsHandled(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	rc, err := s.ReceiveDelivery(ctx, Delivery{Source: "github", ID: "n1", Event: "star", Payload: []byte(`{}`)}, nil)
	if err != nil || !rc.New || len(rc.Queued) != 0 {
		t.Fatalf("receipt = %+v, %v", rc, err)
	}
	if got, err := s.GetDelivery(ctx, "github", "n1"); err != nil || got.State != DeliveryHandled || got.Payload != nil {
		t.Fatalf("stored delivery = %+v, %v", got, err)
	}
}

func TestClaimHandsOnlyDueDeliveriesOfRunningPluginsAndOnlyOnce(t *testing.T) {
	ctx := context.Background()
	s, clock := newStore(t)
	clock.set(base)
	if _, err := s.ReceiveDelivery(ctx, Delivery{Source: "github", ID: "d1", Event: "push", Payload: []byte(`{"n":1}`),
		Headers: map[string]string{"X-GitHub-Event": "push"}}, []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if e, err := s.ClaimEventDelivery(ctx, base, time.Minute, nil); err != nil || e != nil {
		t.Fatalf("claim with no running plugin = %+v, %v", e, err)
	}
	e, err := s.ClaimEventDelivery(ctx, base, time.Minute, []string{"b"})
	if err != nil || e == nil || e.Plugin != "b" || e.Attempts != 1 || e.State != EventRunning ||
		string(e.Payload) != `{"n":1}` || e.Headers["X-GitHub-Event"] != "push" || e.Event != "push" {
		t.Fatalf("claim = %+v, %v", e, err)
	}
	if again, err := s.ClaimEventDelivery(ctx, base.Add(time.Second), time.Minute, []string{"b"}); err != nil || again != nil {
		t.Fatalf("a running handing was claimed twice: %+v, %v", again, err)
	}
	// Its process died: once the lease lapsed, it is due again.
	lapsed, err := s.ClaimEventDelivery(ctx, base.Add(2*time.Minute), time.Minute, []string{"b"})
	if err != nil || lapsed == nil || lapsed.Attempts != 2 {
		t.Fatalf("claim after the lease lapsed = %+v, %v", lapsed, err)
	}
}

func TestAFailingHandingBacksOffThenEndsFailedAtTheCap(t *testing.T) {
	ctx := context.Background()
	s, clock := newStore(t)
	clock.set(base)
	k := EventKey{Source: "github", DeliveryID: "d1", Plugin: "deploy"}
	if _, err := s.ReceiveDelivery(ctx, Delivery{Source: k.Source, ID: k.DeliveryID, Event: "push", Payload: []byte(`{}`)}, []string{"deploy", "ok"}); err != nil {
		t.Fatal(err)
	}
	// The other plugin takes it.
	clock.set(base)
	if _, err := s.ClaimEventDelivery(ctx, base, time.Minute, []string{"ok"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FinishEventDelivery(ctx, EventKey{"github", "d1", "ok"}, "", retry3); err != nil {
		t.Fatal(err)
	}
	now := base
	for attempt, wantWait := range []time.Duration{time.Second, 2 * time.Second, 0} {
		clock.set(now)
		e, err := s.ClaimEventDelivery(ctx, now, time.Minute, []string{"deploy"})
		if err != nil || e == nil || e.Attempts != attempt+1 {
			t.Fatalf("attempt %d: claim = %+v, %v", attempt+1, e, err)
		}
		got, err := s.FinishEventDelivery(ctx, k, "plugin deploy refused it", retry3)
		if err != nil {
			t.Fatal(err)
		}
		if wantWait == 0 {
			if got.State != EventFailed || got.FinishedAt.IsZero() || got.LastError != "plugin deploy refused it" {
				t.Fatalf("after the last attempt: %+v, want failed", got)
			}
			break
		}
		if got.State != EventPending || !got.NextAt.Equal(now.Add(wantWait)) {
			t.Fatalf("after attempt %d: %+v, want pending until %v", attempt+1, got, now.Add(wantWait))
		}
		// Not due before its backoff ends.
		if early, err := s.ClaimEventDelivery(ctx, now.Add(wantWait-time.Millisecond), time.Minute, []string{"deploy"}); err != nil || early != nil {
			t.Fatalf("claimed %v before its backoff ended", early)
		}
		now = now.Add(wantWait)
	}
	d, err := s.GetDelivery(ctx, "github", "d1")
	if err != nil || d.State != DeliveryFailed || !slices.Equal(d.HandledBy, []string{"ok"}) || d.LastError == "" || d.Payload == nil {
		t.Fatalf("the delivery = %+v, %v; want failed, handled by ok, its payload kept", d, err)
	}
	if list, err := s.ListEventDeliveries(ctx, EventFilter{State: EventFailed}); err != nil || len(list) != 1 || list[0].Plugin != "deploy" {
		t.Fatalf("failed handings = %+v, %v", list, err)
	}
	// A redelivery re-arms the failed plugin only.
	rc, err := s.ReceiveDelivery(ctx, Delivery{Source: "github", ID: "d1", Event: "push", Payload: []byte(`{"again":1}`)}, []string{"deploy", "ok"})
	if err != nil || rc.New || !slices.Equal(rc.Queued, []string{"deploy"}) {
		t.Fatalf("redelivery of a failed delivery: %+v, %v; want deploy queued again", rc, err)
	}
	e, err := s.ClaimEventDelivery(ctx, now.Add(time.Hour), time.Minute, []string{"deploy", "ok"})
	if err != nil || e == nil || e.Plugin != "deploy" || e.Attempts != 1 || string(e.Payload) != `{"again":1}` {
		t.Fatalf("claim after the redelivery = %+v, %v", e, err)
	}
}

func TestWakeMakesABackedOffHandingDueAndResetRecoversRunningOnes(t *testing.T) {
	ctx := context.Background()
	s, clock := newStore(t)
	clock.set(base)
	k := EventKey{Source: "github", DeliveryID: "d1", Plugin: "deploy"}
	if _, err := s.ReceiveDelivery(ctx, Delivery{Source: "github", ID: "d1", Payload: []byte(`{}`)}, []string{"deploy"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimEventDelivery(ctx, base, time.Minute, []string{"deploy"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FinishEventDelivery(ctx, k, "plugin unavailable", Retry{Backoff: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.ClaimEventDelivery(ctx, base.Add(time.Second), time.Minute, []string{"deploy"}); e != nil {
		t.Fatal("claimed during its backoff")
	}
	clock.set(base.Add(time.Second))
	if n, err := s.WakeEventDeliveries(ctx, "deploy"); err != nil || n != 1 {
		t.Fatalf("wake = %d, %v", n, err)
	}
	e, err := s.ClaimEventDelivery(ctx, base.Add(time.Second), time.Hour, []string{"deploy"})
	if err != nil || e == nil || e.Attempts != 2 {
		t.Fatalf("claim after wake = %+v, %v", e, err)
	}
	// The bot died during that attempt: the next one resets it.
	if n, err := s.ResetRunningEventDeliveries(ctx); err != nil || n != 1 {
		t.Fatalf("reset = %d, %v", n, err)
	}
	open, err := s.OpenEventDeliveries(ctx)
	if err != nil || open["deploy"] != 1 {
		t.Fatalf("open = %v, %v", open, err)
	}
	if e, err := s.ClaimEventDelivery(ctx, base.Add(time.Second), time.Hour, []string{"deploy"}); err != nil || e == nil || e.Attempts != 3 {
		t.Fatalf("claim after reset = %+v, %v", e, err)
	}
	if _, err := s.FinishEventDelivery(ctx, k, "", Retry{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FinishEventDelivery(ctx, k, "", Retry{}); err == nil {
		t.Fatal("finished a handing that was not running")
	}
	d, err := s.GetDelivery(ctx, "github", "d1")
	if err != nil || d.State != DeliveryHandled || d.Payload != nil || !slices.Equal(d.HandledBy, []string{"deploy"}) {
		t.Fatalf("delivery = %+v, %v", d, err)
	}
}

func TestADeliveryOfTheOldSchemaIsHandedOnlyToThePluginsThatHadNotTakenIt(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO webhook_deliveries (source, delivery_id, received_at) VALUES ('github', 'old', 1)`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO webhook_deliveries (source, delivery_id, received_at, state, handled_by) VALUES ('github', 'half', 1, 'failed', 'a')`); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, id string
		want     []string
	}{
		{"seen and handled then: dropped", "old", nil},
		{"failed then: handed to the plugin that did not take it", "half", []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := s.ReceiveDelivery(ctx, Delivery{Source: "github", ID: tt.id, Payload: []byte(`{}`)}, []string{"a", "b"})
			if err != nil || rc.New || !slices.Equal(rc.Queued, tt.want) {
				t.Fatalf("receipt = %+v, %v; want queued %v", rc, err, tt.want)
			}
		})
	}
}

func TestFinishingAnUnknownHandingFails(t *testing.T) {
	s, _ := newStore(t)
	if _, err := s.FinishEventDelivery(context.Background(), EventKey{"github", "nope", "x"}, "", Retry{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("finish = %v, want ErrNotFound", err)
	}
}

func TestRetryDelayDoublesUpToItsCap(t *testing.T) {
	r := Retry{Backoff: time.Second, MaxBackoff: 5 * time.Second}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 60: 5 * time.Second} {
		if got := r.Delay(n); got != want {
			t.Errorf("Delay(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestHandingsToAPluginNoLongerConfiguredEndFailed(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if _, err := s.ReceiveDelivery(ctx, Delivery{Source: "github", ID: "d1", Payload: []byte(`{}`)}, []string{"gone", "kept"}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.FailEventDeliveriesExcept(ctx, []string{"kept"}, "the plugin is not configured any more"); err != nil || n != 1 {
		t.Fatalf("failed %d, %v; want 1", n, err)
	}
	failed, err := s.ListEventDeliveries(ctx, EventFilter{State: EventFailed})
	if err != nil || len(failed) != 1 || failed[0].Plugin != "gone" || failed[0].LastError == "" {
		t.Fatalf("failed handings = %+v, %v", failed, err)
	}
	if pending, _ := s.ListEventDeliveries(ctx, EventFilter{State: EventPending}); len(pending) != 1 || pending[0].Plugin != "kept" {
		t.Fatalf("pending handings = %+v", pending)
	}
}

func TestReplicasClaimingAtOnceHandEachDeliveryToEachPluginOnce(t *testing.T) {
	ctx := context.Background()
	rs, _ := replicas(t, 2)
	const n = 30
	for i := range n {
		if _, err := rs[0].ReceiveDelivery(ctx, Delivery{Source: "github", ID: fmt.Sprintf("d%d", i), Event: "push", Payload: []byte(`{}`)}, []string{"a", "b"}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	handed := map[EventKey]int{}
	var wg sync.WaitGroup
	for _, s := range rs {
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for idle := 0; idle < 20; {
					e, err := s.ClaimEventDelivery(ctx, base, time.Minute, []string{"a", "b"})
					if err != nil {
						t.Error(err)
						return
					}
					if e == nil {
						idle++
						time.Sleep(5 * time.Millisecond)
						continue
					}
					idle = 0
					mu.Lock()
					handed[e.EventKey]++
					mu.Unlock()
					if _, err := s.FinishEventDelivery(ctx, e.EventKey, "", Retry{}); err != nil {
						t.Error(err)
					}
				}
			}()
		}
	}
	wg.Wait()
	if len(handed) != 2*n {
		t.Fatalf("%d handings were claimed, want %d", len(handed), 2*n)
	}
	for k, c := range handed {
		if c != 1 {
			t.Errorf("%v was handed %d times", k, c)
		}
	}
}
