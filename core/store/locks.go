package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Lock is a named, exclusive lock such as "deploy:project-x:edge".
type Lock struct {
	Name   string
	Owner  string // who holds it: a user, a plugin, a job
	Reason string
	// AcquiredAt is when the current owner took the lock. AcquireLock sets
	// it; the value passed in is ignored.
	AcquiredAt time.Time
	// ExpiresAt is when the lock lapses on its own; zero means never.
	ExpiresAt time.Time
	// JobID ties the lock to a job: it is released when the job finishes.
	// 0 means not tied to a job.
	JobID int64
}

// expired reports whether l has lapsed at now.
func (l Lock) expired(now time.Time) bool {
	return !l.ExpiresAt.IsZero() && !l.ExpiresAt.After(now)
}

const lockColumns = `name, owner, reason, acquired_at, expires_at, job_id`

func scanLock(sc scanner) (Lock, error) {
	var l Lock
	var acquired, expires sql.NullInt64
	if err := sc.Scan(&l.Name, &l.Owner, &l.Reason, &acquired, &expires, &l.JobID); err != nil {
		return Lock{}, err
	}
	l.AcquiredAt = fromMillis(acquired)
	l.ExpiresAt = fromMillis(expires)
	return l, nil
}

// AcquireLock takes the lock l.Name for l.Owner with l's reason, expiry and
// job.
//
// The lock is acquired when it is free, when it is held but has expired, or
// when l.Owner already holds it; in the last case reason, expiry and job are
// updated and the original AcquiredAt is kept. Then acquired is true and
// holder is the lock as now stored. Otherwise acquired is false and holder is
// the current holder. The check and the write are one atomic statement.
func (s *Store) AcquireLock(ctx context.Context, l Lock) (holder Lock, acquired bool, err error) {
	if l.Name == "" {
		return Lock{}, false, errors.New("acquire lock: empty name")
	}
	if l.Owner == "" {
		return Lock{}, false, fmt.Errorf("acquire lock %s: empty owner", l.Name)
	}
	now := s.now().UnixMilli()
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		// An upsert whose DO UPDATE only fires for the same owner or an
		// expired holder: atomic on SQLite and PostgreSQL alike. No row
		// comes back when someone else holds the lock.
		row := s.txQueryRow(ctx, tx, s.q(`INSERT INTO locks (`+lockColumns+`)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET
				owner = excluded.owner,
				reason = excluded.reason,
				acquired_at = CASE
					WHEN locks.owner = excluded.owner AND (locks.expires_at IS NULL OR locks.expires_at > ?)
					THEN locks.acquired_at ELSE excluded.acquired_at END,
				expires_at = excluded.expires_at,
				job_id = excluded.job_id
			WHERE locks.owner = excluded.owner OR (locks.expires_at IS NOT NULL AND locks.expires_at <= ?)
			RETURNING `+lockColumns),
			l.Name, l.Owner, l.Reason, now, toMillis(l.ExpiresAt), l.JobID, now, now)
		var err error
		holder, err = scanLock(row)
		if err == nil {
			acquired = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		holder, err = scanLock(s.txQueryRow(ctx, tx, s.q(`SELECT `+lockColumns+` FROM locks WHERE name = ?`), l.Name))
		return err
	})
	if err != nil {
		return Lock{}, false, fmt.Errorf("acquire lock %s: %w", l.Name, err)
	}
	return holder, acquired, nil
}

// LockRow returns the stored row of lock name, expired or not, and false
// when there is none: what AcquireLock is about to take over (the audit
// records a lock that lapsed when someone else takes it).
func (s *Store) LockRow(ctx context.Context, name string) (Lock, bool, error) {
	l, err := scanLock(s.queryRow(ctx, s.q(`SELECT `+lockColumns+` FROM locks WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return Lock{}, false, nil
	}
	if err != nil {
		return Lock{}, false, fmt.Errorf("read lock %s: %w", name, err)
	}
	return l, true, nil
}

// Expired reports whether l had lapsed at now.
func (l Lock) Expired(now time.Time) bool { return l.expired(now) }

// ReleaseLock releases the lock name if owner holds it, or whoever holds it
// when force is set. It returns whether the lock was released and its holder
// before the call. When the lock is held by someone else and force is false,
// released is false and holder tells who has it. A lock that is not held (or
// has expired) gives released=false and a zero Lock.
func (s *Store) ReleaseLock(ctx context.Context, name, owner string, force bool) (released bool, holder Lock, err error) {
	if name == "" {
		return false, Lock{}, errors.New("release lock: empty name")
	}
	now := s.now()
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		var err error
		holder, err = scanLock(s.txQueryRow(ctx, tx,
			s.q(`SELECT `+lockColumns+` FROM locks WHERE name = ?`+s.d.forUpdate()), name))
		if errors.Is(err, sql.ErrNoRows) {
			holder = Lock{}
			return nil
		}
		if err != nil {
			return err
		}
		if holder.expired(now) {
			// Lapsed: nobody holds it. Drop the stale row while here.
			holder = Lock{}
			_, err = s.txExec(ctx, tx, s.q(`DELETE FROM locks WHERE name = ?`), name)
			return err
		}
		if holder.Owner != owner && !force {
			return nil
		}
		if _, err := s.txExec(ctx, tx, s.q(`DELETE FROM locks WHERE name = ?`), name); err != nil {
			return err
		}
		released = true
		return nil
	})
	if err != nil {
		return false, Lock{}, fmt.Errorf("release lock %s: %w", name, err)
	}
	return released, holder, nil
}

// Locks returns the unexpired locks whose name starts with prefix (matched
// literally; "" for all), sorted by name.
func (s *Store) Locks(ctx context.Context, prefix string) ([]Lock, error) {
	query := `SELECT ` + lockColumns + ` FROM locks WHERE (expires_at IS NULL OR expires_at > ?)`
	args := []any{s.now().UnixMilli()}
	if cond, cargs := prefixClause("name", prefix); cond != "" {
		query += " AND " + cond
		args = append(args, cargs...)
	}
	rows, err := s.query(ctx, s.q(query+` ORDER BY name`), args...)
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	locks, err := scanAll(rows, scanLock)
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	// Bytewise order on every engine (PostgreSQL may collate by locale).
	slices.SortFunc(locks, func(a, b Lock) int { return strings.Compare(a.Name, b.Name) })
	return locks, nil
}

// ReleaseJobLocks releases every lock tied to job jobID and returns them,
// sorted by name.
func (s *Store) ReleaseJobLocks(ctx context.Context, jobID int64) ([]Lock, error) {
	if jobID <= 0 {
		// 0 means "no job": releasing by it would free every plain lock.
		return nil, fmt.Errorf("release locks of job %d: invalid job id", jobID)
	}
	var locks []Lock
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var err error
		locks, err = s.releaseJobLocksTx(ctx, tx, jobID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("release locks of job %d: %w", jobID, err)
	}
	return locks, nil
}

// releaseJobLocksTx deletes the locks tied to jobID inside tx and returns them
// sorted by name.
func (s *Store) releaseJobLocksTx(ctx context.Context, tx *sql.Tx, jobID int64) ([]Lock, error) {
	rows, err := s.txQuery(ctx, tx, s.q(`DELETE FROM locks WHERE job_id = ? RETURNING `+lockColumns), jobID)
	if err != nil {
		return nil, err
	}
	locks, err := scanAll(rows, scanLock)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(locks, func(a, b Lock) int { return strings.Compare(a.Name, b.Name) })
	return locks, nil
}
