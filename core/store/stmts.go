package store

import (
	"context"
	"database/sql"
)

// stmtCacheMax bounds the statements the Store keeps prepared. The store's
// queries are a fixed set (a few vary with the length of an IN list; the
// listings, whose text varies with their filters, call s.db directly), so
// the bound is only a guard: past it, a query runs unprepared as before.
const stmtCacheMax = 256

// Every statement of the store's hot paths (the durable event queue, KV,
// locks, jobs) goes through exec, query and queryRow, or their tx*
// counterparts, which run it from a statement prepared once per query text.
// modernc.org/sqlite parses the SQL again on every unprepared call, and on
// the webhook-to-chat path that parsing cost a fifth of the bot's CPU.
// PostgreSQL needs none of this: pgx keeps its own per-connection cache of
// prepared statements (QueryExecModeCacheStatement), so there the calls go
// straight to database/sql.
//
// With SQLite's single connection a statement cannot be prepared on the
// database while a transaction holds that connection (it would wait for
// itself), so a query first seen inside a transaction runs unprepared and
// is prepared once the transaction has ended (prepareMissed).

// cached returns the prepared statement of query, preparing it now when
// prepare is set; nil when the engine needs no cache, or the statement is
// not prepared (yet).
func (s *Store) cached(ctx context.Context, query string, prepare bool) *sql.Stmt {
	if s.d != dialectSQLite {
		return nil
	}
	s.stmtMu.Lock()
	st := s.stmts[query]
	full := len(s.stmts) >= stmtCacheMax
	if st == nil && !prepare && !full {
		if s.missed == nil {
			s.missed = map[string]bool{}
		}
		s.missed[query] = true
	}
	s.stmtMu.Unlock()
	if st != nil || !prepare || full {
		return st
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil // the unprepared call reports what is wrong
	}
	return s.keep(query, st)
}

// keep stores st as query's statement and returns the one kept: another
// caller may have prepared the same query at the same time.
func (s *Store) keep(query string, st *sql.Stmt) *sql.Stmt {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if s.closed {
		_ = st.Close()
		return nil
	}
	if prev := s.stmts[query]; prev != nil {
		_ = st.Close()
		return prev
	}
	if s.stmts == nil {
		s.stmts = map[string]*sql.Stmt{}
	}
	s.stmts[query] = st
	return st
}

// prepareMissed prepares the queries first run inside a transaction, now
// that it has ended and the connection is free.
func (s *Store) prepareMissed(ctx context.Context) {
	s.stmtMu.Lock()
	missed := s.missed
	s.missed = nil
	s.stmtMu.Unlock()
	for query := range missed {
		s.cached(ctx, query, true)
	}
}

// closeStmts closes every cached statement; later calls run unprepared.
func (s *Store) closeStmts() {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	for _, st := range s.stmts {
		_ = st.Close()
	}
	s.stmts, s.missed, s.closed = nil, nil, true
}

// exec is s.db.ExecContext through the statement cache.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := s.cached(ctx, query, true); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return s.db.ExecContext(ctx, query, args...)
}

// query is s.db.QueryContext through the statement cache.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := s.cached(ctx, query, true); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.db.QueryContext(ctx, query, args...)
}

// queryRow is s.db.QueryRowContext through the statement cache.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := s.cached(ctx, query, true); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.db.QueryRowContext(ctx, query, args...)
}

// txExec is tx.ExecContext through the statement cache: a statement
// prepared on the database runs in tx on the connection it was prepared on,
// without being parsed again.
func (s *Store) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if st := s.cached(ctx, query, false); st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

// txQuery is tx.QueryContext through the statement cache.
func (s *Store) txQuery(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	if st := s.cached(ctx, query, false); st != nil {
		return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, query, args...)
}

// txQueryRow is tx.QueryRowContext through the statement cache.
func (s *Store) txQueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if st := s.cached(ctx, query, false); st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}
