// Package store is Chima's one durable store: the audit log, plugin key-value
// state, named locks and the job queue, all behind database/sql.
//
// The default engine is an embedded SQLite file (pure Go, modernc.org/sqlite,
// driver name "sqlite"). PostgreSQL (pgx/v5, driver name "postgres") is for
// several replicas sharing the work. Both run the same SQL and one schema:
// statements use "?" placeholders that a dialect rebinds, timestamps are
// BIGINT unix milliseconds, and the few places where the engines differ are
// confined to the dialect type.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// ErrNotFound is returned (wrapped) when a job or other record does not exist.
var ErrNotFound = errors.New("not found")

// ErrJobFinished is returned (wrapped) by FinishJob when the job already is in
// a terminal state; the stored outcome is left untouched.
var ErrJobFinished = errors.New("job already finished")

// Store is Chima's durable store. It is safe for concurrent use.
type Store struct {
	db *sql.DB
	d  dialect
	// now is the clock used for timestamps the store fills in itself
	// (audit time, job creation and finish, lock acquisition and expiry
	// checks). Tests replace it to avoid depending on the wall clock.
	now func() time.Time
	// replica is who this Store claims jobs for (SetReplica).
	replica Replica
	// stop ends background work (the PostgreSQL clock sync); nil for
	// SQLite.
	stop     chan struct{}
	stopOnce sync.Once

	// auditStmts caches the prepared multi-row audit INSERT of each row
	// count: parsing it again for every batch cost as much as running it.
	auditMu    sync.Mutex
	auditStmts map[int]*sql.Stmt
	// decisionInsert is the prepared INSERT of one decision (RecordDecisions).
	decisionInsert *sql.Stmt
	// outcomeUpdate is the prepared UPDATE of a decision's outcome.
	outcomeUpdate *sql.Stmt

	// stmts are the prepared statements of SQLite's queries, by query
	// text; missed are the queries first run inside a transaction, to
	// prepare once it ended; closed is set by Close (see stmts.go).
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
	missed map[string]bool
	closed bool
}

// sqliteParams are appended to the file path to form the SQLite DSN:
//
//   - busy_timeout waits up to 5s for a lock held by another process (for
//     example the chima CLI reading the file while the bot runs) instead of
//     failing at once with SQLITE_BUSY;
//   - WAL lets readers in other processes proceed while one writer writes;
//   - synchronous=NORMAL is durable across process crashes in WAL mode and
//     much faster than FULL;
//   - _txlock=immediate makes every read-write transaction start with
//     BEGIN IMMEDIATE, taking the write lock up front, so that a transaction
//     that reads and then writes never has to upgrade its lock half way (an
//     upgrade that fails with SQLITE_BUSY regardless of busy_timeout).
const sqliteParams = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)" +
	"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"

// Open opens the store, creating it if needed, and brings its schema up to
// date.
//
// driver is "sqlite" or "postgres". For sqlite, dsn is the path of the
// database file; its directory is created if missing. A dsn that starts with
// "file:" is handed to the driver unchanged, so it must carry its own
// parameters (see sqliteParams). For postgres, dsn is a libpq connection
// string or URL, as pgx reads it; replicas opening one database at once
// apply each migration once (an advisory lock serialises them).
func Open(ctx context.Context, driver, dsn string) (*Store, error) {
	d, err := dialectFor(driver)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if dsn == "" {
		return nil, errors.New("open store: empty dsn")
	}
	if d == dialectPostgres {
		return openPostgres(ctx, dsn)
	}
	uri := dsn
	if !strings.HasPrefix(dsn, "file:") {
		uri, err = sqliteURI(dsn)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	db, err := sql.Open("sqlite", uri)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	// SQLite allows one writer at a time. Inside this process we simply use
	// a single connection: database/sql then queues callers in Go instead
	// of letting them race for the file lock, a transaction can never wait
	// on another connection of ours, and there is no SQLITE_BUSY to retry.
	// Reads wait behind writes, which is fine for a chat bot's load.
	// busy_timeout and BEGIN IMMEDIATE (see sqliteParams) cover other
	// processes opening the same file. The connection is kept for the life
	// of the Store.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := pingSQLite(ctx, db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", dsn, err)
	}
	s := &Store{db: db, d: d, now: time.Now}
	if err := s.migrate(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", dsn, err)
	}
	return s, nil
}

// pingSQLite opens the first connection, retrying while another process
// holds the file busy: switching a new file to WAL takes a lock that
// SQLite's busy_timeout does not wait for, so processes that create one
// file at once (replicas, or the CLI beside a starting bot) would fail.
func pingSQLite(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(5 * time.Second) // as busy_timeout waits
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := db.PingContext(ctx)
		if err == nil || !strings.Contains(err.Error(), "SQLITE_BUSY") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// sqliteURI turns a file path into a SQLite URI carrying sqliteParams,
// creating the file's directory if needed.
func sqliteURI(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return "", fmt.Errorf("create directory for %s: %w", path, err)
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") { // Windows: C:/x → /C:/x
		p = "/" + p
	}
	// In a URI path "%", "?" and "#" are special; escape them.
	p = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
	return "file:" + p + "?" + sqliteParams, nil
}

// Close closes the underlying database.
func (s *Store) Close() error {
	if s.stop != nil {
		s.stopOnce.Do(func() { close(s.stop) })
	}
	s.auditMu.Lock()
	for _, st := range s.auditStmts {
		st.Close()
	}
	s.auditStmts = nil
	for _, st := range []*sql.Stmt{s.decisionInsert, s.outcomeUpdate} {
		if st != nil {
			st.Close()
		}
	}
	s.decisionInsert, s.outcomeUpdate = nil, nil
	s.auditMu.Unlock()
	s.closeStmts()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// DB returns the underlying database handle, for health checks and metrics.
// With SQLite it is limited to one connection: do not hold rows or a
// transaction open across calls to the Store.
func (s *Store) DB() *sql.DB { return s.db }

// q rebinds a query written with "?" placeholders for the store's dialect.
func (s *Store) q(query string) string { return s.d.rebind(query) }

// withTx runs fn in a read-write transaction, committing if fn returns nil
// and rolling back otherwise.
func (s *Store) withTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	err = fn(tx)
	if err != nil {
		_ = tx.Rollback()
	} else if err = tx.Commit(); err != nil {
		err = fmt.Errorf("commit: %w", err)
	}
	s.prepareMissed(ctx)
	return err
}

// scanner is the common part of *sql.Row and *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// toMillis converts t to unix milliseconds, with the zero time as NULL.
// scanAll reads every row with scan and closes rows.
func scanAll[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func toMillis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

// fromMillis converts unix milliseconds back to a time, NULL to the zero
// time.
func fromMillis(ms sql.NullInt64) time.Time {
	if !ms.Valid {
		return time.Time{}
	}
	return time.UnixMilli(ms.Int64)
}

// placeholders returns "?, ?, ..." with n placeholders (n > 0).
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// prefixClause returns an SQL condition (and its arguments) matching rows
// whose column col starts with prefix, or "" when prefix is empty. It
// compares a substring rather than using LIKE so that "%" and "_" match
// literally and the match is case-sensitive on both engines (SQLite's LIKE
// is case-insensitive for ASCII). Both engines count substr positions in
// characters.
func prefixClause(col, prefix string) (string, []any) {
	if prefix == "" {
		return "", nil
	}
	return "substr(" + col + ", 1, ?) = ?", []any{len([]rune(prefix)), prefix}
}
