package events

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// Store is what the queue keeps its deliveries in: *store.Store.
type Store interface {
	ReceiveDelivery(ctx context.Context, d store.Delivery, plugins []string) (store.Receipt, error)
	ClaimEventDelivery(ctx context.Context, now time.Time, lease time.Duration, plugins []string) (*store.EventDelivery, error)
	FinishEventDelivery(ctx context.Context, k store.EventKey, failure string, retry store.Retry) (store.EventDelivery, error)
	WakeEventDeliveries(ctx context.Context, plugin string) (int, error)
	ResetRunningEventDeliveries(ctx context.Context) (int, error)
	FailEventDeliveriesExcept(ctx context.Context, plugins []string, reason string) (int, error)
	NextEventDue(ctx context.Context, plugins []string) (time.Time, bool, error)
	OpenEventDeliveries(ctx context.Context) (map[string]int, error)
}

// Deliverer hands one event to one plugin and says whether it took it: nil
// when it did, a *RefusedError when it answered that it would not, any other
// error when it could not be asked (down, crashed, timed out).
type Deliverer interface {
	DeliverEvent(ctx context.Context, plugin string, ev *pluginv1.WebhookEvent) error
}

// RefusedError is a plugin's refusal of an event it was handed (a payload it
// could not decode, say).
type RefusedError struct {
	// Plugin is the plugin that refused the event.
	Plugin string
	// Reason is the plugin's own words.
	Reason string
}

// Error says which plugin refused the event, and why.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("plugin %s refused the event: %s", e.Plugin, e.Reason)
}

// Outcomes of one attempt, as the metrics and the audit log name them.
const (
	OutcomeHandled  = "handled"
	OutcomeRetrying = "retrying"
	OutcomeFailed   = "failed"
)

// Options configure a Queue.
type Options struct {
	// Store keeps the deliveries. Required.
	Store Store
	// Deliver hands an event to a plugin. Required.
	Deliver Deliverer
	// Subscribers returns the plugins subscribed to an event type
	// ("github:push"): those whose manifest, or last manifest while they
	// restart, lists it or its source ("github:*"). Required.
	Subscribers func(eventType string) []string
	// Ready returns the plugins running now: only they are handed events.
	// Required.
	Ready func() []string
	// Configured, when set, returns every configured plugin: at start, the
	// open handings to any other plugin (one removed from the config) end
	// failed, rather than wait for ever.
	Configured func() []string
	// Shared says that other replicas share the store: then a handing
	// left running by a process that died is taken again only once its
	// claim lapsed, not at start (it may be another live replica's).
	Shared bool
	// Retry says how often and how far apart a failing handing is tried
	// again; zero fields take store.DefaultRetry's.
	Retry store.Retry
	// Workers is how many handings run at once; default 16. A handing
	// mostly waits (on the plugin, on its calls to the host), so a burst
	// of webhooks, a CI run's jobs reporting at once say, is handed on at
	// once rather than queued behind a few slow ones.
	Workers int
	// Timeout bounds one attempt; default 30s.
	Timeout time.Duration
	// Poll is the longest the dispatcher sleeps between looks at the store
	// when nothing wakes it; default 30s.
	Poll   time.Duration
	Logger *slog.Logger
	// Audit, when set, records each attempt in the audit log.
	Audit func(store.AuditEntry)
	// Delivered counts attempts by plugin and outcome (OutcomeHandled,
	// OutcomeRetrying, OutcomeFailed); Pending is the number of handings
	// not ended. Either may be nil.
	Delivered *prometheus.CounterVec
	Pending   prometheus.Gauge
}

// Queue receives deliveries and hands them to their plugins. Create it with
// New; Receive may be called before Run.
type Queue struct {
	o    Options
	log  *slog.Logger
	wake chan struct{}
}

// New returns a queue; nothing is handed to plugins until Run.
func New(o Options) *Queue {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 30 * time.Second
	}
	o.Retry = o.Retry.WithDefaults()
	return &Queue{o: o, log: o.Logger, wake: make(chan struct{}, 1)}
}

// Receive stores a verified delivery with a pending handing for each
// subscribed plugin, and wakes the dispatcher. Once it returns without
// error, the delivery can be acknowledged: it reaches each plugin, or ends
// failed visibly. See store.Store.ReceiveDelivery for redeliveries.
func (q *Queue) Receive(ctx context.Context, d store.Delivery) (store.Receipt, error) {
	rc, err := q.o.Store.ReceiveDelivery(ctx, d, q.o.Subscribers(d.Source+":"+d.Event))
	if err != nil {
		return store.Receipt{}, err
	}
	if len(rc.Queued) > 0 {
		if q.o.Pending != nil {
			q.o.Pending.Add(float64(len(rc.Queued)))
		}
		q.poke()
	}
	return rc, nil
}

// Wake says that plugin is running again: what it missed is handed to it
// now, not once a backoff ends. It does not block.
func (q *Queue) Wake(plugin string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := q.o.Store.WakeEventDeliveries(ctx, plugin); err != nil {
			q.log.Error("wake the event deliveries of a plugin that is back", "plugin", plugin, "error", err)
		}
		q.poke()
	}()
}

func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run hands due deliveries to their running plugins until ctx ends, then
// waits for the attempts in flight. An attempt cut short by ctx is not
// counted as failed: it stays running in the store, and the next Run hands
// it again: at start, a queue whose store is not Shared takes every running
// handing for one its predecessor lost; replicas sharing a store each run
// a queue, and take a handing another left running once its claim lapsed.
func (q *Queue) Run(ctx context.Context) {
	if !q.o.Shared {
		if n, err := q.o.Store.ResetRunningEventDeliveries(ctx); err != nil {
			q.log.Error("recover the event deliveries of the previous run", "error", err)
		} else if n > 0 {
			q.log.Warn("event deliveries interrupted by restart are handed again", "deliveries", n)
		}
	}
	if q.o.Configured != nil {
		if n, err := q.o.Store.FailEventDeliveriesExcept(ctx, q.o.Configured(), "the plugin is not configured any more"); err != nil {
			q.log.Error("end the event deliveries of plugins not configured", "error", err)
		} else if n > 0 {
			q.log.Warn("event deliveries to plugins not configured any more ended failed", "deliveries", n)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, q.o.Workers)
	lease := q.o.Timeout + 30*time.Second
	var counted time.Time
	for {
		// While handings run, the gauge is counted at most every
		// countEvery, not at each of the loop's wakes (two a delivery): a
		// count is a query. With none running it is counted at once, so it
		// is exact as soon as a burst is handled: the last handing to end
		// wakes the loop.
		if len(slots) == 0 || time.Since(counted) >= countEvery {
			q.countPending(ctx)
			counted = time.Now()
		}
		ready := q.o.Ready()
		busy := false
	claim:
		for {
			select {
			case slots <- struct{}{}:
			default:
				busy = true // a finished attempt wakes the loop
				break claim
			}
			e, err := q.o.Store.ClaimEventDelivery(ctx, time.Now(), lease, ready)
			if err != nil || e == nil {
				<-slots
				if err != nil && ctx.Err() == nil {
					q.log.Error("claim an event delivery", "error", err)
				}
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots; q.poke() }()
				q.attempt(ctx, e)
			}()
		}
		wait := q.o.Poll
		if !busy {
			if next, ok, err := q.o.Store.NextEventDue(ctx, ready); err == nil && ok {
				wait = min(wait, max(time.Until(next), time.Millisecond))
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-q.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// countEvery is how often, at most, countPending counts.
const countEvery = time.Second

// countPending sets the gauge of handings not ended.
func (q *Queue) countPending(ctx context.Context) {
	if q.o.Pending == nil {
		return
	}
	open, err := q.o.Store.OpenEventDeliveries(ctx)
	if err != nil {
		return
	}
	n := 0
	for _, c := range open {
		n += c
	}
	q.o.Pending.Set(float64(n))
}

// attempt hands e to its plugin once and records how it went.
func (q *Queue) attempt(ctx context.Context, e *store.EventDelivery) {
	ev := &pluginv1.WebhookEvent{
		Type: e.Source + ":" + e.Event, DeliveryId: e.DeliveryID, Payload: e.Payload, Headers: e.Headers,
		Attempt: uint32(e.Attempts),
	}
	log := q.log.With("plugin", e.Plugin, "event", ev.Type, "delivery", e.DeliveryID, "attempt", e.Attempts)
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, q.o.Timeout)
	err := q.o.Deliver.DeliverEvent(actx, e.Plugin, ev)
	cancel()
	if err != nil && ctx.Err() != nil {
		log.Info("event delivery cut short by shutdown; the next start hands it again")
		return
	}
	failure := ""
	if err != nil {
		failure = strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	got, ferr := q.o.Store.FinishEventDelivery(context.WithoutCancel(ctx), e.EventKey, failure, q.o.Retry)
	if ferr != nil {
		log.Error("record the outcome of an event delivery", "error", ferr, "failure", failure)
		return
	}
	outcome := OutcomeHandled
	switch got.State {
	case store.EventPending:
		outcome = OutcomeRetrying
		log.Warn("event delivery failed; it is tried again", "error", failure, "next", got.NextAt)
	case store.EventFailed:
		outcome = OutcomeFailed
		log.Error("event delivery failed for good", "error", failure, "attempts", got.Attempts)
	default:
		log.Info("event delivered")
	}
	if q.o.Delivered != nil {
		q.o.Delivered.WithLabelValues(e.Plugin, outcome).Inc()
	}
	if q.o.Audit != nil {
		auditOutcome := outcome
		if outcome == OutcomeHandled {
			auditOutcome = "ok"
		}
		q.o.Audit(store.AuditEntry{
			Time: start, Adapter: "webhook", Room: e.Source, Plugin: e.Plugin, Command: ev.Type,
			Text:    fmt.Sprintf("%s delivery %s, attempt %s", ev.Type, e.DeliveryID, strconv.Itoa(e.Attempts)),
			Outcome: auditOutcome, Detail: failure, Duration: time.Since(start),
			Via: "webhook " + e.Source + ":" + e.DeliveryID,
		})
	}
}
