package jobs

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/store"
)

// executor runs jobs by their payload: "ok", "fail", "hang" (until
// cancelled) or "slow-ok" (succeeds even when cancelled: it had finished).
type executor struct {
	mu      sync.Mutex
	started chan int64
	order   []string
}

func (e *executor) RunJob(ctx context.Context, j store.Job) (store.JobState, string) {
	e.mu.Lock()
	e.order = append(e.order, string(j.Payload))
	e.mu.Unlock()
	e.started <- j.ID
	switch string(j.Payload) {
	case "fail":
		return store.JobFailed, "boom"
	case "hang":
		<-ctx.Done()
		return store.JobCancelled, "stopped"
	case "slow-ok":
		<-ctx.Done()
		return store.JobSucceeded, ""
	}
	return store.JobSucceeded, ""
}

type finished struct {
	mu     sync.Mutex
	states map[int64]store.JobState
	done   chan int64
}

func (f *finished) record(j store.Job, s store.JobState, _ string) {
	f.mu.Lock()
	f.states[j.ID] = s
	f.mu.Unlock()
	f.done <- j.ID
}

func setup(t *testing.T) (*store.Store, *Runner, *executor, *finished, func()) {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	ex := &executor{started: make(chan int64, 16)}
	fin := &finished{states: map[int64]store.JobState{}, done: make(chan int64, 16)}
	r := New(Options{Store: st, Executor: ex, OnFinish: fin.record, Workers: 2, Poll: 20 * time.Millisecond})
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	stop := func() { cancel(context.Canceled); <-done; st.Close() }
	return st, r, ex, fin, stop
}

func enqueue(t *testing.T, st *store.Store, r *Runner, key, payload string) int64 {
	t.Helper()
	id, err := st.EnqueueJob(context.Background(), store.Job{Plugin: "p", Kind: "k", QueueKey: key, Payload: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	r.Wake()
	return id
}

func wait[T any](t *testing.T, c chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
	}
	var zero T
	return zero
}

func TestJobsOfOneQueueRunInOrderAndEndWithTheExecutorsState(t *testing.T) {
	st, r, ex, fin, stop := setup(t)
	defer stop()
	a := enqueue(t, st, r, "app/env", "ok")
	b := enqueue(t, st, r, "app/env", "fail")
	wait(t, fin.done)
	wait(t, fin.done)
	if fin.states[a] != store.JobSucceeded || fin.states[b] != store.JobFailed {
		t.Fatalf("states = %v", fin.states)
	}
	if ex.order[0] != "ok" || ex.order[1] != "fail" {
		t.Fatalf("order = %v", ex.order)
	}
	if j, _ := st.GetJob(context.Background(), b); j.State != store.JobFailed || j.Detail != "boom" {
		t.Fatalf("job b = %s %q", j.State, j.Detail)
	}
}

func TestCancelStopsARunningJobAndCancelsAQueuedOne(t *testing.T) {
	st, r, _, fin, stop := setup(t)
	defer stop()
	running := enqueue(t, st, r, "q", "hang")
	queued := enqueue(t, st, r, "q", "ok")
	if id := wait(t, r.o.Executor.(*executor).started); id != running {
		t.Fatalf("started %d", id)
	}
	if ok, err := r.Cancel(context.Background(), queued); err != nil || !ok {
		t.Fatalf("cancel queued: %v %v", ok, err)
	}
	if id := wait(t, fin.done); id != queued || fin.states[queued] != store.JobCancelled {
		t.Fatalf("finished %d as %v", id, fin.states[queued])
	}
	if ok, err := r.Cancel(context.Background(), running); err != nil || !ok {
		t.Fatalf("cancel running: %v %v", ok, err)
	}
	if id := wait(t, fin.done); id != running || fin.states[running] != store.JobCancelled {
		t.Fatalf("finished %d as %v", id, fin.states[running])
	}
}

func TestShutdownInterruptsRunningJobsButKeepsOnesThatSucceeded(t *testing.T) {
	st, r, ex, fin, stop := setup(t)
	hang := enqueue(t, st, r, "a", "hang")
	okJob := enqueue(t, st, r, "b", "slow-ok")
	wait(t, ex.started)
	wait(t, ex.started)
	stop()
	fin.mu.Lock()
	defer fin.mu.Unlock()
	if fin.states[hang] != store.JobInterrupted || fin.states[okJob] != store.JobSucceeded {
		t.Fatalf("states after shutdown = %v", fin.states)
	}
}
