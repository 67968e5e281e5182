package bot

import (
	"context"
	"log/slog"
	"sync"

	"github.com/chimaops/chima/core/store"
)

// auditWriter records audit entries off the dispatch path, in batches: a
// command's reply never waits for a disk write, and nothing is dropped (the
// queue is bounded and blocks when full, slowing dispatch instead).
type auditWriter struct {
	st   *store.Store
	log  *slog.Logger
	ch   chan store.AuditEntry
	done chan struct{}
	once sync.Once
}

func newAuditWriter(st *store.Store, log *slog.Logger) *auditWriter {
	w := &auditWriter{st: st, log: log, ch: make(chan store.AuditEntry, 4096), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *auditWriter) record(e store.AuditEntry) { w.ch <- e }

func (w *auditWriter) loop() {
	defer close(w.done)
	batch := make([]store.AuditEntry, 0, 256)
	for e := range w.ch {
		batch = append(batch[:0], e)
	drain:
		for len(batch) < cap(batch) {
			select {
			case e, ok := <-w.ch:
				if !ok {
					break drain
				}
				batch = append(batch, e)
			default:
				break drain
			}
		}
		w.write(batch)
	}
}

func (w *auditWriter) write(batch []store.AuditEntry) {
	if w.st == nil {
		return
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
