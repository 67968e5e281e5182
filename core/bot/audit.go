package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chimaops/chima/core/redact"
	"github.com/chimaops/chima/core/store"
)

// auditWriter records audit entries off the dispatch path, in batches: a
// command's reply never waits for a disk write, and nothing is dropped (the
// queue is bounded and blocks when full, slowing dispatch instead).
//
// An allowed command is audited twice, in one row: its decision (outcome
// "running") before the plugin is called, which the command waits for, and
// its outcome after, which nobody waits for. Entries whose decision ran
// nothing (denied, rejected, help) are one final write, not waited for.
type auditWriter struct {
	st       *store.Store
	log      *slog.Logger
	red      *redact.Redactor
	failures prometheus.Counter
	ch       chan auditItem
	done     chan struct{}
	once     sync.Once
	// mu guards closed: entries may come after close (a plugin's Host
	// call during shutdown, once the jobs have stopped); they are dropped
	// and logged, never sent on the closed channel.
	mu     sync.RWMutex
	closed bool
	// failing holds the error of the last write while writes fail, nil
	// once one succeeds again (see Bot.AuditHealth).
	failing atomic.Pointer[error]
}

// auditItem is one thing to write: a final entry, a decision someone waits
// for (reply is set), or the outcome of a decision recorded earlier.
type auditItem struct {
	entry   store.AuditEntry
	reply   chan decisionResult // a decision: wait for its id
	outcome *store.AuditOutcome // an outcome: update entry outcome.ID
}

type decisionResult struct {
	id  int64
	err error
}

func newAuditWriter(st *store.Store, log *slog.Logger, red *redact.Redactor, failures prometheus.Counter) *auditWriter {
	w := &auditWriter{st: st, log: log, red: red, failures: failures, ch: make(chan auditItem, 4096), done: make(chan struct{})}
	go w.loop()
	return w
}

// record queues a final entry.
func (w *auditWriter) record(e store.AuditEntry) { w.send(auditItem{entry: e}) }

// send queues it, unless the writer is closed: then it is dropped, counted
// and logged, and send reports false.
func (w *auditWriter) send(it auditItem) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.failures.Add(1)
		w.log.Warn("audit entry after the audit log was closed, at shutdown; dropped", "plugin", it.entry.Plugin, "command", it.entry.Command, "outcome", it.entry.Outcome)
		return false
	}
	w.ch <- it
	return true
}

// decide writes e, the decision to run a command, and returns its entry's
// id once it is committed: the caller runs the command only then, so a
// bot that dies mid-command leaves the decision in the log. Decisions of
// concurrent commands share one commit. Without a store it returns 0.
func (w *auditWriter) decide(e store.AuditEntry) (int64, error) {
	if w.st == nil {
		return 0, nil
	}
	reply := make(chan decisionResult, 1)
	if !w.send(auditItem{entry: e, reply: reply}) {
		return 0, errors.New("the audit log is closed: the bot is stopping")
	}
	r := <-reply
	return r.id, r.err
}

// finish queues the outcome of the decision recorded as entry id; id 0 (no
// store, or the decision failed to write) records nothing.
func (w *auditWriter) finish(id int64, outcome, detail string, d time.Duration) {
	if id == 0 {
		return
	}
	w.send(auditItem{outcome: &store.AuditOutcome{ID: id, Outcome: outcome, Detail: detail, Duration: d}})
}

// auditLinger is how long the writer gathers entries before a write: group
// commit. A write costs about the same for 1 entry as for 100, and nobody
// waits on the audit log, so a short delay buys a lot of throughput. A
// decision, which its command waits for, is written without lingering:
// what queued behind the write in progress shares the next commit.
const auditLinger = 20 * time.Millisecond

func (w *auditWriter) loop() {
	defer close(w.done)
	batch := make([]auditItem, 0, 512)
	timer := time.NewTimer(auditLinger)
	timer.Stop()
	for it := range w.ch {
		batch = append(batch[:0], it)
		waited := it.reply != nil
		timer.Reset(auditLinger)
	gather:
		for len(batch) < cap(batch) {
			if waited {
				// Take what is queued already, and no more.
				select {
				case it, ok := <-w.ch:
					if !ok {
						break gather
					}
					batch = append(batch, it)
					continue
				default:
					break gather
				}
			}
			select {
			case it, ok := <-w.ch:
				if !ok {
					break gather
				}
				batch = append(batch, it)
				waited = waited || it.reply != nil
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		w.write(batch)
	}
}

// write writes a batch in one transaction: decisions, final entries, outcomes (an
// outcome's decision was committed in an earlier batch: its command waited
// for it). A failed write is counted, logged at error level, and makes
// AuditHealth report it until a write succeeds; a decision that failed
// tells its command, which then does not run.
func (w *auditWriter) write(batch []auditItem) {
	if w.st == nil {
		for _, it := range batch {
			if it.reply != nil {
				it.reply <- decisionResult{}
			}
		}
		return
	}
	ctx := context.Background()
	var finals, decisions []store.AuditEntry
	var replies []chan decisionResult
	var outcomes []store.AuditOutcome
	// Every secret value is masked in the entries' text (what was typed,
	// the detail of how it ended, who typed it) here, on the writer's
	// goroutine, not on the command's.
	for i := range batch {
		it := &batch[i]
		if it.outcome != nil {
			o := *it.outcome
			o.Detail = w.red.String(o.Detail)
			outcomes = append(outcomes, o)
			continue
		}
		e := it.entry
		e.Text, e.Detail, e.UserName = w.red.String(e.Text), w.red.String(e.Detail), w.red.String(e.UserName)
		if it.reply != nil {
			decisions = append(decisions, e)
			replies = append(replies, it.reply)
		} else {
			finals = append(finals, e)
		}
	}
	var errs []error
	// One transaction for the batch: decisions' commands wait for it.
	ids, err := w.st.RecordAuditBatch(ctx, decisions, finals, outcomes)
	if err != nil {
		errs = append(errs, w.failed("batch", len(batch), err))
	}
	for i, r := range replies {
		if err != nil {
			r <- decisionResult{err: err}
		} else {
			r <- decisionResult{id: ids[i]}
		}
	}
	if len(errs) == 0 {
		w.failing.Store(nil)
	} else {
		err := errors.Join(errs...)
		w.failing.Store(&err)
	}
}

// failed counts and logs one failed write of n entries of what.
func (w *auditWriter) failed(what string, n int, err error) error {
	w.failures.Add(1)
	w.log.Error("write audit log", "what", what, "entries", n, "error", err)
	return fmt.Errorf("write audit %s: %w", what, err)
}

// health is nil unless the last write failed.
func (w *auditWriter) health() error {
	if p := w.failing.Load(); p != nil {
		return *p
	}
	return nil
}

// close flushes what is queued and stops the writer.
func (w *auditWriter) close() {
	w.once.Do(func() {
		w.mu.Lock()
		w.closed = true
		close(w.ch)
		w.mu.Unlock()
	})
	<-w.done
}
