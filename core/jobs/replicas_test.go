package jobs

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/chimaops/chima/core/store"
)

// replicaRunner runs a Runner as replica id on the store file at path, with
// a short lease, until the test ends.
func replicaRunner(t *testing.T, path, id string, ex *executor, fin *finished, plugins func() []string) (*store.Store, *Runner) {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	st.SetReplica(store.Replica{ID: id, Lease: 300 * time.Millisecond})
	r := New(Options{Store: st, Executor: ex, OnFinish: fin.record, Workers: 1, Poll: 20 * time.Millisecond,
		Name: id, Lease: 300 * time.Millisecond, CancelPoll: 20 * time.Millisecond, Shared: true, Plugins: plugins})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return st, r
}

func TestACancelFromAnotherReplicaStopsTheJobWhereItRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	ex := &executor{started: make(chan int64, 4)}
	fin := &finished{states: map[int64]store.JobState{}, done: make(chan int64, 4)}
	st1, r1 := replicaRunner(t, path, "r1", ex, fin, nil)
	// r2 runs no jobs of this plugin; it only takes the person's cancel.
	idle := &executor{started: make(chan int64, 1)}
	_, r2 := replicaRunner(t, path, "r2", idle, &finished{states: map[int64]store.JobState{}, done: make(chan int64, 1)},
		func() []string { return []string{"none"} })

	id := enqueue(t, st1, r1, "", "hang")
	if got := wait(t, ex.started); got != id {
		t.Fatalf("started job %d, want %d", got, id)
	}
	ok, err := r2.Cancel(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("cancel from r2: %v %v, want the job found running", ok, err)
	}
	if got := wait(t, fin.done); got != id {
		t.Fatalf("finished job %d, want %d", got, id)
	}
	fin.mu.Lock()
	defer fin.mu.Unlock()
	if fin.states[id] != store.JobCancelled {
		t.Errorf("job ended %s, want cancelled", fin.states[id])
	}
}

func TestARunnerRenewsTheLeasesOfItsRunningJobs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	ex := &executor{started: make(chan int64, 4)}
	fin := &finished{states: map[int64]store.JobState{}, done: make(chan int64, 4)}
	st, r := replicaRunner(t, path, "r1", ex, fin, nil)
	id := enqueue(t, st, r, "", "hang")
	wait(t, ex.started)
	first, err := st.GetJob(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	// Poll until the lease moved on (a failure guard of 10s; no duration
	// is asserted).
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := st.GetJob(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.LeaseUntil.After(first.LeaseUntil) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease stayed at %v: never renewed", first.LeaseUntil)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
