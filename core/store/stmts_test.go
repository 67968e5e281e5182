package store

import (
	"context"
	"testing"
)

// cachedQueries returns how many statements s keeps prepared.
func cachedQueries(s *Store) int {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	return len(s.stmts)
}

func TestStatementCache(t *testing.T) {
	if onPostgres() {
		t.Skip("pgx keeps its own statement cache; the store's is SQLite's")
	}
	ctx := context.Background()
	tests := []struct {
		name string
		// op runs against a store whose key "k" holds "v1", twice.
		op func(s *Store) error
	}{
		{"a read outside a transaction", func(s *Store) error {
			v, ok, err := s.KVGet(ctx, "ns", "k")
			if err == nil && (!ok || string(v) != "v1") {
				t.Errorf("KVGet = %q, %v; want v1", v, ok)
			}
			return err
		}},
		{"a compare-and-swap, first seen inside a transaction", func(s *Store) error {
			// A stale old value misses the one-statement fast path and
			// falls through to the transaction.
			swapped, cur, _, err := s.KVCompareAndSwap(ctx, "ns", "k", []byte("v0"), false, []byte("v2"))
			if err == nil && (swapped || string(cur) != "v1") {
				t.Errorf("KVCompareAndSwap = %v, %q; want not swapped, v1", swapped, cur)
			}
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			if err := s.KVSet(ctx, "ns", "k", []byte("v1")); err != nil {
				t.Fatal(err)
			}
			before := cachedQueries(s)
			if err := tt.op(s); err != nil {
				t.Fatal(err)
			}
			after := cachedQueries(s)
			if after <= before {
				t.Fatalf("%d statements prepared after the first run, %d before; want more", after, before)
			}
			if err := tt.op(s); err != nil {
				t.Fatal(err)
			}
			if again := cachedQueries(s); again != after {
				t.Fatalf("%d statements prepared after the second run, %d after the first; want the same", again, after)
			}
		})
	}
}

func TestAClosedStoreKeepsNoStatements(t *testing.T) {
	if onPostgres() {
		t.Skip("the store's statement cache is SQLite's")
	}
	s, err := Open(context.Background(), "sqlite", t.TempDir()+"/chima.db")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.KVSet(context.Background(), "ns", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.KVGet(context.Background(), "ns", "k"); err == nil {
		t.Fatal("KVGet on a closed store succeeded")
	}
	if n := cachedQueries(s); n != 0 {
		t.Fatalf("%d statements kept after Close; want 0", n)
	}
}
