package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// serve delivers q's items, one at a time, until q is idle (then it removes
// q and returns) or the outbox is aborted.
func (o *Outbox) serve(q *queue) {
	defer o.workers.Done()
	for {
		o.mu.Lock()
		if o.abort.Err() != nil {
			o.abandonLocked(q)
			o.mu.Unlock()
			return
		}
		now := o.clock.Now()
		it, wait := o.nextLocked(q, now)
		if it == nil {
			if wait.IsZero() {
				// Idle, and every edit interval of the room is over:
				// nothing it knows matters anymore.
				delete(o.queues, q.key)
				o.mu.Unlock()
				return
			}
			o.mu.Unlock()
			o.sleep(q, wait)
			continue
		}
		it.inflight = true
		if it.op == opUpdate {
			// Edits arriving from now on are the next edit.
			it.msg.pending = nil
			it.msg.lastEdit = now
			q.quietAfter(now)
		}
		o.mu.Unlock()

		ref, err := o.call(q, it)

		o.mu.Lock()
		o.settleLocked(q, it, ref, err)
		o.mu.Unlock()
	}
}

// nextLocked returns the first item of q that may be delivered now, or
// else when to look again (zero when q is idle for good).
func (o *Outbox) nextLocked(q *queue, now time.Time) (*item, time.Time) {
	if now.Before(q.blocked) {
		return nil, q.blocked
	}
	var wait time.Time
	for _, it := range q.items {
		if o.closed || !now.Before(it.notBefore) {
			return it, time.Time{}
		}
		if wait.IsZero() || it.notBefore.Before(wait) {
			wait = it.notBefore
		}
	}
	if len(q.items) == 0 && !o.closed && now.Before(q.quiet) {
		return nil, q.quiet
	}
	return nil, wait
}

// sleep waits until t, new work for q, Close or the abort.
func (o *Outbox) sleep(q *queue, t time.Time) {
	c, stop := o.clock.At(t)
	defer stop()
	select {
	case <-c:
	case <-q.wake:
	case <-o.abort.Done():
	}
}

// call hands one part of it to the adapter.
func (o *Outbox) call(q *queue, it *item) (chat.MessageRef, error) {
	ctx, cancel := context.WithTimeout(it.ctx, o.timeout)
	defer cancel()
	stop := context.AfterFunc(o.abort, cancel)
	defer stop()
	out := it.parts[it.done]
	if it.op == opSend {
		// Every attempt at this part carries one key: a post whose answer
		// was lost (the connection cut as the service answered) and that
		// is tried again is then the same post to a service that
		// deduplicates, not a second copy in the room.
		ctx = chat.WithSendKey(ctx, fmt.Sprintf("%s-%d-%d", o.keyPrefix, it.seq, it.done))
		return q.a.Send(ctx, it.to, out)
	}
	return it.to, q.ed.Update(ctx, it.to, out)
}

// settleLocked records how delivering one part of it went.
func (o *Outbox) settleLocked(q *queue, it *item, ref chat.MessageRef, err error) {
	it.inflight = false
	now := o.clock.Now()
	if err == nil {
		it.failures = 0
		if it.op == opUpdate {
			q.edited.Inc()
			o.removeLocked(q, it)
			return
		}
		q.sent.Inc()
		if it.done == 0 {
			it.first = ref
			if q.ed != nil && q.interval > 0 && ref.MessageID != "" {
				// The first edit of a message waits its interval too.
				q.msgs[ref.MessageID] = &message{lastEdit: now}
				q.quietAfter(now)
				q.prune(now)
			}
		}
		it.done++
		if it.done == len(it.parts) {
			o.removeLocked(q, it)
			it.res = outcome{ref: it.first}
			close(it.fin)
			if it.edit != nil && q.ed != nil && it.first.MessageID != "" {
				// Edited (UpdateQueued) while it was being posted: the edit
				// goes behind it, as an edit of what was posted.
				if err := o.updateLocked(it.ctx, q.a, q.ed, it.first, *it.edit, true); err != nil {
					o.log.Error("chat message edit not queued", "adapter", q.key.adapter, "room", q.key.room, "error", err)
				}
			}
		}
		return
	}
	it.failures++
	retry, why := o.classify(it, err)
	if retry && it.failures < o.attempts {
		var rl *chat.RetryAfterError
		delay := o.backoff(it.failures)
		if errors.As(err, &rl) && rl.After > 0 {
			delay = rl.After
		}
		// The whole room waits: the service limits it, not the message,
		// and a later message must not overtake this one.
		q.blocked = now.Add(delay)
		o.m.retried.WithLabelValues(q.key.adapter, why).Inc()
		o.log.Debug("chat delivery will be retried", "adapter", q.key.adapter, "room", q.key.room,
			"op", it.op.String(), "attempt", it.failures, "after", delay, "error", err)
		if it.op == opUpdate {
			if it.msg.pending != nil {
				// A later edit of the message is waiting: this one is
				// stale now.
				o.removeLocked(q, it)
				q.coalesced.Inc()
			} else {
				it.msg.pending = it
			}
		}
		return
	}
	reason := why
	if retry {
		reason = reasonRetries
	}
	o.failLocked(q, it, reason, err)
}

// classify says whether err is worth another attempt, and names it: a
// retry reason (rate_limited, transient) or a failure reason.
func (o *Outbox) classify(it *item, err error) (retry bool, reason string) {
	var rl *chat.RetryAfterError
	var retryable interface{ Retryable() bool }
	switch {
	case o.abort.Err() != nil:
		return false, reasonShutdown
	case it.ctx.Err() != nil:
		return false, reasonCanceled
	case errors.As(err, &rl):
		return true, "rate_limited"
	case errors.Is(err, chat.ErrUnknownRoom), errors.Is(err, chat.ErrUnknownUser), errors.Is(err, chat.ErrUnauthorized), errors.Is(err, chat.ErrRefused),
		errors.Is(err, context.Canceled):
		return false, reasonPermanent
	case errors.As(err, &retryable):
		// slack-go's StatusCodeError: 5xx and 429 are, 4xx are not.
		return retryable.Retryable(), pick(retryable.Retryable(), "transient", reasonPermanent)
	}
	// Network trouble, timeouts, 5xx: most of what an adapter returns
	// passes by itself, and giving up on what would have passed loses a
	// message. (net.Error's Temporary is no guide: a refused connection,
	// while a server restarts, says false.) An adapter marks a refusal for
	// good with chat.ErrUnknownRoom or an error whose Retryable says false.
	return true, "transient"
}

func pick(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// failLocked gives it up: logged, counted, its sender told.
func (o *Outbox) failLocked(q *queue, it *item, reason string, err error) {
	o.removeLocked(q, it)
	o.m.failed.WithLabelValues(q.key.adapter, reason).Inc()
	attrs := []any{"adapter", q.key.adapter, "room", q.key.room, "op", it.op.String(), "reason", reason, "attempts", it.failures, "error", err}
	if it.op == opUpdate {
		attrs = append(attrs, "message", it.to.MessageID)
	}
	if len(it.parts) > 1 {
		attrs = append(attrs, "parts", len(it.parts), "parts_sent", it.done)
	}
	o.log.Error("chat message not delivered", attrs...)
	if it.fin != nil {
		if it.done > 0 {
			err = fmt.Errorf("sent %d of %d parts: %w", it.done, len(it.parts), err)
		}
		it.res = outcome{ref: it.first, err: err}
		close(it.fin)
	}
}

// abandonLocked gives up everything left in q: Close's deadline passed.
func (o *Outbox) abandonLocked(q *queue) {
	for len(q.items) > 0 {
		o.failLocked(q, q.items[0], reasonShutdown, ErrClosed)
	}
	delete(o.queues, q.key)
}

// quietAfter notes an edit or post at now whose interval must hold.
func (q *queue) quietAfter(now time.Time) {
	if t := now.Add(q.interval); t.After(q.quiet) {
		q.quiet = t
	}
}

// prune forgets messages whose interval is over and that wait for no edit,
// once there are twice as many as after the last pruning: the messages a
// queue remembers are bounded by those edited within one interval, at an
// amortised constant cost.
func (q *queue) prune(now time.Time) {
	if len(q.msgs) < q.pruneAt {
		return
	}
	defer func() { q.pruneAt = max(2*len(q.msgs), 64) }()
	for id, m := range q.msgs {
		if m.pending == nil && !now.Before(m.lastEdit.Add(q.interval)) {
			delete(q.msgs, id)
		}
	}
}
