package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
)

// ErrNotCounter is KVIncrement's error for a key whose value is not a
// decimal integer: the plugin stored something else there.
var ErrNotCounter = errors.New("not a decimal counter")

// KVCompareAndSwap sets key in namespace ns to value only if it still holds
// old (or, with oldAbsent, only if it does not exist), in one transaction:
// atomic across every process on the store. It returns whether it wrote,
// and the value stored now (value when swapped, the winner's otherwise).
func (s *Store) KVCompareAndSwap(ctx context.Context, ns, key string, old []byte, oldAbsent bool, value []byte) (swapped bool, current []byte, found bool, err error) {
	if err := checkKV(ns, key); err != nil {
		return false, nil, false, fmt.Errorf("kv compare-and-swap: %w", err)
	}
	if value == nil {
		value = []byte{}
	}
	// The usual case first, in one statement without a transaction: the
	// key holds old (a lease given back, a record as read), or is absent
	// for a create. One UPDATE or INSERT is atomic on its own; when it
	// writes nothing, the transaction below reads what is there and
	// decides, as if this had not been tried.
	if ok, err := s.kvSwapOnce(ctx, ns, key, old, oldAbsent, value); err != nil {
		return false, nil, false, fmt.Errorf("kv compare-and-swap %s/%s: %w", ns, key, err)
	} else if ok {
		return true, value, true, nil
	}
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		var cur []byte
		err := s.txQueryRow(ctx, tx, s.q(`SELECT value FROM kv WHERE ns = ? AND key = ?`+s.d.forUpdate()), ns, key).Scan(&cur)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if !oldAbsent {
				return nil
			}
			// Two creators race on the primary key: the loser inserts
			// nothing and reads the winner's value.
			res, err := s.txExec(ctx, tx, s.q(`INSERT INTO kv (ns, key, value, updated_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (ns, key) DO NOTHING`), ns, key, value, s.now().UnixMilli())
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				swapped, current, found = true, value, true
				return nil
			}
			if err := s.txQueryRow(ctx, tx, s.q(`SELECT value FROM kv WHERE ns = ? AND key = ?`), ns, key).Scan(&cur); err != nil {
				return err
			}
			current, found = nonNilBytes(cur), true
			return nil
		case err != nil:
			return err
		}
		current, found = nonNilBytes(cur), true
		if oldAbsent || !bytes.Equal(cur, old) {
			return nil
		}
		if _, err := s.txExec(ctx, tx, s.q(`UPDATE kv SET value = ?, updated_at = ? WHERE ns = ? AND key = ?`),
			value, s.now().UnixMilli(), ns, key); err != nil {
			return err
		}
		swapped, current = true, value
		return nil
	})
	if err != nil {
		return false, nil, false, fmt.Errorf("kv compare-and-swap %s/%s: %w", ns, key, err)
	}
	return swapped, current, found, nil
}

// kvSwapOnce is KVCompareAndSwap's attempt in one statement; it reports
// whether it wrote. old's NULL (a nil slice) matches no value.
func (s *Store) kvSwapOnce(ctx context.Context, ns, key string, old []byte, oldAbsent bool, value []byte) (bool, error) {
	var res sql.Result
	var err error
	if oldAbsent {
		res, err = s.exec(ctx, s.q(`INSERT INTO kv (ns, key, value, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (ns, key) DO NOTHING`), ns, key, value, s.now().UnixMilli())
	} else {
		if old == nil {
			return false, nil
		}
		res, err = s.exec(ctx, s.q(`UPDATE kv SET value = ?, updated_at = ? WHERE ns = ? AND key = ? AND value = ?`),
			value, s.now().UnixMilli(), ns, key, old)
	}
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// KVIncrement adds delta to the decimal counter at key in namespace ns (an
// absent key counts as 0) and returns the new value, atomically across
// every process on the store. A key holding something other than a decimal
// integer is an error, and is left alone.
func (s *Store) KVIncrement(ctx context.Context, ns, key string, delta int64) (int64, error) {
	if err := checkKV(ns, key); err != nil {
		return 0, fmt.Errorf("kv increment: %w", err)
	}
	var n int64
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		// Create the row first so that FOR UPDATE has a row to lock when
		// two replicas start a counter at once.
		if _, err := s.txExec(ctx, tx, s.q(`INSERT INTO kv (ns, key, value, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (ns, key) DO NOTHING`), ns, key, []byte("0"), s.now().UnixMilli()); err != nil {
			return err
		}
		var cur []byte
		if err := s.txQueryRow(ctx, tx, s.q(`SELECT value FROM kv WHERE ns = ? AND key = ?`+s.d.forUpdate()), ns, key).Scan(&cur); err != nil {
			return err
		}
		v, err := strconv.ParseInt(string(bytes.TrimSpace(cur)), 10, 64)
		if err != nil {
			return fmt.Errorf("the value %.20q is %w", cur, ErrNotCounter)
		}
		n = v + delta
		_, err = s.txExec(ctx, tx, s.q(`UPDATE kv SET value = ?, updated_at = ? WHERE ns = ? AND key = ?`),
			[]byte(strconv.FormatInt(n, 10)), s.now().UnixMilli(), ns, key)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("kv increment %s/%s: %w", ns, key, err)
	}
	return n, nil
}

// nonNilBytes returns b, or an empty slice for nil: a stored value exists.
func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
