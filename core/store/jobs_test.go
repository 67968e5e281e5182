package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
)

func TestJobStateTerminal(t *testing.T) {
	tests := []struct {
		state JobState
		want  bool
	}{
		{JobQueued, false},
		{JobRunning, false},
		{JobSucceeded, true},
		{JobFailed, true},
		{JobError, true},
		{JobCancelled, true},
		{JobInterrupted, true},
		{JobState("bogus"), false},
	}
	for _, tt := range tests {
		if got := tt.state.Terminal(); got != tt.want {
			t.Errorf("%q.Terminal() = %v, want %v", tt.state, got, tt.want)
		}
	}
}

// enqueue adds a job of plugin "deploy" with the given queue key and fails
// the test on error.
func enqueue(t testing.TB, s *Store, j Job) int64 {
	t.Helper()
	if j.Plugin == "" {
		j.Plugin = "deploy"
	}
	if j.Kind == "" {
		j.Kind = "deploy"
	}
	id, err := s.EnqueueJob(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// claim claims a job as worker at base and returns its id, or 0 for none.
func claim(t testing.TB, s *Store, worker string, plugins []string) int64 {
	t.Helper()
	j, err := s.ClaimJob(context.Background(), worker, base, plugins)
	if err != nil {
		t.Fatal(err)
	}
	if j == nil {
		return 0
	}
	return j.ID
}

func TestEnqueueJobStoresEveryFieldAndDefaults(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	in := Job{
		ID: 999, State: JobRunning, Attempt: 5, Worker: "ignored", Detail: "ignored",
		Plugin: "deploy", Kind: "deploy", Payload: []byte(`{"ref":"main"}`),
		QueueKey:        "deploy:project-x:edge",
		Notify:          chat.MessageRef{Adapter: "slack", Room: "C1", MessageID: "m1", ThreadID: "t1"},
		OriginRequestID: "req-1",
		Title:           "deployment #3 of project-x/main to edge",
	}
	id, err := s.EnqueueJob(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetJob(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != id || got.ID == 999 || got.Plugin != in.Plugin || got.Kind != in.Kind ||
		string(got.Payload) != string(in.Payload) || got.QueueKey != in.QueueKey ||
		got.Notify != in.Notify || got.OriginRequestID != in.OriginRequestID || got.Title != in.Title {
		t.Fatalf("GetJob = %+v, want the enqueued fields of %+v", got, in)
	}
	if got.State != JobQueued || got.Attempt != 0 || got.Worker != "" || got.Detail != "" {
		t.Fatalf("new job state = %q attempt %d worker %q detail %q; want queued, 0, empty", got.State, got.Attempt, got.Worker, got.Detail)
	}
	if !got.CreatedAt.Equal(base) || !got.RunAfter.Equal(base) || !got.StartedAt.IsZero() || !got.FinishedAt.IsZero() {
		t.Fatalf("timestamps = created %v run_after %v started %v finished %v; want created=run_after=clock, others zero",
			got.CreatedAt, got.RunAfter, got.StartedAt, got.FinishedAt)
	}

	later := base.Add(time.Hour)
	id2 := enqueue(t, s, Job{RunAfter: later})
	got2, _ := s.GetJob(ctx, id2)
	if !got2.RunAfter.Equal(later) || !got2.CreatedAt.Equal(base) {
		t.Fatalf("explicit RunAfter: got created %v run_after %v", got2.CreatedAt, got2.RunAfter)
	}

	for _, bad := range []Job{{Kind: "k"}, {Plugin: "p"}} {
		if _, err := s.EnqueueJob(ctx, bad); err == nil {
			t.Errorf("EnqueueJob(%+v) succeeded, want error", bad)
		}
	}
}

func TestClaimJobMarksRunning(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	id := enqueue(t, s, Job{})
	now := base.Add(time.Second)
	j, err := s.ClaimJob(ctx, "w1", now, nil)
	if err != nil || j == nil {
		t.Fatalf("ClaimJob = %v, %v", j, err)
	}
	if j.ID != id || j.State != JobRunning || j.Worker != "w1" || j.Attempt != 1 || !j.StartedAt.Equal(now) {
		t.Fatalf("claimed %+v, want job %d running for w1, attempt 1, started %v", j, id, now)
	}
	stored, _ := s.GetJob(ctx, id)
	if stored.State != JobRunning || stored.Attempt != 1 {
		t.Fatalf("stored job = %+v, want running attempt 1", stored)
	}
	if j, err := s.ClaimJob(ctx, "w2", now, nil); err != nil || j != nil {
		t.Fatalf("second ClaimJob = %+v, %v; want nothing left", j, err)
	}
	if _, err := s.ClaimJob(ctx, "", now, nil); err == nil {
		t.Fatal("ClaimJob with empty worker succeeded, want error")
	}
}

func TestClaimJobRunsSameQueueKeyOneAtATimeInOrder(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	a1 := enqueue(t, s, Job{QueueKey: "deploy:x"})
	a2 := enqueue(t, s, Job{QueueKey: "deploy:x"})
	b1 := enqueue(t, s, Job{QueueKey: "deploy:y"})
	n1 := enqueue(t, s, Job{})
	n2 := enqueue(t, s, Job{})

	// Different keys and unkeyed jobs run in parallel; a2 waits for a1.
	for _, want := range []int64{a1, b1, n1, n2, 0} {
		if got := claim(t, s, "w", nil); got != want {
			t.Fatalf("claimed %d, want %d (a1=%d a2=%d b1=%d n1=%d n2=%d)", got, want, a1, a2, b1, n1, n2)
		}
	}
	if err := s.FinishJob(ctx, a1, JobSucceeded, "ok"); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, s, "w", nil); got != a2 {
		t.Fatalf("after a1 finished, claimed %d, want a2=%d", got, a2)
	}
}

func TestClaimJobKeepsStrictFIFOBehindANotYetDueJob(t *testing.T) {
	s, _ := newStore(t)
	enqueue(t, s, Job{QueueKey: "k", RunAfter: base.Add(time.Hour)})
	enqueue(t, s, Job{QueueKey: "k"})
	if got := claim(t, s, "w", nil); got != 0 {
		t.Fatalf("claimed %d; a job must not overtake an older queued job with the same key", got)
	}
}

func TestClaimJobRespectsRunAfter(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	id := enqueue(t, s, Job{RunAfter: base.Add(time.Minute)})
	tests := []struct {
		name string
		now  time.Time
		want int64
	}{
		{"before run_after", base.Add(59 * time.Second), 0},
		{"at run_after", base.Add(time.Minute), id},
	}
	for _, tt := range tests {
		j, err := s.ClaimJob(ctx, "w", tt.now, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got int64
		if j != nil {
			got = j.ID
		}
		if got != tt.want {
			t.Fatalf("%s: claimed %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestClaimJobFiltersByPlugin(t *testing.T) {
	tests := []struct {
		name    string
		plugins []string
		want    string // plugin of the claimed job, "" for none
	}{
		{"nil claims any plugin", nil, "deploy"},
		{"listed plugin only", []string{"backup", "cistatus"}, "backup"},
		{"unlisted plugins are skipped", []string{"cistatus"}, ""},
		{"empty non-nil list claims nothing", []string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			enqueue(t, s, Job{Plugin: "deploy"})
			enqueue(t, s, Job{Plugin: "backup"})
			j, err := s.ClaimJob(context.Background(), "w", base, tt.plugins)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if j != nil {
				got = j.Plugin
			}
			if got != tt.want {
				t.Fatalf("claimed plugin %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFinishJobRecordsOutcomeAndReleasesJobLocks(t *testing.T) {
	ctx := context.Background()
	s, clock := newStore(t)
	id := enqueue(t, s, Job{})
	other := enqueue(t, s, Job{})
	claim(t, s, "w", nil)
	for _, l := range []Lock{
		{Name: "deploy:x", Owner: "job", JobID: id},
		{Name: "deploy:y", Owner: "job", JobID: other},
		{Name: "manual", Owner: "ada"},
	} {
		if _, ok, err := s.AcquireLock(ctx, l); err != nil || !ok {
			t.Fatalf("AcquireLock(%+v) = %v, %v", l, ok, err)
		}
	}
	clock.set(base.Add(time.Minute))
	if err := s.FinishJob(ctx, id, JobFailed, "exit 1"); err != nil {
		t.Fatal(err)
	}
	j, _ := s.GetJob(ctx, id)
	if j.State != JobFailed || j.Detail != "exit 1" || !j.FinishedAt.Equal(base.Add(time.Minute)) {
		t.Fatalf("finished job = %+v, want failed/exit 1 finished at clock", j)
	}
	locks, _ := s.Locks(ctx, "")
	var names []string
	for _, l := range locks {
		names = append(names, l.Name)
	}
	if !slices.Equal(names, []string{"deploy:y", "manual"}) {
		t.Fatalf("locks after FinishJob = %v, want only the job's lock released", names)
	}
}

func TestFinishJobErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	done := enqueue(t, s, Job{})
	if err := s.FinishJob(ctx, done, JobSucceeded, "first"); err != nil {
		t.Fatal(err)
	}
	queued := enqueue(t, s, Job{QueueKey: "k"})

	tests := []struct {
		name    string
		id      int64
		state   JobState
		wantErr error
	}{
		{"unknown id", 12345, JobSucceeded, ErrNotFound},
		{"already finished", done, JobFailed, ErrJobFinished},
		{"non-terminal target state", queued, JobRunning, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.FinishJob(ctx, tt.id, tt.state, "second")
			if err == nil {
				t.Fatal("FinishJob succeeded, want error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("FinishJob = %v, want %v", err, tt.wantErr)
			}
		})
	}
	j, _ := s.GetJob(ctx, done)
	if j.State != JobSucceeded || j.Detail != "first" {
		t.Fatalf("finished job was overwritten: %+v", j)
	}
	if j, _ := s.GetJob(ctx, queued); j.State != JobQueued {
		t.Fatalf("queued job changed by a refused FinishJob: %+v", j)
	}
}

func TestCancelQueuedJob(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name          string
		setup         func(t *testing.T, s *Store, id int64)
		wantCancelled bool
		wantState     JobState
	}{
		{"queued job is cancelled", func(*testing.T, *Store, int64) {}, true, JobCancelled},
		{"running job is left for the caller to stop", func(t *testing.T, s *Store, id int64) {
			if got := claim(t, s, "w", nil); got != id {
				t.Fatalf("claimed %d, want %d", got, id)
			}
		}, false, JobRunning},
		{"finished job is left alone", func(t *testing.T, s *Store, id int64) {
			if err := s.FinishJob(ctx, id, JobSucceeded, ""); err != nil {
				t.Fatal(err)
			}
		}, false, JobSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			id := enqueue(t, s, Job{QueueKey: "k"})
			if _, ok, err := s.AcquireLock(ctx, Lock{Name: "k", Owner: "job", JobID: id}); err != nil || !ok {
				t.Fatalf("AcquireLock = %v, %v", ok, err)
			}
			tt.setup(t, s, id)
			before, _ := s.GetJob(ctx, id)
			job, cancelled, err := s.CancelQueuedJob(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if cancelled != tt.wantCancelled || job.ID != id || job.State != tt.wantState {
				t.Fatalf("CancelQueuedJob = %+v, %v; want state %q, cancelled %v", job, cancelled, tt.wantState, tt.wantCancelled)
			}
			stored, _ := s.GetJob(ctx, id)
			if stored.State != tt.wantState {
				t.Fatalf("stored state %q, want %q", stored.State, tt.wantState)
			}
			if !cancelled && !sameJob(stored, before) {
				t.Fatalf("job changed although not cancelled:\n before %+v\n after  %+v", before, stored)
			}
			if cancelled {
				if stored.FinishedAt.IsZero() {
					t.Fatal("cancelled job has no FinishedAt")
				}
				if locks, _ := s.Locks(ctx, ""); len(locks) != 0 {
					t.Fatalf("cancelled job's locks still held: %+v", locks)
				}
			}
		})
	}

	t.Run("unknown job is not found", func(t *testing.T) {
		s, _ := newStore(t)
		if _, _, err := s.CancelQueuedJob(ctx, 77); !errors.Is(err, ErrNotFound) {
			t.Fatalf("CancelQueuedJob(77) = %v, want ErrNotFound", err)
		}
	})

	t.Run("cancelling unblocks the next job with the same key", func(t *testing.T) {
		s, _ := newStore(t)
		first := enqueue(t, s, Job{QueueKey: "k", RunAfter: base.Add(time.Hour)})
		next := enqueue(t, s, Job{QueueKey: "k"})
		if got := claim(t, s, "w", nil); got != 0 {
			t.Fatalf("claimed %d before cancel, want none", got)
		}
		if _, ok, err := s.CancelQueuedJob(ctx, first); err != nil || !ok {
			t.Fatalf("CancelQueuedJob = %v, %v", ok, err)
		}
		if got := claim(t, s, "w", nil); got != next {
			t.Fatalf("claimed %d after cancel, want %d", got, next)
		}
	})
}

func sameJob(a, b Job) bool {
	return a.ID == b.ID && a.State == b.State && a.Attempt == b.Attempt && a.Worker == b.Worker &&
		a.Detail == b.Detail && a.StartedAt.Equal(b.StartedAt) && a.FinishedAt.Equal(b.FinishedAt)
}

func TestInterruptRunningJobsAfterCrashReleasesTheirLocks(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chima.db")

	// The first process claims work and takes locks, then dies: the store
	// is never closed before the next process opens the file.
	crashed := openAt(t, path)
	crashed.now = func() time.Time { return base }
	r1 := enqueue(t, crashed, Job{QueueKey: "deploy:x", Notify: chat.MessageRef{Adapter: "slack", Room: "C1"}})
	r2 := enqueue(t, crashed, Job{})
	waiting := enqueue(t, crashed, Job{QueueKey: "deploy:x"})
	for _, want := range []int64{r1, r2} {
		if got := claim(t, crashed, "old-worker", nil); got != want {
			t.Fatalf("claimed %d, want %d", got, want)
		}
	}
	for _, l := range []Lock{
		{Name: "deploy:x", Owner: "job", JobID: r1},
		{Name: "manual", Owner: "ada"},
	} {
		if _, ok, err := crashed.AcquireLock(ctx, l); err != nil || !ok {
			t.Fatalf("AcquireLock(%+v) = %v, %v", l, ok, err)
		}
	}

	restarted := openAt(t, path)
	restarted.now = func() time.Time { return base.Add(time.Hour) }
	jobs, err := restarted.InterruptRunningJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].ID != r1 || jobs[1].ID != r2 {
		t.Fatalf("InterruptRunningJobs = %+v, want jobs %d and %d", jobs, r1, r2)
	}
	for _, j := range jobs {
		if j.State != JobInterrupted || j.Detail != "interrupted by restart" || !j.FinishedAt.Equal(base.Add(time.Hour)) {
			t.Fatalf("interrupted job = %+v", j)
		}
	}
	if jobs[0].Notify.Room != "C1" {
		t.Fatalf("returned job lost its Notify ref: %+v", jobs[0].Notify)
	}
	locks, _ := restarted.Locks(ctx, "")
	if len(locks) != 1 || locks[0].Name != "manual" {
		t.Fatalf("locks after restart = %+v, want only the manual lock", locks)
	}
	if j, _ := restarted.GetJob(ctx, waiting); j.State != JobQueued {
		t.Fatalf("queued job = %+v, want untouched", j)
	}
	if got := claim(t, restarted, "new-worker", nil); got != waiting {
		t.Fatalf("after restart claimed %d, want the waiting job %d", got, waiting)
	}
	again, err := restarted.InterruptRunningJobs(ctx)
	if err != nil || len(again) != 1 || again[0].ID != waiting {
		t.Fatalf("second InterruptRunningJobs = %+v, %v; want only the newly running job", again, err)
	}
}

func TestConcurrentClaimsNeverHandOutAJobTwice(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	const n = 240
	want := make(map[int64]string, n)
	for i := range n {
		key := ""
		if i%3 != 0 {
			key = fmt.Sprintf("key-%d", i%5)
		}
		want[enqueue(t, s, Job{QueueKey: key})] = key
	}

	var (
		mu       sync.Mutex
		claimed  = make(map[int64]string) // job → worker
		keyOrder = make(map[string][]int64)
		done     atomic.Int64
		wg       sync.WaitGroup
	)
	errc := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker := fmt.Sprintf("w%d", w)
			for done.Load() < n {
				j, err := s.ClaimJob(ctx, worker, base, nil)
				if err != nil {
					errc <- err
					return
				}
				if j == nil {
					continue // others hold the head of every key
				}
				mu.Lock()
				if prev, dup := claimed[j.ID]; dup {
					mu.Unlock()
					errc <- fmt.Errorf("job %d handed to %s and %s", j.ID, prev, worker)
					return
				}
				claimed[j.ID] = worker
				keyOrder[j.QueueKey] = append(keyOrder[j.QueueKey], j.ID)
				mu.Unlock()
				if err := s.FinishJob(ctx, j.ID, JobSucceeded, worker); err != nil {
					errc <- err
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if len(claimed) != n {
		t.Fatalf("claimed %d jobs, want %d", len(claimed), n)
	}
	for key, ids := range keyOrder {
		if key != "" && !slices.IsSorted(ids) {
			t.Errorf("queue key %q ran out of order: %v", key, ids)
		}
	}
}

func TestListJobsFilters(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	d1 := enqueue(t, s, Job{Plugin: "deploy", Kind: "deploy", QueueKey: "x", OriginRequestID: "r1"})
	d2 := enqueue(t, s, Job{Plugin: "deploy", Kind: "rollback", QueueKey: "x", OriginRequestID: "r1"})
	b1 := enqueue(t, s, Job{Plugin: "backup", Kind: "dump", OriginRequestID: "r2"})
	b2 := enqueue(t, s, Job{Plugin: "backup", Kind: "dump"})
	claim(t, s, "w", nil) // d1 running
	if err := s.FinishJob(ctx, b2, JobError, "boom"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		f    JobFilter
		want []int64
	}{
		{"everything oldest first", JobFilter{}, []int64{d1, d2, b1, b2}},
		{"newest first", JobFilter{NewestFirst: true}, []int64{b2, b1, d2, d1}},
		{"by plugin", JobFilter{Plugin: "backup"}, []int64{b1, b2}},
		{"by kind", JobFilter{Kind: "rollback"}, []int64{d2}},
		{"by queue key", JobFilter{QueueKey: "x"}, []int64{d1, d2}},
		{"by origin request", JobFilter{OriginRequestID: "r1"}, []int64{d1, d2}},
		{"by states", JobFilter{States: []JobState{JobRunning, JobError}}, []int64{d1, b2}},
		{"combined", JobFilter{Plugin: "backup", States: []JobState{JobQueued}}, []int64{b1}},
		{"limit", JobFilter{Limit: 2, NewestFirst: true}, []int64{b2, b1}},
		{"no match", JobFilter{Plugin: "nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs, err := s.ListJobs(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, j := range jobs {
				ids = append(ids, j.ID)
			}
			if !slices.Equal(ids, tt.want) {
				t.Fatalf("ListJobs(%+v) = %v, want %v", tt.f, ids, tt.want)
			}
		})
	}
}

func TestListJobsDefaultLimitIsFifty(t *testing.T) {
	s, _ := newStore(t)
	for range 60 {
		enqueue(t, s, Job{})
	}
	jobs, err := s.ListJobs(context.Background(), JobFilter{})
	if err != nil || len(jobs) != 50 {
		t.Fatalf("ListJobs = %d jobs, %v; want 50", len(jobs), err)
	}
}

func TestOpenJobsCountsQueuedAndRunningOfARequest(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	count := func() int {
		t.Helper()
		n, err := s.OpenJobs(ctx, "req-1")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	a := enqueue(t, s, Job{OriginRequestID: "req-1"})
	b := enqueue(t, s, Job{OriginRequestID: "req-1"})
	enqueue(t, s, Job{OriginRequestID: "req-2"})
	if got := count(); got != 2 {
		t.Fatalf("OpenJobs = %d, want 2", got)
	}
	if all, err := s.OpenJobs(ctx, ""); err != nil || all != 3 {
		t.Fatalf("OpenJobs of every request = %d, %v; want 3", all, err)
	}
	claim(t, s, "w", nil) // a running: still open
	if got := count(); got != 2 {
		t.Fatalf("OpenJobs with one running = %d, want 2", got)
	}
	if err := s.FinishJob(ctx, a, JobSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CancelQueuedJob(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 0 {
		t.Fatalf("OpenJobs after all finished = %d, want 0", got)
	}
}

func TestAClaimFindsTheEligibleJobBehindMoreBlockedOnesThanItsWindow(t *testing.T) {
	s, _ := newStore(t)
	// More jobs of one busy key than a claim first looks at, then one free.
	for range 300 {
		enqueue(t, s, Job{QueueKey: "deploy:demo:staging"})
	}
	if first := claim(t, s, "w1", nil); first == 0 {
		t.Fatal("nothing claimed")
	}
	free := enqueue(t, s, Job{QueueKey: "deploy:demo:production"})
	if got := claim(t, s, "w2", nil); got != free {
		t.Fatalf("claimed %d, want %d: the only eligible job, behind 299 that wait for their key", got, free)
	}
}
