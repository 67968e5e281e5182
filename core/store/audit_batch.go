package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// auditRowsPerInsert bounds one multi-row INSERT: 12 parameters a row stays
// far below every engine's parameter limit.
const auditRowsPerInsert = 64

// RecordAudits records many audit entries in one transaction, with
// multi-row INSERTs. The bot's audit writer batches entries this way so that
// writing the audit log costs little per command even at thousands of
// commands a second: one commit and one statement per batch instead of one
// per entry.
func (s *Store) RecordAudits(ctx context.Context, entries []AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		for len(entries) > 0 {
			n := min(len(entries), auditRowsPerInsert)
			var q strings.Builder
			q.WriteString(`INSERT INTO audit_log
				(at, request_id, adapter, room, user_id, user_name, text, plugin, command, outcome, detail, duration_ns)
				VALUES `)
			args := make([]any, 0, n*12)
			for i, e := range entries[:n] {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
				if e.Time.IsZero() {
					e.Time = s.now()
				}
				args = append(args, e.Time.UnixMilli(), e.RequestID, e.Adapter, e.Room, e.UserID,
					e.UserName, e.Text, e.Plugin, e.Command, e.Outcome, e.Detail, int64(e.Duration))
			}
			if _, err := tx.ExecContext(ctx, s.q(q.String()), args...); err != nil {
				return err
			}
			entries = entries[n:]
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record audits: %w", err)
	}
	return nil
}
