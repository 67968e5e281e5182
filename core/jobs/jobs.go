// Package jobs runs Chima's durable jobs: a fixed pool of workers claims jobs
// from the store (one at a time per queue key, in order), hands each to an
// Executor (the plugin that declared the job kind) and records how it ended.
// A job is never lost: one that was running when the process died is marked
// interrupted at the next start (store.InterruptRunningJobs), never re-run
// behind anyone's back.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/chimaops/chima/core/store"
)

// Store is the part of the store the runner needs.
type Store interface {
	ClaimJob(ctx context.Context, worker string, now time.Time, plugins []string) (*store.Job, error)
	FinishJob(ctx context.Context, id int64, state store.JobState, detail string) error
	CancelQueuedJob(ctx context.Context, id int64) (store.Job, bool, error)
	// RenewLeases extends the leases of this replica's running jobs.
	RenewLeases(ctx context.Context) (int64, error)
	// RequestJobCancel asks the replica running a job to stop it.
	RequestJobCancel(ctx context.Context, id int64) (bool, error)
	// CancelRequests lists this replica's running jobs asked to stop.
	CancelRequests(ctx context.Context) ([]int64, error)
}

// Executor runs one claimed job to its end and says how it ended.
type Executor interface {
	RunJob(ctx context.Context, job store.Job) (store.JobState, string)
}

// Options configure a Runner.
type Options struct {
	Store    Store
	Executor Executor
	// Plugins lists the plugins whose jobs may be claimed now (running
	// ones); nil claims any.
	Plugins func() []string
	// Workers is the number of jobs run at once; default 4.
	Workers int
	// Poll is how often idle workers look for due jobs; default 1s. Enqueue
	// wakes them at once, so this only matters for delayed jobs.
	Poll   time.Duration
	Logger *slog.Logger
	// OnFinish is told about every job that ended (chima send waits on it).
	OnFinish func(job store.Job, state store.JobState, detail string)
	// Name identifies this process as a worker.
	Name string
	// Lease is how long the store's claim on a running job lasts; the
	// runner renews its jobs' leases at a third of it. Default
	// store.DefaultLease.
	Lease time.Duration
	// CancelPoll is how often the runner looks for requests from other
	// replicas to cancel one of its jobs; default 1s. 0 with a store that
	// is not shared disables it (every cancel then comes through Cancel).
	CancelPoll time.Duration
	// Shared says several replicas run jobs from the store.
	Shared bool
}

// Runner is the worker pool.
type Runner struct {
	o    Options
	wake chan struct{}

	mu      sync.Mutex
	running map[int64]context.CancelFunc
}

// New returns a Runner; call Run to start it.
func New(o Options) *Runner {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Name == "" {
		o.Name = "chima"
	}
	if o.Lease <= 0 {
		o.Lease = store.DefaultLease
	}
	if o.CancelPoll <= 0 {
		o.CancelPoll = time.Second
	}
	return &Runner{o: o, wake: make(chan struct{}, 1), running: map[int64]context.CancelFunc{}}
}

// Wake tells idle workers a job may be ready.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run runs the workers until ctx ends; jobs in progress are cancelled and
// Run waits for them to finish.
func (r *Runner) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.keepLeases(ctx)
	}()
	for i := range r.o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(ctx, fmt.Sprintf("%s/%d", r.o.Name, i))
		}()
	}
	wg.Wait()
}

// Cancel stops job id: a queued job is cancelled in the store; a running one
// has its context cancelled (its process group is ended by the plugin). It
// reports whether the job was found queued or running.
func (r *Runner) Cancel(ctx context.Context, id int64) (bool, error) {
	for attempt := 0; ; attempt++ {
		r.mu.Lock()
		cancel := r.running[id]
		r.mu.Unlock()
		if cancel != nil {
			cancel()
			return true, nil
		}
		job, cancelled, err := r.o.Store.CancelQueuedJob(ctx, id)
		if err != nil {
			return false, fmt.Errorf("cancel job %d: %w", id, err)
		}
		if cancelled {
			if r.o.OnFinish != nil {
				r.o.OnFinish(job, store.JobCancelled, "cancelled before it started")
			}
			return true, nil
		}
		if job.State != store.JobRunning {
			return false, nil
		}
		// Running in the store but not here: another replica's job, or
		// one a worker here claimed an instant ago and is about to
		// register. The request in the store reaches whichever it is.
		if r.o.Shared || attempt >= 50 {
			ok, err := r.o.Store.RequestJobCancel(ctx, id)
			if err != nil {
				return false, fmt.Errorf("cancel job %d: %w", id, err)
			}
			return ok, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// keepLeases renews the leases of this replica's running jobs at a third of
// their length, and on a shared store stops the jobs other replicas asked
// to cancel, until ctx ends.
func (r *Runner) keepLeases(ctx context.Context) {
	renew := time.NewTicker(r.o.Lease / 3)
	defer renew.Stop()
	var cancels <-chan time.Time
	if r.o.Shared {
		t := time.NewTicker(r.o.CancelPoll)
		defer t.Stop()
		cancels = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-renew.C:
			if _, err := r.o.Store.RenewLeases(ctx); err != nil && ctx.Err() == nil {
				// Another replica takes the jobs over once the lease
				// lapses; say so loudly while there is time.
				r.o.Logger.Error("renew job leases", "error", err)
			}
		case <-cancels:
			ids, err := r.o.Store.CancelRequests(ctx)
			if err != nil {
				if ctx.Err() == nil {
					r.o.Logger.Error("read cancel requests", "error", err)
				}
				continue
			}
			for _, id := range ids {
				r.mu.Lock()
				cancel := r.running[id]
				r.mu.Unlock()
				if cancel != nil {
					r.o.Logger.Info("job cancelled from another replica", "job", id)
					cancel()
				}
			}
		}
	}
}

func (r *Runner) work(ctx context.Context, worker string) {
	t := time.NewTicker(r.o.Poll)
	defer t.Stop()
	for {
		for r.runOne(ctx, worker) {
			if ctx.Err() != nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-t.C:
		}
	}
}

// runOne claims and runs one job; it reports whether there was one.
func (r *Runner) runOne(ctx context.Context, worker string) bool {
	var plugins []string
	if r.o.Plugins != nil {
		plugins = r.o.Plugins()
		if len(plugins) == 0 {
			return false
		}
	}
	job, err := r.o.Store.ClaimJob(ctx, worker, time.Now(), plugins)
	if err != nil {
		if ctx.Err() == nil {
			r.o.Logger.Error("claim job", "error", err)
		}
		return false
	}
	if job == nil {
		return false
	}
	// Another worker may now find the next job of another queue.
	r.Wake()
	jctx, cancel := context.WithCancel(ctx)
	r.mu.Lock()
	r.running[job.ID] = cancel
	r.mu.Unlock()
	log := r.o.Logger.With("job", job.ID, "plugin", job.Plugin, "kind", job.Kind)
	log.Info("job started", "attempt", job.Attempt)
	state, detail := r.o.Executor.RunJob(jctx, *job)
	if jctx.Err() != nil && !state.Terminal() {
		state = store.JobCancelled
	}
	cancelled := errors.Is(jctx.Err(), context.Canceled) && ctx.Err() == nil
	if cancelled && state != store.JobSucceeded {
		state, detail = store.JobCancelled, "cancelled"
	}
	cancel()
	r.mu.Lock()
	delete(r.running, job.ID)
	r.mu.Unlock()
	if ctx.Err() != nil && !cancelled && state != store.JobSucceeded {
		// Shutting down: the job did not finish by itself.
		state, detail = store.JobInterrupted, "interrupted by shutdown"
	}
	if err := r.o.Store.FinishJob(context.WithoutCancel(ctx), job.ID, state, detail); err != nil {
		log.Error("finish job", "error", err)
	}
	log.Info("job finished", "state", state)
	if r.o.OnFinish != nil {
		r.o.OnFinish(*job, state, detail)
	}
	return true
}
