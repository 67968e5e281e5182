package outbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chimaops/chima/core/chat"
)

// Defaults of Options.
const (
	DefaultMinEditInterval = time.Second
	DefaultMaxPending      = 1000
	DefaultMaxPendingTotal = 10000
	DefaultMaxAttempts     = 5
	DefaultCallTimeout     = 30 * time.Second
)

var (
	// ErrFull is returned when a queue, or the outbox as a whole, holds
	// as many messages as it may: the service is too slow for what is
	// sent to it. Nothing was queued.
	ErrFull = errors.New("outbox full")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("outbox closed")
	// ErrCannotEdit is returned by Update for an adapter without
	// chat.Editor.
	ErrCannotEdit = errors.New("adapter cannot edit messages")
	// ErrNotPosted is returned by UpdateQueued for a message that was
	// given up: there is nothing to edit.
	ErrNotPosted = errors.New("the message was not posted")
)

// abortGrace is how long Close, past its deadline, waits for calls in
// flight to end.
const abortGrace = 5 * time.Second

// Options configure an Outbox. The zero value works.
type Options struct {
	// Logger logs what could not be delivered; nil discards.
	Logger *slog.Logger
	// Registerer takes the outbox's metrics (chima_outbox_*); nil
	// registers them nowhere.
	Registerer prometheus.Registerer
	// DefaultMinEditInterval is the least time between two edits of one
	// message, and between a message's post and its first edit, for
	// adapters MinEditInterval does not name; 0 is
	// DefaultMinEditInterval (1 s), negative is no interval.
	DefaultMinEditInterval time.Duration
	// MinEditInterval sets the edit interval of adapters by name; 0 (or
	// less) is none: every edit goes out as soon as the room is free.
	MinEditInterval map[string]time.Duration
	// MaxPending bounds the messages and edits waiting in one queue (one
	// room of one adapter); default DefaultMaxPending.
	MaxPending int
	// MaxPendingTotal bounds them across every queue; default
	// DefaultMaxPendingTotal.
	MaxPendingTotal int
	// MaxAttempts is how often a message or edit is tried before it is
	// given up (logged and counted); default DefaultMaxAttempts.
	MaxAttempts int
	// Backoff is the wait after the n-th failed attempt (n ≥ 1) of a
	// transient error, or of a rate limit that gave no wait; default
	// 250 ms doubling up to 8 s.
	Backoff func(n int) time.Duration
	// CallTimeout bounds one call of an adapter; default
	// DefaultCallTimeout.
	CallTimeout time.Duration
	// Clock is the time the outbox goes by; nil is the real clock.
	Clock Clock
}

// Outbox delivers every message the bot sends or edits. It keeps a queue
// per (adapter, room), served by a goroutine of its own while the queue has
// work, so that a slow or rate-limited room never holds up another room or
// adapter, nor the caller:
//
//   - A Retry-After (chat.RetryAfterError) from the service holds its room
//     for that long; transient errors back off the same way. After
//     MaxAttempts, or at once on a permanent error (chat.ErrUnknownRoom,
//     chat.ErrUnknownUser, chat.ErrUnauthorized, chat.ErrRefused, an error whose Retryable
//     method says false), a message is given up: logged, counted in
//     chima_outbox_failed_total and reported to its sender. Any other
//     error counts as transient.
//   - Edits of one message coalesce: an edit waits until MinEditInterval
//     has passed since the message's last post or edit, and an edit that
//     arrives while one waits replaces it. The last one is always sent.
//   - Sends of a room go out in the order they were queued; an edit is
//     queued only once its message was posted, so it never overtakes it.
//   - Memory is bounded: past MaxPending items in a queue, or
//     MaxPendingTotal in all, Send and Update fail with ErrFull (logged
//     and counted). A coalesced edit takes no room of its own.
//   - A message longer than chat.CapabilitiesOf(a).MaxText is split into
//     several; an edit is truncated, with a note of how much was cut.
//
// An Outbox is safe for concurrent use.
type Outbox struct {
	log        *slog.Logger
	m          *metrics
	clock      Clock
	interval   time.Duration
	intervals  map[string]time.Duration
	maxPending int
	maxTotal   int
	attempts   int
	backoff    func(int) time.Duration
	timeout    time.Duration

	// abort ends waits and calls in flight when Close's deadline passes.
	abort     context.Context
	abortNow  context.CancelFunc
	abortOnce sync.Once
	workers   sync.WaitGroup

	// keyPrefix and seq make each Send's chat.SendKey: unique to this
	// outbox, the same across the attempts of one part.
	keyPrefix string
	seq       atomic.Uint64

	mu       sync.Mutex
	queues   map[qkey]*queue
	pending  int
	closed   bool
	fullSaid bool // the outbox-wide cap was logged since it was last below it
}

type qkey struct{ adapter, room string }

// queue is one room's work.
type queue struct {
	key      qkey
	a        chat.Adapter
	ed       chat.Editor // nil when a cannot edit
	interval time.Duration
	items    []*item // in the order queued
	// msgs holds, by message id, the coalescing state of messages
	// posted or edited within the last interval, or with an edit
	// waiting.
	msgs    map[string]*message
	pruneAt int // len(msgs) at which to prune it next
	// blocked is when the room may be tried again after a rate limit or
	// a transient error.
	blocked time.Time
	// quiet is when the last edit interval of the room's messages ends:
	// an idle queue lingers until then, so that its intervals hold.
	quiet    time.Time
	wake     chan struct{}
	fullSaid bool

	sent, edited, coalesced prometheus.Counter
	pending                 prometheus.Gauge
}

type op uint8

const (
	opSend op = iota
	opUpdate
)

func (o op) String() string {
	if o == opUpdate {
		return "update"
	}
	return "send"
}

// item is one Send (one or more parts) or one Update waiting in a queue.
type item struct {
	op  op
	ctx context.Context
	// to is where a Send goes, or the message an Update edits.
	to    chat.MessageRef
	parts []chat.Output
	done  int             // parts posted
	first chat.MessageRef // the first part's reference
	// failures counts the failed attempts of the current part.
	failures  int
	notBefore time.Time
	inflight  bool
	q         *queue
	msg       *message // an Update's message
	// seq numbers a Send, for its chat.SendKey.
	seq uint64
	// fin is closed, and res set, when a Send is answered: posted or
	// given up. nil for an Update.
	fin chan struct{}
	res outcome
	// edit is the latest edit asked (UpdateQueued) of a Send while it was
	// being posted: it is queued as an Update once the Send is posted.
	edit *chat.Output
}

type outcome struct {
	ref chat.MessageRef
	err error
}

// message is the coalescing state of one message.
type message struct {
	pending  *item // the edit waiting to be sent, if any
	lastEdit time.Time
}

// New returns an Outbox. Nothing runs until something is sent.
func New(o Options) *Outbox {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DefaultMinEditInterval == 0 {
		o.DefaultMinEditInterval = DefaultMinEditInterval
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.MaxPendingTotal <= 0 {
		o.MaxPendingTotal = DefaultMaxPendingTotal
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.Backoff == nil {
		o.Backoff = defaultBackoff
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	abort, abortNow := context.WithCancel(context.Background())
	var prefix [6]byte
	_, _ = rand.Read(prefix[:])
	return &Outbox{
		keyPrefix: "chima-" + hex.EncodeToString(prefix[:]),
		log:       o.Logger, m: newMetrics(o.Registerer), clock: o.Clock,
		interval: o.DefaultMinEditInterval, intervals: o.MinEditInterval,
		maxPending: o.MaxPending, maxTotal: o.MaxPendingTotal, attempts: o.MaxAttempts,
		backoff: o.Backoff, timeout: o.CallTimeout,
		abort: abort, abortNow: abortNow,
		queues: map[qkey]*queue{},
	}
}

func defaultBackoff(n int) time.Duration {
	d := 250 * time.Millisecond << min(n-1, 5)
	return min(d, 8*time.Second)
}

// Send posts out through a to to.Room (in thread to.ThreadID when set) and
// returns the new message's reference once the service has answered, or
// ctx's error when ctx ends first (a message not yet handed to the service
// is then withdrawn). A message longer than the adapter's MaxText goes out
// as several, one after another; the reference is the first one's. The
// error is ErrFull or ErrClosed when nothing was queued, else what the
// adapter said last.
func (o *Outbox) Send(ctx context.Context, a chat.Adapter, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	it, err := o.queueSend(ctx, a, to, out)
	if err != nil {
		return chat.MessageRef{}, err
	}
	select {
	case <-it.fin:
		return it.res.ref, it.res.err
	case <-ctx.Done():
	}
	if o.withdraw(it) {
		return chat.MessageRef{}, ctx.Err()
	}
	// It was being delivered: its answer is the better one.
	<-it.fin
	return it.res.ref, it.res.err
}

// Ticket is a message that Queue took: its reference once it is posted,
// and the way to edit it before then (UpdateQueued).
type Ticket struct {
	a  chat.Adapter
	it *item
}

// Done is closed once the message is posted or given up.
func (t *Ticket) Done() <-chan struct{} { return t.it.fin }

// Ref waits until the message is posted and returns its reference (the
// first part's), or what the adapter said last when it was given up, or
// ctx's error when ctx ends first; the message stays queued then.
func (t *Ticket) Ref(ctx context.Context) (chat.MessageRef, error) {
	select {
	case <-t.it.fin:
		return t.it.res.ref, t.it.res.err
	case <-ctx.Done():
		return chat.MessageRef{}, ctx.Err()
	}
}

// Queue queues out for a's room to.Room as Send does, and returns as soon as
// it is queued: a caller that does not need the reference at once (a
// command's replies) is not held while the room waits out a rate limit.
// The room's order holds: what is queued later goes out later. ctx's values
// go along; its end does not withdraw the message. The error is ErrFull or
// ErrClosed, and nothing was queued.
func (o *Outbox) Queue(ctx context.Context, a chat.Adapter, to chat.MessageRef, out chat.Output) (*Ticket, error) {
	it, err := o.queueSend(context.WithoutCancel(ctx), a, to, out)
	if err != nil {
		return nil, err
	}
	return &Ticket{a: a, it: it}, nil
}

func (o *Outbox) queueSend(ctx context.Context, a chat.Adapter, to chat.MessageRef, out chat.Output) (*item, error) {
	parts := split(out, chat.CapabilitiesOf(a).MaxText)
	if len(parts) > 1 {
		o.m.reshaped.WithLabelValues(a.Name(), "split").Inc()
	}
	it := &item{op: opSend, ctx: ctx, to: to, parts: parts, fin: make(chan struct{}), seq: o.seq.Add(1)}
	if err := o.enqueue(a, to.Room, it); err != nil {
		return nil, err
	}
	return it, nil
}

// UpdateQueued replaces the content of t's message with out, as Update
// does, whether or not the message is posted yet: one still waiting in its
// queue is posted with out instead (nothing to edit, and no rate limit
// spent on it); one being posted is edited once it is; one posted is
// edited. It returns at once. The error says why nothing will change: the
// adapter cannot edit, the message was given up, or Update's errors.
func (o *Outbox) UpdateQueued(ctx context.Context, t *Ticket, out chat.Output) error {
	if _, ok := t.a.(chat.Editor); !ok {
		return fmt.Errorf("update %s: %w", t.it.to, ErrCannotEdit)
	}
	it := t.it
	o.mu.Lock()
	select {
	case <-it.fin:
		o.mu.Unlock()
		if it.res.err != nil {
			return fmt.Errorf("update %s: %w: %w", it.to, ErrNotPosted, it.res.err)
		}
		return o.Update(ctx, t.a, it.res.ref, out)
	default:
	}
	defer o.mu.Unlock()
	q := it.q
	q.coalesced.Inc()
	if !it.inflight && it.done == 0 {
		// Not handed to the service yet: post the latest content.
		it.parts = split(out, chat.CapabilitiesOf(t.a).MaxText)
		return nil
	}
	out = truncate(out, chat.CapabilitiesOf(t.a).MaxText)
	it.edit = &out
	return nil
}

// Update replaces the content of the message ref, which a's Send returned,
// with out. It returns once the edit is queued, or merged into an edit of
// ref still waiting (the later content wins); the service is asked later,
// no sooner than MinEditInterval after the message's last post or edit, and
// what goes wrong then is logged and counted. An edit longer than the
// adapter's MaxText is truncated. ctx's values go along; its end does not
// withdraw the edit.
func (o *Outbox) Update(ctx context.Context, a chat.Adapter, ref chat.MessageRef, out chat.Output) error {
	ed, ok := a.(chat.Editor)
	if !ok {
		return fmt.Errorf("update %s: %w", ref, ErrCannotEdit)
	}
	if ref.MessageID == "" {
		return fmt.Errorf("update %s: no message id", ref)
	}
	if t := truncate(out, chat.CapabilitiesOf(a).MaxText); !sameText(t, out) {
		o.m.reshaped.WithLabelValues(a.Name(), "truncated").Inc()
		out = t
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.updateLocked(ctx, a, ed, ref, out, false)
}

// updateLocked queues an edit of ref, or merges it into the edit of ref
// still waiting. closing lets an edit in while Close drains the outbox: one
// asked before Close, of a message posted since.
func (o *Outbox) updateLocked(ctx context.Context, a chat.Adapter, ed chat.Editor, ref chat.MessageRef, out chat.Output, closing bool) error {
	if o.closed && !closing {
		return o.refuseLocked(a.Name(), ref, opUpdate, ErrClosed)
	}
	q := o.queueLocked(a, ed, ref.Room)
	m := q.msgs[ref.MessageID]
	if m != nil && m.pending != nil {
		m.pending.to, m.pending.parts[0] = ref, out
		q.coalesced.Inc()
		return nil
	}
	it := &item{op: opUpdate, ctx: context.WithoutCancel(ctx), to: ref, parts: []chat.Output{out}}
	if err := o.admitLocked(q, it); err != nil {
		return err
	}
	if m == nil {
		q.prune(o.clock.Now())
		m = &message{}
		q.msgs[ref.MessageID] = m
	}
	m.pending, it.msg = it, m
	if !m.lastEdit.IsZero() {
		it.notBefore = m.lastEdit.Add(q.interval)
	}
	return nil
}

// sameText reports whether truncate left out as it was.
func sameText(a, b chat.Output) bool {
	return a.Text == b.Text && a.Code == b.Code && a.Title == b.Title && a.Fallback == b.Fallback
}

// Pending returns how many messages and edits wait in the outbox or are
// being delivered.
func (o *Outbox) Pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pending
}

// Close stops taking messages and delivers what waits, edits without
// waiting for their interval, rate limits still honoured. When ctx ends
// first, what is left is given up (logged, counted with reason shutdown,
// its senders told) and Close returns an error saying how much. Close may
// be called more than once.
func (o *Outbox) Close(ctx context.Context) error {
	o.mu.Lock()
	o.closed = true
	for _, q := range o.queues {
		q.poke()
	}
	o.mu.Unlock()
	done := make(chan struct{})
	go func() { o.workers.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	o.mu.Lock()
	left := o.pending
	o.mu.Unlock()
	o.abortOnce.Do(o.abortNow)
	// Calls in flight end with their context; an adapter that ignores it
	// must not hold up the bot's exit for good.
	select {
	case <-done:
	case <-time.After(abortGrace):
	}
	return fmt.Errorf("outbox: %d messages or edits not delivered before the deadline: %w", left, ctx.Err())
}

// enqueue queues a Send's item.
func (o *Outbox) enqueue(a chat.Adapter, room string, it *item) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return o.refuseLocked(a.Name(), it.to, it.op, ErrClosed)
	}
	ed, _ := a.(chat.Editor)
	return o.admitLocked(o.queueLocked(a, ed, room), it)
}

// admitLocked appends it to q within the caps, and wakes q's goroutine or
// starts one.
func (o *Outbox) admitLocked(q *queue, it *item) error {
	if len(q.items) >= o.maxPending || o.pending >= o.maxTotal {
		if !q.fullSaid && len(q.items) >= o.maxPending {
			q.fullSaid = true
			o.log.Error("chat outbox queue full: refusing messages until it drains; the service is slower than what is sent to it",
				"adapter", q.key.adapter, "room", q.key.room, "pending", len(q.items), "max_pending", o.maxPending)
		}
		if !o.fullSaid && o.pending >= o.maxTotal {
			o.fullSaid = true
			o.log.Error("chat outbox full: refusing messages until it drains", "pending", o.pending, "max_pending_total", o.maxTotal)
		}
		o.m.failed.WithLabelValues(q.key.adapter, reasonFull).Inc()
		return fmt.Errorf("%s %s: %w", it.op, q.key.room, ErrFull)
	}
	it.q = q
	q.items = append(q.items, it)
	o.pending++
	q.pending.Inc()
	q.poke()
	return nil
}

// refuseLocked counts and returns err for something not queued.
func (o *Outbox) refuseLocked(adapter string, ref chat.MessageRef, op op, err error) error {
	o.m.failed.WithLabelValues(adapter, reasonClosed).Inc()
	o.log.Error("chat message not delivered", "adapter", adapter, "room", ref.Room, "op", op.String(), "error", err)
	return fmt.Errorf("%s %s: %w", op, ref.Room, err)
}

// queueLocked returns the queue of a's room, making it and starting its
// goroutine when there is none.
func (o *Outbox) queueLocked(a chat.Adapter, ed chat.Editor, room string) *queue {
	k := qkey{a.Name(), room}
	if q := o.queues[k]; q != nil {
		return q
	}
	interval, ok := o.intervals[k.adapter]
	if !ok {
		interval = o.interval
	}
	q := &queue{
		key: k, a: a, ed: ed, interval: max(interval, 0),
		msgs: map[string]*message{}, wake: make(chan struct{}, 1),
		sent:      o.m.sent.WithLabelValues(k.adapter, opSend.String()),
		edited:    o.m.sent.WithLabelValues(k.adapter, opUpdate.String()),
		coalesced: o.m.coalesced.WithLabelValues(k.adapter),
		pending:   o.m.pending.WithLabelValues(k.adapter),
	}
	o.queues[k] = q
	o.workers.Add(1)
	go o.serve(q)
	return q
}

func (q *queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// withdraw takes a Send's item out of its queue unless it is being
// delivered, and reports whether it did.
func (o *Outbox) withdraw(it *item) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if it.inflight {
		return false
	}
	if q := it.q; slices.Contains(q.items, it) {
		o.removeLocked(q, it)
		o.m.failed.WithLabelValues(q.key.adapter, reasonCanceled).Inc()
		o.log.Warn("chat message withdrawn: its sender stopped waiting", "adapter", q.key.adapter, "room", q.key.room,
			"parts_sent", it.done, "error", it.ctx.Err())
		return true
	}
	// Already answered: the result is in it.res.
	return false
}

func (o *Outbox) removeLocked(q *queue, it *item) {
	if i := slices.Index(q.items, it); i >= 0 {
		q.items = slices.Delete(q.items, i, i+1)
		o.pending--
		q.pending.Dec()
		if len(q.items) < o.maxPending/2 {
			q.fullSaid = false
		}
		if o.pending < o.maxTotal/2 {
			o.fullSaid = false
		}
	}
	if it.msg != nil && it.msg.pending == it {
		it.msg.pending = nil
	}
}
