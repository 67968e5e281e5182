package store

import (
	"context"
	"database/sql"
	"fmt"
)

// RecordAudits records many audit entries in one transaction. The bot's
// audit writer batches entries this way so that the audit log keeps up with
// thousands of commands a second on SQLite, where each commit costs a sync.
func (s *Store) RecordAudits(ctx context.Context, entries []AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.withTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, s.q(`INSERT INTO audit_log
			(at, request_id, adapter, room, user_id, user_name, text, plugin, command, outcome, detail, duration_ns)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`))
		if err != nil {
			return fmt.Errorf("prepare audit insert: %w", err)
		}
		defer stmt.Close()
		for _, e := range entries {
			if e.Time.IsZero() {
				e.Time = s.now()
			}
			if _, err := stmt.ExecContext(ctx, e.Time.UnixMilli(), e.RequestID, e.Adapter, e.Room, e.UserID,
				e.UserName, e.Text, e.Plugin, e.Command, e.Outcome, e.Detail, int64(e.Duration)); err != nil {
				return fmt.Errorf("record audit entry: %w", err)
			}
		}
		return nil
	})
}
