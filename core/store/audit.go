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
	// Requests the core made itself say what made them: "schedule
	// <name>", "plugin <name>" (Host.RunCommand), "job <id>", "lock
	// <name>".
	Via string
	// Person is the person (config people:) the account belongs to, ""
	// for an account in none: the same on every adapter.
	Person string
	// TriggeredBy is the plugin that ran the command with Host.RunCommand,
	// "chima" for a schedule's, "" for a person's own.
	TriggeredBy string
}

// auditColumns are the columns an INSERT of an entry writes, in the order
// auditArgs gives their values.
const auditColumns = `at, request_id, adapter, room, user_id, user_name, text, plugin, command, outcome, detail, duration_ns, via, person, triggered_by`

// auditParams is the number of auditColumns, and auditRow one row's
// placeholders.
const (
	auditParams = 15
	auditRow    = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	// auditRowReplica is a decision's row: auditColumns and the replica
	// that recorded it.
	auditRowReplica = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

// auditArgs appends the values of e's auditColumns to args; a zero Time is
// now.
func (s *Store) auditArgs(args []any, e AuditEntry) []any {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	return append(args, e.Time.UnixMilli(), e.RequestID, e.Adapter, e.Room, e.UserID, e.UserName, e.Text,
		e.Plugin, e.Command, e.Outcome, e.Detail, int64(e.Duration), e.Via, e.Person, e.TriggeredBy)
}

// RecordAudit appends e to the audit log (e.ID is ignored) and returns the new
// entry's id.
func (s *Store) RecordAudit(ctx context.Context, e AuditEntry) (int64, error) {
	var id int64
	err := s.queryRow(ctx, s.q(`INSERT INTO audit_log (`+auditColumns+`) VALUES `+auditRow+` RETURNING id`),
		s.auditArgs(nil, e)...,
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
