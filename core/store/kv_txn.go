package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// KVCheck is a condition of KVTransaction: Key holds exactly Value. An
// absent key fails it.
type KVCheck struct {
	Key   string
	Value []byte
}

// KVWrite is a write of KVTransaction: Key set to Value, or deleted.
type KVWrite struct {
	Key    string
	Value  []byte
	Delete bool
}

// KVConflict is the check a KVTransaction failed on, and what its key holds
// now (Found unset when it is absent).
type KVConflict struct {
	Key     string
	Current []byte
	Found   bool
}

// KVTransaction makes writes in namespace ns, in order, only if every check
// holds, all in one transaction: atomic across every process on the store,
// and one commit where separate calls would make one each. It returns
// whether it committed, and otherwise the first check that failed.
//
// The rows of every key it touches are read FOR UPDATE on PostgreSQL
// (SQLite's transactions take the write lock up front), so no
// compare-and-swap or write of those keys by another replica lands between
// the checks and the writes.
func (s *Store) KVTransaction(ctx context.Context, ns string, checks []KVCheck, writes []KVWrite) (committed bool, conflict KVConflict, err error) {
	for _, c := range checks {
		if err := checkKV(ns, c.Key); err != nil {
			return false, KVConflict{}, fmt.Errorf("kv transaction: check: %w", err)
		}
	}
	for _, w := range writes {
		if err := checkKV(ns, w.Key); err != nil {
			return false, KVConflict{}, fmt.Errorf("kv transaction: write: %w", err)
		}
	}
	if len(checks)+len(writes) == 0 {
		return true, KVConflict{}, nil
	}
	// Every key the transaction touches is read, and on PostgreSQL locked,
	// in one statement in key order: two transactions that touch the same
	// keys lock them in the same order and cannot deadlock.
	keys := make([]string, 0, len(checks)+len(writes))
	for _, c := range checks {
		keys = append(keys, c.Key)
	}
	for _, w := range writes {
		keys = append(keys, w.Key)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	query := `SELECT key, value FROM kv WHERE ns = ? AND key IN (?` + strings.Repeat(", ?", len(keys)-1) + `) ORDER BY key` + s.d.forUpdate()
	args := make([]any, 0, 1+len(keys))
	args = append(args, ns)
	for _, k := range keys {
		args = append(args, k)
	}
	// Writes in order come to the last write of each key: one DELETE of
	// the keys deleted last and one multi-row upsert of those set last,
	// two statements however many writes (a round trip each on
	// PostgreSQL), with the same outcome as the writes one by one.
	last := make(map[string]KVWrite, len(writes))
	for _, w := range writes {
		last[w.Key] = w
	}
	var deletes, sets []string
	for _, k := range keys {
		if w, ok := last[k]; ok && w.Delete {
			deletes = append(deletes, k)
		} else if ok {
			sets = append(sets, k)
		}
	}
	deleteQuery := `DELETE FROM kv WHERE ns = ? AND key IN (?` + strings.Repeat(", ?", max(len(deletes)-1, 0)) + `)`
	deleteArgs := []any{ns}
	for _, k := range deletes {
		deleteArgs = append(deleteArgs, k)
	}
	now := s.now().UnixMilli()
	upsertQuery := `INSERT INTO kv (ns, key, value, updated_at) VALUES (?, ?, ?, ?)` + strings.Repeat(", (?, ?, ?, ?)", max(len(sets)-1, 0)) +
		` ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`
	var upsertArgs []any
	for _, k := range sets {
		upsertArgs = append(upsertArgs, ns, k, nonNilBytes(last[k].Value), now)
	}
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		committed, conflict = false, KVConflict{}
		rows, err := s.txQuery(ctx, tx, s.q(query), args...)
		if err != nil {
			return err
		}
		current := make(map[string][]byte, len(keys))
		for rows.Next() {
			var k string
			var v []byte
			if err := rows.Scan(&k, &v); err != nil {
				_ = rows.Close()
				return err
			}
			current[k] = nonNilBytes(v)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, c := range checks {
			cur, found := current[c.Key]
			if !found || !bytes.Equal(cur, c.Value) {
				conflict = KVConflict{Key: c.Key, Current: cur, Found: found}
				return nil
			}
		}
		if len(deletes) > 0 {
			if _, err := s.txExec(ctx, tx, s.q(deleteQuery), deleteArgs...); err != nil {
				return err
			}
		}
		if len(sets) > 0 {
			if _, err := s.txExec(ctx, tx, s.q(upsertQuery), upsertArgs...); err != nil {
				return err
			}
		}
		committed = true
		return nil
	})
	if err != nil {
		return false, KVConflict{}, fmt.Errorf("kv transaction in %s: %w", ns, err)
	}
	return committed, conflict, nil
}
