package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DefaultLease is how long a replica's claim on a running job lasts without
// a renewal. Runners renew at a third of it.
const DefaultLease = 30 * time.Second

// Replica says which replica this Store serves and how long its job leases
// last. A replica's id must be stable across its restarts (a restarting
// replica takes back only the jobs of its own id) and unique among the
// replicas running at once.
type Replica struct {
	// ID names the replica ("chima-1", the host name); "" is "chima".
	ID string
	// Lease is how long a claim lasts without renewal; 0 is DefaultLease.
	Lease time.Duration
}

// SetReplica sets the replica this Store claims jobs for. Call it before
// the store is used. A SQLite store is used by one process only, which owns
// every job, so the replica matters only on PostgreSQL.
func (s *Store) SetReplica(r Replica) {
	if r.ID == "" {
		r.ID = "chima"
	}
	if r.Lease <= 0 {
		r.Lease = DefaultLease
	}
	s.replica = r
}

// ReplicaID returns the id of the replica this Store serves.
func (s *Store) ReplicaID() string { return s.replicaID() }

func (s *Store) replicaID() string {
	if s == nil || s.replica.ID == "" {
		return "chima"
	}
	return s.replica.ID
}

func (s *Store) lease() time.Duration {
	if s.replica.Lease <= 0 {
		return DefaultLease
	}
	return s.replica.Lease
}

// Shared reports whether several processes may share this store (a
// PostgreSQL database), so that work must be claimed in it rather than
// assumed.
func (s *Store) Shared() bool { return s != nil && s.d == dialectPostgres }

// Now is the store's clock: the database's, on PostgreSQL, so that every
// replica judges locks and leases by one clock (see syncClock); the local
// one on SQLite.
func (s *Store) Now() time.Time { return s.now() }

// RenewLeases extends the lease of every job this replica runs and returns
// how many it holds. A replica that stops renewing (it died, or lost the
// database) loses its jobs to InterruptExpiredJobs on another replica.
func (s *Store) RenewLeases(ctx context.Context) (int64, error) {
	res, err := s.exec(ctx, s.q(`UPDATE jobs SET lease_until = ?
		WHERE state = 'running' AND replica = ?`), s.now().Add(s.lease()).UnixMilli(), s.replicaID())
	if err != nil {
		return 0, fmt.Errorf("renew leases: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("renew leases: %w", err)
	}
	return n, nil
}

// LeasesHeld counts the running jobs whose lease this replica holds.
func (s *Store) LeasesHeld(ctx context.Context) (int64, error) {
	var n int64
	if err := s.queryRow(ctx, s.q(`SELECT COUNT(*) FROM jobs WHERE state = 'running' AND replica = ?`), s.replicaID()).Scan(&n); err != nil {
		return 0, fmt.Errorf("count job leases: %w", err)
	}
	return n, nil
}

// expiredDetail is the Detail of jobs ended by InterruptExpiredJobs.
const expiredDetail = "interrupted: the replica running it stopped renewing its lease"

// InterruptExpiredJobs ends, as interrupted, every running job of another
// replica whose lease lapsed (that replica died or lost the database),
// releases their locks and returns them so that their rooms can be told.
// The jobs are not re-run: a deploy half done must be looked at by a person.
func (s *Store) InterruptExpiredJobs(ctx context.Context) ([]Job, error) {
	return s.interruptJobs(ctx, `state = 'running' AND replica <> ? AND lease_until > 0 AND lease_until < ?`,
		expiredDetail, s.replicaID(), s.now().UnixMilli())
}

// RequestJobCancel asks the replica running job id to stop it (that replica
// sees the request within a second, see CancelRequests). It reports whether
// the job is running.
func (s *Store) RequestJobCancel(ctx context.Context, id int64) (bool, error) {
	res, err := s.exec(ctx, s.q(`UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = 'running'`), id)
	if err != nil {
		return false, fmt.Errorf("request cancel of job %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("request cancel of job %d: %w", id, err)
	}
	return n == 1, nil
}

// CancelRequests returns the ids of this replica's running jobs that some
// replica asked to cancel.
func (s *Store) CancelRequests(ctx context.Context) ([]int64, error) {
	rows, err := s.query(ctx, s.q(`SELECT id FROM jobs
		WHERE state = 'running' AND replica = ? AND cancel_requested = 1 ORDER BY id`), s.replicaID())
	if err != nil {
		return nil, fmt.Errorf("list cancel requests: %w", err)
	}
	return scanAll(rows, func(sc scanner) (int64, error) {
		var id int64
		return id, sc.Scan(&id)
	})
}

// ClaimInbound records that this replica takes the chat message of adapter
// whose delivery key (chat.Message.DeliveryKey: a post id, an event id) is
// messageID, and reports whether it is the first to: a message that every
// replica received (Mattermost's WebSocket delivers each post to every
// connection) is answered by one. PruneInbound forgets old ones.
func (s *Store) ClaimInbound(ctx context.Context, adapter, messageID string) (bool, error) {
	if adapter == "" || messageID == "" {
		return true, nil // nothing to tell it apart by: take it
	}
	res, err := s.exec(ctx, s.q(`INSERT INTO inbound_messages (adapter, message_id, replica, received_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (adapter, message_id) DO NOTHING`),
		adapter, messageID, s.replicaID(), s.now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("claim inbound message %s/%s: %w", adapter, messageID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim inbound message %s/%s: %w", adapter, messageID, err)
	}
	return n == 1, nil
}

// PruneInbound forgets inbound messages recorded before cutoff; a service
// redelivers nothing that old.
func (s *Store) PruneInbound(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.exec(ctx, s.q(`DELETE FROM inbound_messages WHERE received_at < ?`), cutoff.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("prune inbound messages: %w", err)
	}
	return res.RowsAffected()
}

// interruptJobs marks the running jobs matching where interrupted with
// detail, releases their locks and returns them sorted by id.
func (s *Store) interruptJobs(ctx context.Context, where, detail string, args ...any) ([]Job, error) {
	var jobs []Job
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		rows, err := s.txQuery(ctx, tx, s.q(`UPDATE jobs SET state = ?, detail = ?, finished_at = ?
			WHERE `+where+`
			RETURNING `+jobColumns), append([]any{string(JobInterrupted), detail, s.now().UnixMilli()}, args...)...)
		if err != nil {
			return err
		}
		if jobs, err = scanAll(rows, scanJob); err != nil {
			return err
		}
		for _, j := range jobs {
			if _, err := s.releaseJobLocksTx(ctx, tx, j.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("interrupt jobs: %w", err)
	}
	sortJobs(jobs)
	return jobs, nil
}

// errLostClaim means another replica claimed the job first.
var errLostClaim = errors.New("lost the claim to another replica")
