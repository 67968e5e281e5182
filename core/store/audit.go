package store

import (
	"context"
	"fmt"
	"time"
)

// defaultLimit is the number of rows returned when a caller asks for 0.
const defaultLimit = 50

// AuditEntry is one line of the audit log: who asked for what, where, and how
// it ended.
type AuditEntry struct {
	ID        int64
	Time      time.Time // filled with the current time when zero
	RequestID string
	Adapter   string
	Room      string
	UserID    string
	UserName  string
	Text      string
	Plugin    string
	Command   string
	Outcome   string
	Detail    string
	Duration  time.Duration
	// Via says how the request came when it was not typed: "button <ref>"
	// for a click on a command button, "action <ref>" for a click on a
	// plugin's action button, where ref is the message that carried the
	// button (chat.MessageRef.String). Empty for a typed command.
	Via string
}

// RecordAudit appends e to the audit log (e.ID is ignored) and returns the new
// entry's id.
func (s *Store) RecordAudit(ctx context.Context, e AuditEntry) (int64, error) {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	var id int64
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO audit_log
		(at, request_id, adapter, room, user_id, user_name, text, plugin, command, outcome, detail, duration_ns, via)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`),
		e.Time.UnixMilli(), e.RequestID, e.Adapter, e.Room, e.UserID, e.UserName, e.Text,
		e.Plugin, e.Command, e.Outcome, e.Detail, int64(e.Duration), e.Via,
	).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record audit: %w", err)
	}
	return id, nil
}

// Audit returns up to limit audit entries, newest first (by time, then by
// id). A limit <= 0 means 50.
func (s *Store) Audit(ctx context.Context, limit int) ([]AuditEntry, error) {
	return s.AuditWhere(ctx, AuditFilter{Limit: limit})
}
