package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
)

// KVGet returns the value stored under key in namespace ns (a plugin's
// name), and whether it exists.
func (s *Store) KVGet(ctx context.Context, ns, key string) ([]byte, bool, error) {
	if err := checkKV(ns, key); err != nil {
		return nil, false, fmt.Errorf("kv get: %w", err)
	}
	var v []byte
	err := s.queryRow(ctx, s.q(`SELECT value FROM kv WHERE ns = ? AND key = ?`), ns, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("kv get %s/%s: %w", ns, key, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, true, nil
}

// KVSet stores value under key in namespace ns, replacing any previous value.
func (s *Store) KVSet(ctx context.Context, ns, key string, value []byte) error {
	if err := checkKV(ns, key); err != nil {
		return fmt.Errorf("kv set: %w", err)
	}
	if value == nil {
		value = []byte{} // the column is NOT NULL; nil and empty are the same value
	}
	_, err := s.exec(ctx, s.q(`INSERT INTO kv (ns, key, value, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`),
		ns, key, value, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("kv set %s/%s: %w", ns, key, err)
	}
	return nil
}

// KVDelete removes key from namespace ns. Deleting a missing key is not an
// error.
func (s *Store) KVDelete(ctx context.Context, ns, key string) error {
	if err := checkKV(ns, key); err != nil {
		return fmt.Errorf("kv delete: %w", err)
	}
	if _, err := s.exec(ctx, s.q(`DELETE FROM kv WHERE ns = ? AND key = ?`), ns, key); err != nil {
		return fmt.Errorf("kv delete %s/%s: %w", ns, key, err)
	}
	return nil
}

// KVList returns the keys of namespace ns that start with prefix, sorted
// bytewise. The prefix is matched literally and case-sensitively ("%" and
// "_" are not wildcards); an empty prefix lists every key.
func (s *Store) KVList(ctx context.Context, ns, prefix string) ([]string, error) {
	if ns == "" {
		return nil, errors.New("kv list: empty namespace")
	}
	query := `SELECT key FROM kv WHERE ns = ?`
	args := []any{ns}
	if cond, cargs := prefixClause("key", prefix); cond != "" {
		query += " AND " + cond
		args = append(args, cargs...)
	}
	rows, err := s.query(ctx, s.q(query+` ORDER BY key`), args...)
	if err != nil {
		return nil, fmt.Errorf("kv list %s: %w", ns, err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("kv list %s: %w", ns, err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("kv list %s: %w", ns, err)
	}
	// SQLite already sorts bytewise; PostgreSQL may sort by locale, so sort
	// here to give the same order on every engine.
	slices.Sort(keys)
	return keys, nil
}

func checkKV(ns, key string) error {
	if ns == "" {
		return errors.New("empty namespace")
	}
	if key == "" {
		return errors.New("empty key")
	}
	return nil
}
