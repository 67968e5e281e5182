package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// maxLogChunk bounds one appended chunk; larger appends are split.
const maxLogChunk = 64 << 10

// AppendLog appends data to the log name of namespace ns (a plugin) and
// returns the log's new size in bytes.
func (s *Store) AppendLog(ctx context.Context, ns, name string, data []byte) (int64, error) {
	if ns == "" || name == "" {
		return 0, fmt.Errorf("append log: empty namespace or name")
	}
	var size int64
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		if err := s.txQueryRow(ctx, tx, s.q(`SELECT COALESCE(MAX(off + length(data)), 0)
			FROM plugin_logs WHERE ns = ? AND name = ?`), ns, name).Scan(&size); err != nil {
			return err
		}
		now := s.now().UnixMilli()
		for len(data) > 0 {
			n := min(len(data), maxLogChunk)
			if _, err := s.txExec(ctx, tx, s.q(`INSERT INTO plugin_logs (ns, name, off, data, created_at)
				VALUES (?, ?, ?, ?, ?)`), ns, name, size, data[:n], now); err != nil {
				return err
			}
			size += int64(n)
			data = data[n:]
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("append log %s/%s: %w", ns, name, err)
	}
	return size, nil
}

// ReadLog returns up to limit bytes (all when limit <= 0) of log name from
// offset, the log's total size, and whether it exists.
func (s *Store) ReadLog(ctx context.Context, ns, name string, offset, limit int64) (data []byte, size int64, found bool, err error) {
	offset = max(offset, 0)
	rows, err := s.query(ctx, s.q(`SELECT off, data FROM plugin_logs
		WHERE ns = ? AND name = ? AND off + length(data) > ? ORDER BY off`), ns, name, offset)
	if err != nil {
		return nil, 0, false, fmt.Errorf("read log %s/%s: %w", ns, name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var off int64
		var chunk []byte
		if err := rows.Scan(&off, &chunk); err != nil {
			return nil, 0, false, fmt.Errorf("read log %s/%s: %w", ns, name, err)
		}
		if skip := offset - off; skip > 0 {
			chunk = chunk[skip:]
		}
		if limit > 0 && int64(len(data)+len(chunk)) > limit {
			chunk = chunk[:limit-int64(len(data))]
		}
		data = append(data, chunk...)
		if limit > 0 && int64(len(data)) >= limit {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, false, fmt.Errorf("read log %s/%s: %w", ns, name, err)
	}
	rows.Close()
	err = s.queryRow(ctx, s.q(`SELECT COUNT(*), COALESCE(MAX(off + length(data)), 0)
		FROM plugin_logs WHERE ns = ? AND name = ?`), ns, name).Scan(new(int64), &size)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("read log %s/%s: %w", ns, name, err)
	}
	return data, size, size > 0, nil
}
