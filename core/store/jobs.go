package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// JobState is where a job is in its life: queued → running → one of the
// terminal states.
type JobState string

// Job states.
const (
	// JobQueued: waiting to be claimed by a worker.
	JobQueued JobState = "queued"
	// JobRunning: claimed by a worker and executing.
	JobRunning JobState = "running"
	// JobSucceeded: ran and did what it was asked.
	JobSucceeded JobState = "succeeded"
	// JobFailed: ran and the work failed (a failed deploy).
	JobFailed JobState = "failed"
	// JobError: could not run properly (plugin crash, bad payload).
	JobError JobState = "error"
	// JobCancelled: cancelled before it started.
	JobCancelled JobState = "cancelled"
	// JobInterrupted: was running when Chima stopped.
	JobInterrupted JobState = "interrupted"
)

// Terminal reports whether a job in state s is finished for good.
func (s JobState) Terminal() bool {
	switch s {
	case JobSucceeded, JobFailed, JobError, JobCancelled, JobInterrupted:
		return true
	default:
		return false
	}
}

// Job is one unit of background work owned by a plugin.
type Job struct {
	ID      int64
	Plugin  string // plugin that runs the job
	Kind    string // job kind, as the plugin declared it
	Payload []byte // opaque to the core
	// QueueKey serialises jobs: those sharing a non-empty QueueKey run one
	// at a time, in ID order (strict FIFO).
	QueueKey string
	// Notify is where the job reports progress and its outcome.
	Notify chat.MessageRef
	// OriginRequestID is the chat request that enqueued the job.
	OriginRequestID string
	// Title says what the job is, for people; may be empty.
	Title string
	State JobState
	// Attempt counts claims: 1 once it has been claimed for the first time.
	Attempt int
	// Worker is who claimed the job last.
	Worker string
	// Detail is the outcome detail or error text.
	Detail string
	// Replica is the replica that claimed the job last ("" before
	// replicas), and LeaseUntil when its claim lapses unless renewed.
	Replica    string
	LeaseUntil time.Time
	// Timestamps; zero when unset.
	CreatedAt, RunAfter, StartedAt, FinishedAt time.Time
}

const jobColumns = `id, plugin, kind, payload, queue_key,
	notify_adapter, notify_room, notify_message_id, notify_thread_id,
	origin_request_id, state, attempt, worker, detail,
	created_at, run_after, started_at, finished_at, title, replica, lease_until`

// openStates is the SQL list of non-terminal states.
const openStates = `('queued', 'running')`

func scanJob(sc scanner) (Job, error) {
	var j Job
	var state string
	var created, runAfter, started, finished sql.NullInt64
	var lease int64
	err := sc.Scan(&j.ID, &j.Plugin, &j.Kind, &j.Payload, &j.QueueKey,
		&j.Notify.Adapter, &j.Notify.Room, &j.Notify.MessageID, &j.Notify.ThreadID,
		&j.OriginRequestID, &state, &j.Attempt, &j.Worker, &j.Detail,
		&created, &runAfter, &started, &finished, &j.Title, &j.Replica, &lease)
	if err != nil {
		return Job{}, err
	}
	j.State = JobState(state)
	j.CreatedAt = fromMillis(created)
	j.RunAfter = fromMillis(runAfter)
	j.StartedAt = fromMillis(started)
	j.FinishedAt = fromMillis(finished)
	if lease > 0 {
		j.LeaseUntil = time.UnixMilli(lease)
	}
	return j, nil
}

// EnqueueJob adds j to the queue and returns its id. The job starts queued
// with attempt 0; CreatedAt defaults to now and RunAfter to CreatedAt. ID,
// State, Attempt, Worker, Detail, StartedAt and FinishedAt are ignored.
func (s *Store) EnqueueJob(ctx context.Context, j Job) (int64, error) {
	if j.Plugin == "" || j.Kind == "" {
		return 0, fmt.Errorf("enqueue job: plugin and kind are required (got %q, %q)", j.Plugin, j.Kind)
	}
	if j.CreatedAt.IsZero() {
		j.CreatedAt = s.now()
	}
	if j.RunAfter.IsZero() {
		j.RunAfter = j.CreatedAt
	}
	var id int64
	err := s.queryRow(ctx, s.q(`INSERT INTO jobs
		(plugin, kind, payload, queue_key,
		 notify_adapter, notify_room, notify_message_id, notify_thread_id,
		 origin_request_id, state, attempt, created_at, run_after, title)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)
		RETURNING id`),
		j.Plugin, j.Kind, j.Payload, j.QueueKey,
		j.Notify.Adapter, j.Notify.Room, j.Notify.MessageID, j.Notify.ThreadID,
		j.OriginRequestID, string(JobQueued), j.CreatedAt.UnixMilli(), j.RunAfter.UnixMilli(), j.Title,
	).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("enqueue job %s/%s: %w", j.Plugin, j.Kind, err)
	}
	return id, nil
}

// ClaimJob atomically picks the oldest (lowest id) queued job whose RunAfter
// is at or before now and marks it running for worker: StartedAt = now,
// Attempt+1. A job with a non-empty QueueKey is only eligible when no job with
// the same key is running and no older job with the same key is still queued
// (strict FIFO per key, even if that older job is not due yet or belongs to a
// plugin outside the filter).
//
// plugins restricts the claim to jobs of those plugins; nil means any plugin,
// while an empty non-nil slice matches nothing. ClaimJob returns (nil, nil)
// when no job is eligible.
func (s *Store) ClaimJob(ctx context.Context, worker string, now time.Time, plugins []string) (*Job, error) {
	if worker == "" {
		return nil, errors.New("claim job: empty worker")
	}
	if plugins != nil && len(plugins) == 0 {
		return nil, nil
	}
	// due is the filter of queued jobs that may run now, on a table named
	// t ("" for none).
	due := func(t string) string {
		c := t + `state = 'queued' AND ` + t + `run_after <= ?`
		if len(plugins) > 0 {
			c += ` AND ` + t + `plugin IN (` + placeholders(len(plugins)) + `)`
		}
		return c
	}
	args := []any{now.UnixMilli()}
	for _, p := range plugins {
		args = append(args, p)
	}
	// A job is eligible when it has no queue key, or when no job of its
	// key runs and no older one of its key is still queued (whether due or
	// of a plugin outside the filter: strict FIFO per key).
	const eligible = `(j.queue_key = '' OR (
			NOT EXISTS (SELECT 1 FROM jobs r
				WHERE r.queue_key = j.queue_key AND r.state = 'running')
			AND NOT EXISTS (SELECT 1 FROM jobs o
				WHERE o.queue_key = j.queue_key AND o.state = 'queued' AND o.id < j.id)))`
	// On PostgreSQL, replicas claim at once: the candidate row is locked
	// and skipped by the others (SKIP LOCKED), and the per-key rule is
	// backed by the jobs_running_key unique index, whose violation means
	// "lost the race, try again". On SQLite the transaction is exclusive.
	tail := ` ORDER BY j.id LIMIT 1` + s.d.skipLocked()
	// On PostgreSQL the eligibility test runs first on the oldest due jobs
	// only: with stale statistics it otherwise tests every queued job and
	// then sorts them (37 ms a claim with 2,000 queued, against about 2).
	// The first eligible job is among them unless all of them wait behind
	// their keys; then the whole queue is searched. The answer is the
	// same either way: the oldest eligible job.
	// SQLite's planner walks (state, id) and stops at the first eligible
	// job by itself; there the window only costs (half the claims a
	// second).
	queries := []claimQuery{{`SELECT j.id FROM jobs j WHERE ` + due("j.") + ` AND ` + eligible + tail, args}}
	if s.d == dialectPostgres {
		window := claimQuery{`SELECT j.id FROM (SELECT id FROM jobs WHERE ` + due("") + ` ORDER BY id LIMIT ` + claimWindow + `) c
			JOIN jobs j ON j.id = c.id WHERE ` + eligible + tail, args}
		queries = append([]claimQuery{window}, queries...)
	}

	for attempt := 0; ; attempt++ {
		job, err := s.claimOnce(ctx, queries, worker, now)
		if errors.Is(err, errLostClaim) && attempt < 5 {
			continue
		}
		if errors.Is(err, errLostClaim) {
			return nil, nil // busy: the workers poll again
		}
		if err != nil {
			return nil, fmt.Errorf("claim job: %w", err)
		}
		return job, nil
	}
}

// claimWindow is how many of the oldest due jobs a claim tests first.
const claimWindow = "256"

// claimQuery is one way of finding the job to claim, tried in order.
type claimQuery struct {
	query string
	args  []any
}

// claimOnce runs one claim transaction; errLostClaim means another replica
// took the job or its queue key first.
func (s *Store) claimOnce(ctx context.Context, queries []claimQuery, worker string, now time.Time) (*Job, error) {
	var job *Job
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var id int64
		found := false
		for _, q := range queries {
			err := s.txQueryRow(ctx, tx, s.q(q.query), q.args...).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			found = true
			break
		}
		if !found {
			return nil
		}
		j, err := scanJob(s.txQueryRow(ctx, tx, s.q(`UPDATE jobs
			SET state = 'running', worker = ?, started_at = ?, attempt = attempt + 1,
				replica = ?, lease_until = ?, cancel_requested = 0
			WHERE id = ? AND state = 'queued'
			RETURNING `+jobColumns), worker, now.UnixMilli(), s.replicaID(), s.now().Add(s.lease()).UnixMilli(), id))
		if errors.Is(err, sql.ErrNoRows) {
			return errLostClaim // taken meanwhile (multi-writer engines only)
		}
		if isUniqueViolation(err) {
			return errLostClaim // another replica started this queue key
		}
		if err != nil {
			return err
		}
		job = &j
		return nil
	})
	return job, err
}

// FinishJob moves job id to the terminal state with detail, sets FinishedAt
// and releases the locks tied to the job, all in one transaction. It returns
// an error wrapping ErrNotFound for an unknown id and one wrapping
// ErrJobFinished, leaving the job as it was, when the job already finished.
func (s *Store) FinishJob(ctx context.Context, id int64, state JobState, detail string) error {
	if !state.Terminal() {
		return fmt.Errorf("finish job %d: %q is not a terminal state", id, state)
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		res, err := s.txExec(ctx, tx, s.q(`UPDATE jobs SET state = ?, detail = ?, finished_at = ?
			WHERE id = ? AND state IN `+openStates),
			string(state), detail, s.now().UnixMilli(), id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			var cur string
			err := s.txQueryRow(ctx, tx, s.q(`SELECT state FROM jobs WHERE id = ?`), id).Scan(&cur)
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			if err != nil {
				return err
			}
			return fmt.Errorf("%w: it is %s", ErrJobFinished, cur)
		}
		_, err = s.releaseJobLocksTx(ctx, tx, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish job %d: %w", id, err)
	}
	return nil
}

// GetJob returns job id, or an error wrapping ErrNotFound.
func (s *Store) GetJob(ctx context.Context, id int64) (Job, error) {
	j, err := scanJob(s.queryRow(ctx, s.q(`SELECT `+jobColumns+` FROM jobs WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, fmt.Errorf("get job %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Job{}, fmt.Errorf("get job %d: %w", id, err)
	}
	return j, nil
}

// CancelQueuedJob cancels job id if it is still queued: its state becomes
// cancelled, FinishedAt is set, locks tied to it are released, and the
// updated job is returned with cancelled=true. A running or finished job is
// returned unchanged with cancelled=false (for a running job the caller
// stops the work itself). An unknown id gives an error wrapping ErrNotFound.
func (s *Store) CancelQueuedJob(ctx context.Context, id int64) (job Job, cancelled bool, err error) {
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		var err error
		job, err = scanJob(s.txQueryRow(ctx, tx, s.q(`UPDATE jobs SET state = ?, finished_at = ?
			WHERE id = ? AND state = 'queued'
			RETURNING `+jobColumns), string(JobCancelled), s.now().UnixMilli(), id))
		if err == nil {
			cancelled = true
			_, err = s.releaseJobLocksTx(ctx, tx, id)
			return err
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		job, err = scanJob(s.txQueryRow(ctx, tx, s.q(`SELECT `+jobColumns+` FROM jobs WHERE id = ?`), id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		return err
	})
	if err != nil {
		return Job{}, false, fmt.Errorf("cancel job %d: %w", id, err)
	}
	return job, cancelled, nil
}

// interruptedDetail is the Detail of jobs ended by InterruptRunningJobs.
const interruptedDetail = "interrupted by restart"

// InterruptRunningJobs marks this replica's running jobs interrupted (detail
// "interrupted by restart", FinishedAt now), releases their locks, and
// returns the jobs sorted by id so their rooms can be told. Chima calls it
// once at start-up, before any worker runs: a job of its own still running
// in the store then is one the previous process lost.
//
// On SQLite one process owns the store, so every running job is its own. On
// PostgreSQL only the jobs of this replica's id are (and jobs from before
// replicas, which name none); other replicas' jobs are theirs for as long
// as they renew their leases (InterruptExpiredJobs ends the rest).
func (s *Store) InterruptRunningJobs(ctx context.Context) ([]Job, error) {
	if !s.Shared() {
		return s.interruptJobs(ctx, `state = 'running'`, interruptedDetail)
	}
	return s.interruptJobs(ctx, `state = 'running' AND (replica = ? OR replica = '')`, interruptedDetail, s.replicaID())
}

// sortJobs orders jobs by id.
func sortJobs(jobs []Job) {
	slices.SortFunc(jobs, func(a, b Job) int { return cmp.Compare(a.ID, b.ID) })
}

// JobFilter selects jobs for ListJobs. Empty fields match anything.
type JobFilter struct {
	Plugin          string
	Kind            string
	QueueKey        string
	OriginRequestID string
	// States keeps jobs in any of these states; empty means all states.
	States []JobState
	// Limit caps the number of jobs returned; 0 (or less) means 50.
	Limit int
	// NewestFirst orders by descending id instead of ascending.
	NewestFirst bool
}

// ListJobs returns the jobs matching f, ordered by id.
func (s *Store) ListJobs(ctx context.Context, f JobFilter) ([]Job, error) {
	var conds []string
	var args []any
	add := func(cond string, vals ...any) {
		conds = append(conds, cond)
		args = append(args, vals...)
	}
	if f.Plugin != "" {
		add(`plugin = ?`, f.Plugin)
	}
	if f.Kind != "" {
		add(`kind = ?`, f.Kind)
	}
	if f.QueueKey != "" {
		add(`queue_key = ?`, f.QueueKey)
	}
	if f.OriginRequestID != "" {
		add(`origin_request_id = ?`, f.OriginRequestID)
	}
	if len(f.States) > 0 {
		vals := make([]any, len(f.States))
		for i, st := range f.States {
			vals[i] = string(st)
		}
		add(`state IN (`+placeholders(len(f.States))+`)`, vals...)
	}
	query := `SELECT ` + jobColumns + ` FROM jobs`
	if len(conds) > 0 {
		query += ` WHERE ` + strings.Join(conds, ` AND `)
	}
	if f.NewestFirst {
		query += ` ORDER BY id DESC`
	} else {
		query += ` ORDER BY id`
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	query += ` LIMIT ?`
	args = append(args, limit)

	rows, err := s.db.QueryContext(ctx, s.q(query), args...) // one text per filter: not for the statement cache
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	jobs, err := scanAll(rows, scanJob)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return jobs, nil
}

// OpenJobs counts the jobs enqueued by chat request originRequestID that are
// not finished yet (queued or running); "" counts every open job.
func (s *Store) OpenJobs(ctx context.Context, originRequestID string) (int, error) {
	var n int
	err := s.queryRow(ctx, s.q(`SELECT COUNT(*) FROM jobs
		WHERE (? = '' OR origin_request_id = ?) AND state IN `+openStates), originRequestID, originRequestID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count open jobs of %s: %w", originRequestID, err)
	}
	return n, nil
}
