package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// base is the fixed "now" of tests that control the store's clock.
var base = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// testClock is a settable clock for Store.now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// openAt opens (or reopens) the store file at path and closes it when the
// test ends.
func openAt(t testing.TB, path string) *Store {
	t.Helper()
	s, err := tryOpenAt(t, path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// tryOpenAt opens the store at path on this pass's engine: the SQLite file,
// or the PostgreSQL schema standing for it.
func tryOpenAt(t testing.TB, path string) (*Store, error) {
	t.Helper()
	if onPostgres() {
		return Open(context.Background(), "postgres", postgresDSN(t, path))
	}
	return Open(context.Background(), "sqlite", path)
}

// newStore opens a fresh store in a temporary directory, with its clock fixed
// at base.
func newStore(t testing.TB) (*Store, *testClock) {
	t.Helper()
	s := openAt(t, filepath.Join(t.TempDir(), "chima.db"))
	c := &testClock{t: base}
	s.now = c.now
	return s, c
}

func TestOpenCreatesFileAndDirectory(t *testing.T) {
	if onPostgres() {
		t.Skip("SQLite's file; PostgreSQL has none")
	}
	tests := []struct {
		name string
		rel  string
	}{
		{"plain file", "chima.db"},
		{"missing nested directory", "a/b/chima.db"},
		{"URI-special characters in the path", "we?ird#na%20me/chi ma.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tt.rel)
			s := openAt(t, path)
			if _, _, err := s.KVGet(context.Background(), "ns", "k"); err != nil {
				t.Fatalf("KVGet on new store: %v", err)
			}
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("database file not at %s: %v", path, err)
			}
		})
	}
}

func TestOpenRejectsUnsupportedDrivers(t *testing.T) {
	tests := []struct {
		driver, dsn, want string
	}{
		{"mysql", "x", "unknown store driver"},
		{"postgres", "postgres://127.0.0.1:1/chima?connect_timeout=2", "connect to postgres"},
		{"postgres", "postgres://a b@/:x", "postgres dsn"},
		{"sqlite", "", "empty dsn"},
	}
	for _, tt := range tests {
		t.Run(tt.driver+"/"+tt.dsn, func(t *testing.T) {
			s, err := Open(context.Background(), tt.driver, tt.dsn)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%q, %q) succeeded, want error containing %q", tt.driver, tt.dsn, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open(%q, %q) = %v, want error containing %q", tt.driver, tt.dsn, err, tt.want)
			}
		})
	}
}

func TestMigrationsAreIdempotentOnReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chima.db")

	s := openAt(t, path)
	if err := s.KVSet(ctx, "deploy", "last", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for i := range 3 {
		s := openAt(t, path)
		rows, err := s.DB().QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		rows.Close()
		if len(got) != len(migrations) {
			t.Fatalf("reopen %d: schema_migrations = %v, want each of %d versions once", i, got, len(migrations))
		}
		for j, m := range migrations {
			if got[j] != m.version {
				t.Fatalf("reopen %d: schema_migrations = %v, want versions of %v", i, got, migrations)
			}
		}
		v, ok, err := s.KVGet(ctx, "deploy", "last")
		if err != nil || !ok || string(v) != "v1" {
			t.Fatalf("reopen %d: KVGet = %q, %v, %v; want data kept", i, v, ok, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenRefusesSchemaNewerThanBinary(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chima.db")
	s := openAt(t, path)
	future := migrations[len(migrations)-1].version + 1
	if _, err := s.DB().ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`), future); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := tryOpenAt(t, path)
	if err == nil {
		_ = s2.Close()
		t.Fatal("Open of a database from a newer binary succeeded, want error")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open error = %v, want it to say the schema is newer", err)
	}
}

func TestRebindNumbersPlaceholdersForPostgresOnly(t *testing.T) {
	tests := []struct {
		name  string
		d     dialect
		query string
		want  string
	}{
		{"sqlite unchanged", dialectSQLite, `SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = ? AND c = ?`},
		{"postgres numbered", dialectPostgres, `SELECT a FROM t WHERE b = ? AND c IN (?, ?)`, `SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)`},
		{"postgres without placeholders", dialectPostgres, `SELECT 1`, `SELECT 1`},
		{"question mark in string literal", dialectPostgres, `SELECT '?', 'it''s ?' WHERE x = ?`, `SELECT '?', 'it''s ?' WHERE x = $1`},
		{"question mark in quoted identifier", dialectPostgres, `SELECT "a?" FROM t WHERE x = ?`, `SELECT "a?" FROM t WHERE x = $1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.rebind(tt.query); got != tt.want {
				t.Errorf("rebind(%q) = %q, want %q", tt.query, got, tt.want)
			}
		})
	}
}

func TestMigrationDDLExpandsForEachDialect(t *testing.T) {
	for _, d := range []dialect{dialectSQLite, dialectPostgres} {
		for _, m := range migrations {
			for _, stmt := range m.stmts {
				if got := d.ddl(stmt); strings.Contains(got, "{{") {
					t.Errorf("%s: unexpanded macro in %q", d, got)
				}
			}
		}
	}
}

func TestErrorsWrapContext(t *testing.T) {
	s, _ := newStore(t)
	_, err := s.GetJob(context.Background(), 42)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "get job 42") {
		t.Fatalf("GetJob(42) = %v, want wrapped ErrNotFound naming the job", err)
	}
}

func TestReplicasOpeningOneDatabaseTogetherMigrateItOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chima.db")
	if onPostgres() {
		postgresDSN(t, path) // the schema exists before the replicas race
	}
	const replicas = 4
	stores := make([]*Store, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = tryOpenAt(t, path)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: Open: %v", i, err)
		}
		defer stores[i].Close()
	}
	var n, distinct int
	if err := stores[0].DB().QueryRow(`SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != len(migrations) || distinct != len(migrations) {
		t.Errorf("schema_migrations has %d rows (%d versions), want each of the %d migrations once", n, distinct, len(migrations))
	}
}

func TestASecondBotOfOneReplicaIdIsRefusedWhileTheFirstRuns(t *testing.T) {
	if !onPostgres() {
		t.Skip("SQLite stores are held by cmd/chima's lock file")
	}
	path := filepath.Join(t.TempDir(), "chima.db")
	first, second, other := openAt(t, path), openAt(t, path), openAt(t, path)
	first.SetReplica(Replica{ID: "r1"})
	second.SetReplica(Replica{ID: "r1"})
	other.SetReplica(Replica{ID: "r2"})
	ctx := context.Background()
	ol, err := other.HoldRunLock(ctx)
	if err != nil {
		t.Fatalf("another replica id: %v", err)
	}
	defer ol.Close()
	held, err := first.HoldRunLock(ctx)
	if err != nil {
		t.Fatalf("first bot: %v", err)
	}
	if l, err := second.HoldRunLock(ctx); !errors.Is(err, ErrInUse) {
		if l != nil {
			l.Close()
		}
		t.Fatalf("second bot while the first runs: err = %v, want ErrInUse", err)
	}
	if err := held.Close(); err != nil {
		t.Fatalf("release: %v", err)
	}
	l, err := second.HoldRunLock(ctx)
	if err != nil {
		t.Fatalf("second bot after the first stopped: %v", err)
	}
	l.Close()
}
