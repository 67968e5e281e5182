package bot

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/chimaops/chima/core/redact"
	"github.com/chimaops/chima/core/store"
)

// auditWriter records audit entries off the dispatch path, in batches: a
// command's reply never waits for a disk write, and nothing is dropped (the
// queue is bounded and blocks when full, slowing dispatch instead).
type auditWriter struct {
	st   *store.Store
	log  *slog.Logger
	red  *redact.Redactor
	ch   chan store.AuditEntry
	done chan struct{}
	once sync.Once
}

func newAuditWriter(st *store.Store, log *slog.Logger, red *redact.Redactor) *auditWriter {
	w := &auditWriter{st: st, log: log, red: red, ch: make(chan store.AuditEntry, 4096), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *auditWriter) record(e store.AuditEntry) { w.ch <- e }

// auditLinger is how long the writer gathers entries before a write: group
// commit. A write costs about the same for 1 entry as for 100, and nobody
// waits on the audit log, so a short delay buys a lot of throughput.
const auditLinger = 20 * time.Millisecond

func (w *auditWriter) loop() {
	defer close(w.done)
	batch := make([]store.AuditEntry, 0, 512)
	timer := time.NewTimer(auditLinger)
	timer.Stop()
	for e := range w.ch {
		batch = append(batch[:0], e)
		timer.Reset(auditLinger)
	gather:
		for len(batch) < cap(batch) {
			select {
			case e, ok := <-w.ch:
				if !ok {
					break gather
				}
				batch = append(batch, e)
			case <-timer.C:
				break gather
			}
		}
		timer.Stop()
		w.write(batch)
	}
}

func (w *auditWriter) write(batch []store.AuditEntry) {
	if w.st == nil {
		return
	}
	// Every secret value is masked in the entries' text (what was typed,
	// the detail of how it ended, who typed it) here, on the writer's
	// goroutine, not on the command's.
	for i := range batch {
		e := &batch[i]
		e.Text, e.Detail, e.UserName = w.red.String(e.Text), w.red.String(e.Detail), w.red.String(e.UserName)
	}
	if err := w.st.RecordAudits(context.Background(), batch); err != nil {
		w.log.Error("write audit log", "entries", len(batch), "error", err)
	}
}

// close flushes what is queued and stops the writer.
func (w *auditWriter) close() {
	w.once.Do(func() { close(w.ch) })
	<-w.done
}
