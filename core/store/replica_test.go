package store

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// replicas opens n stores on one database, each as replica "r<i>" with a
// lease of 30s, all on one test clock.
func replicas(t *testing.T, n int) ([]*Store, *testClock) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chima.db")
	c := &testClock{t: base}
	var out []*Store
	for i := range n {
		s := openAt(t, path)
		s.now = c.now
		s.SetReplica(Replica{ID: fmt.Sprintf("r%d", i+1), Lease: 30 * time.Second})
		out = append(out, s)
	}
	return out, c
}

func TestAReplicaTakesOverOnlyJobsWhoseLeaseLapsed(t *testing.T) {
	if !onPostgres() {
		t.Skip("one process owns a SQLite store and every job in it")
	}
	ctx := context.Background()
	rs, clock := replicas(t, 2)
	r1, r2 := rs[0], rs[1]
	id := enqueue(t, r1, Job{QueueKey: "deploy:demo:staging"})
	if claim(t, r1, "r1/0", nil) != id {
		t.Fatal("r1 did not claim the job")
	}
	if _, acquired, err := r1.AcquireLock(ctx, Lock{Name: "deploy/env/demo/staging", Owner: "alice", JobID: id}); err != nil || !acquired {
		t.Fatalf("lock: %v %v", acquired, err)
	}

	// r2 restarts: r1's job is not its own.
	if got, err := r2.InterruptRunningJobs(ctx); err != nil || len(got) != 0 {
		t.Fatalf("r2's restart interrupted %v (err %v); want none of r1's jobs", got, err)
	}
	// r1 keeps renewing: the lease never lapses.
	for range 3 {
		clock.set(clock.now().Add(20 * time.Second))
		if n, err := r1.RenewLeases(ctx); err != nil || n != 1 {
			t.Fatalf("r1 renewed %d leases (err %v), want 1", n, err)
		}
		if got, err := r2.InterruptExpiredJobs(ctx); err != nil || len(got) != 0 {
			t.Fatalf("r2 took over %v (err %v) while r1 renews", got, err)
		}
	}
	// r1 dies: 31s later r2 ends the job, and its lock is free.
	clock.set(clock.now().Add(31 * time.Second))
	got, err := r2.InterruptExpiredJobs(ctx)
	if err != nil || len(got) != 1 || got[0].ID != id || got[0].State != JobInterrupted || got[0].Replica != "r1" {
		t.Fatalf("r2 took over %+v (err %v), want job %d of r1, interrupted", got, err, id)
	}
	if locks, _ := r2.Locks(ctx, "deploy/"); len(locks) != 0 {
		t.Errorf("locks after the take-over: %v, want the job's released", locks)
	}
	// A job r1 had not finished is not re-run: it is over.
	if again := claim(t, r2, "r2/0", nil); again != 0 {
		t.Errorf("job %d claimed again after its take-over", again)
	}
}

func TestARestartingReplicaInterruptsOnlyItsOwnJobs(t *testing.T) {
	if !onPostgres() {
		t.Skip("one process owns a SQLite store and every job in it")
	}
	ctx := context.Background()
	rs, _ := replicas(t, 2)
	a := enqueue(t, rs[0], Job{QueueKey: "a"})
	b := enqueue(t, rs[0], Job{QueueKey: "b"})
	if claim(t, rs[0], "r1/0", nil) != a || claim(t, rs[1], "r2/0", nil) != b {
		t.Fatal("claims went elsewhere")
	}
	got, err := rs[0].InterruptRunningJobs(ctx)
	if err != nil || len(got) != 1 || got[0].ID != a {
		t.Fatalf("r1's restart interrupted %v (err %v), want only its job %d", got, err, a)
	}
	if j, _ := rs[1].GetJob(ctx, b); j.State != JobRunning {
		t.Errorf("r2's job is %s after r1's restart, want running", j.State)
	}
}

func TestReplicasClaimingAtOnceRunEachJobOnceAndOnePerQueueKey(t *testing.T) {
	ctx := context.Background()
	rs, _ := replicas(t, 2)
	const keys, perKey = 10, 6
	for i := range keys * perKey {
		enqueue(t, rs[0], Job{QueueKey: fmt.Sprintf("deploy:app%d:staging", i%keys)})
	}
	var mu sync.Mutex
	ran := map[int64]int{}
	runningKey := map[string]bool{}
	var wg sync.WaitGroup
	for ri, s := range rs {
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				worker := fmt.Sprintf("r%d/%d", ri+1, w)
				for idle := 0; idle < 20; {
					j, err := s.ClaimJob(ctx, worker, base, nil)
					if err != nil {
						t.Error(err)
						return
					}
					if j == nil {
						idle++
						time.Sleep(5 * time.Millisecond)
						continue
					}
					idle = 0
					mu.Lock()
					ran[j.ID]++
					if runningKey[j.QueueKey] {
						t.Errorf("job %d of %s started while another of its key ran", j.ID, j.QueueKey)
					}
					runningKey[j.QueueKey] = true
					mu.Unlock()
					time.Sleep(time.Millisecond)
					mu.Lock()
					runningKey[j.QueueKey] = false
					mu.Unlock()
					if err := s.FinishJob(ctx, j.ID, JobSucceeded, ""); err != nil {
						t.Error(err)
					}
				}
			}()
		}
	}
	wg.Wait()
	if len(ran) != keys*perKey {
		t.Errorf("%d jobs ran, want %d", len(ran), keys*perKey)
	}
	for id, n := range ran {
		if n != 1 {
			t.Errorf("job %d ran %d times", id, n)
		}
	}
}

func TestACancelRequestFromAnyReplicaReachesTheOwner(t *testing.T) {
	ctx := context.Background()
	rs, _ := replicas(t, 2)
	id := enqueue(t, rs[0], Job{})
	queued := enqueue(t, rs[0], Job{QueueKey: "other"})
	_ = queued
	if claim(t, rs[0], "r1/0", nil) != id {
		t.Fatal("r1 did not claim the job")
	}
	if ok, err := rs[1].RequestJobCancel(ctx, id); err != nil || !ok {
		t.Fatalf("r2's cancel request: %v %v", ok, err)
	}
	got, err := rs[0].CancelRequests(ctx)
	if err != nil || !slices.Equal(got, []int64{id}) {
		t.Errorf("r1 sees cancel requests %v (err %v), want [%d]", got, err, id)
	}
	if got, _ := rs[1].CancelRequests(ctx); len(got) != 0 {
		t.Errorf("r2 sees %v: the request is r1's to act on", got)
	}
	if ok, _ := rs[1].RequestJobCancel(ctx, queued); ok {
		t.Error("a cancel request for a queued job reported running")
	}
}

func TestEachInboundMessageIsTakenByOneReplica(t *testing.T) {
	ctx := context.Background()
	rs, clock := replicas(t, 2)
	tests := []struct {
		name    string
		store   *Store
		adapter string
		id      string
		want    bool
	}{
		{"first replica takes it", rs[0], "mattermost", "p1", true},
		{"second replica sees it taken", rs[1], "mattermost", "p1", false},
		{"same id on another adapter is another message", rs[1], "slack", "p1", true},
		{"no id: cannot be told apart, taken", rs[1], "mattermost", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.store.ClaimInbound(ctx, tt.adapter, tt.id)
			if err != nil || got != tt.want {
				t.Errorf("ClaimInbound = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	clock.set(clock.now().Add(2 * time.Hour))
	if n, err := rs[0].PruneInbound(ctx, clock.now().Add(-time.Hour)); err != nil || n != 2 {
		t.Errorf("pruned %d (err %v), want 2", n, err)
	}
}
