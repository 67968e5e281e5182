package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresMaxConns bounds one replica's connections: a chat bot's load is
// small, and PostgreSQL's max_connections is shared by every replica.
const postgresMaxConns = 16

// Advisory locks are taken as (class, hash of the schema): two Chima
// installations in different schemas of one database do not block each
// other.
const (
	// migrationLockClass is the lock under which replicas migrate the
	// schema, one at a time.
	migrationLockClass int32 = 0x63686d31 // "chm1"
	// runLockClass is the lock a bot holds for as long as it runs.
	runLockClass int32 = 0x63686d32 // "chm2"
)

// schemaLock is the advisory lock expression of class for the current
// schema.
const schemaLock = `($1::int4, hashtext(current_schema()))`

// openPostgres opens a PostgreSQL store through pgx's database/sql driver
// and migrates it under an advisory lock.
func openPostgres(ctx context.Context, dsn string) (*Store, error) {
	// ParseConfig checks the DSN before anything dials, and its error,
	// unlike the DSN, is safe to show: it never contains the password.
	if _, err := pgx.ParseConfig(dsn); err != nil {
		return nil, fmt.Errorf("open store: postgres dsn: %w", err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db.SetMaxOpenConns(postgresMaxConns)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store: connect to postgres: %w", err)
	}
	s := &Store{db: db, d: dialectPostgres, now: time.Now, stop: make(chan struct{})}
	if err := s.syncClock(ctx, s.stop); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.migrateLocked(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	go s.keepQueueStatistics(s.stop)
	return s, nil
}

// statisticsEvery is how often a PostgreSQL store analyzes its queues;
// the first time is that long after it opened, so that a one-shot command
// (chima audit) that closes the store at once does none of it.
const statisticsEvery = time.Minute

// keepQueueStatistics keeps PostgreSQL's statistics of the queues fresh
// until stop is closed. With stale ones (a burst of enqueues right after
// the last analyze) the planner thinks a handful of jobs are queued, tests
// them all and sorts: 37 ms a claim with 2,000 queued, against 2.3 ms
// after an ANALYZE (the claim's window, see ClaimJob, bounds the damage).
// So autovacuum is told to analyze them after 1% of their rows changed
// rather than 10%, and they are analyzed each minute. ANALYZE blocks no
// reader or writer. Failures only cost speed, so they are ignored.
func (s *Store) keepQueueStatistics(stop <-chan struct{}) {
	const analyze = `ANALYZE jobs, event_deliveries`
	stmts := []string{ // the first time; the table settings stay set
		`ALTER TABLE jobs SET (autovacuum_analyze_scale_factor = 0.01, autovacuum_analyze_threshold = 100)`,
		`ALTER TABLE event_deliveries SET (autovacuum_analyze_scale_factor = 0.01, autovacuum_analyze_threshold = 100)`,
		analyze,
	}
	t := time.NewTicker(statisticsEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for _, stmt := range stmts {
			_, _ = s.db.ExecContext(ctx, stmt)
		}
		cancel()
		stmts = []string{analyze}
	}
}

// migrateLocked runs migrate while holding a session advisory lock on one
// connection: replicas that start together queue on it, and each finds the
// migrations the first one applied already recorded. Even CREATE TABLE IF
// NOT EXISTS races in PostgreSQL without it.
func (s *Store) migrateLocked(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock`+schemaLock, migrationLockClass); err != nil {
		return fmt.Errorf("migrate: take the migration lock: %w", err)
	}
	defer func() {
		// A fresh context: the unlock must happen even when ctx ended,
		// or this pooled connection would keep the lock.
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(uctx, `SELECT pg_advisory_unlock`+schemaLock, migrationLockClass); err != nil {
			// Closing the session is what frees its lock: ErrBadConn
			// makes database/sql close this connection, not pool it.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return s.migrate(ctx)
}

// ErrInUse is returned (wrapped) by HoldRunLock when another process runs
// as the same replica.
var ErrInUse = errors.New("another chima run is using the store")

// HoldRunLock makes this process the one bot running as its replica id on a
// PostgreSQL store, as the lock file does for SQLite: a restarting replica
// takes back the jobs of its id, so two processes with one id would take
// each other's. Other replica ids run beside it. The lock is a session
// advisory lock on a connection kept for it, so PostgreSQL drops it when the
// process dies, even by kill -9. Close the returned closer to release it.
// SQLite stores need none: it returns a no-op closer.
func (s *Store) HoldRunLock(ctx context.Context) (io.Closer, error) {
	if s.d != dialectPostgres {
		return io.NopCloser(nil), nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock store: %w", err)
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock`+replicaLock, runLockClass, s.replicaID()).Scan(&ok); err != nil {
		conn.Close()
		return nil, fmt.Errorf("lock store: %w", err)
	}
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("%w as replica %q; stop it first, or give this one another replica id: two bots of one id would take each other's jobs", ErrInUse, s.replicaID())
	}
	return &runLock{conn: conn, id: s.replicaID()}, nil
}

// replicaLock is the advisory lock expression of class ($1) for replica
// $2 in the current schema.
const replicaLock = `($1::int4, hashtext(current_schema() || '/' || $2::text))`

// runLock holds the run lock's connection.
type runLock struct {
	conn *sql.Conn
	id   string
}

// Close releases the lock, then drops its session rather than pooling it,
// so that the lock cannot linger on a pooled connection even if the unlock
// failed.
func (l *runLock) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := l.conn.ExecContext(ctx, `SELECT pg_advisory_unlock`+replicaLock, runLockClass, l.id)
	// Raw with ErrBadConn closes the connection itself.
	_ = l.conn.Raw(func(any) error { return driver.ErrBadConn })
	if err != nil {
		return fmt.Errorf("unlock store: %w", err)
	}
	return nil
}

// clockSyncEvery is how often a PostgreSQL store re-reads the database's
// clock; local clocks drift by far less than a lease in that time.
const clockSyncEvery = time.Minute

// syncClock makes s.now the database's clock: it measures the offset of
// PostgreSQL's clock_timestamp() from the local clock (halving the round
// trip), and keeps measuring until stop is closed. Every replica then
// judges lock expiry and job leases by the one clock of the database, not
// by its own, which may be off by seconds.
func (s *Store) syncClock(ctx context.Context, stop <-chan struct{}) error {
	var offset atomic.Int64 // nanoseconds to add to the local clock
	measure := func(ctx context.Context) error {
		t0 := time.Now()
		var dbMicros int64
		if err := s.db.QueryRowContext(ctx, `SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint`).Scan(&dbMicros); err != nil {
			return fmt.Errorf("read the database's clock: %w", err)
		}
		t1 := time.Now()
		mid := t0.Add(t1.Sub(t0) / 2)
		offset.Store(time.UnixMicro(dbMicros).Sub(mid).Nanoseconds())
		return nil
	}
	if err := measure(ctx); err != nil {
		return err
	}
	s.now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	go func() {
		t := time.NewTicker(clockSyncEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				mctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_ = measure(mctx) // keep the last offset on a failed read
				cancel()
			}
		}
	}()
	return nil
}
