package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// OutcomeRunning is the outcome of an allowed command's entry from the
// moment the decision is recorded, before the plugin is called, until its
// real outcome replaces it. An entry still "running" after the bot stopped
// belongs to a command the bot never saw end (kill -9, a crash); the next
// bot marks it OutcomeInterrupted at start (InterruptRunningAudits).
const OutcomeRunning = "running"

// OutcomeInterrupted is the outcome of an entry the bot died under.
const OutcomeInterrupted = "interrupted"

// Decision says what the core decided about an entry's request, from its
// outcome: "denied", "rejected" and "unavailable" are decisions that ran
// nothing; every other outcome (ok, running, error, timeout, …) is of a
// request that was allowed to run. The audit log keeps no column of its own
// for it: the outcome of a request that ran nothing is its decision.
func Decision(outcome string) string {
	switch outcome {
	case "denied", "rejected", "unavailable":
		return outcome
	case "":
		return ""
	}
	return "allowed"
}

// RecordDecisions inserts entries in one transaction and returns their ids,
// in order. The bot records an allowed command's entry this way, with
// outcome OutcomeRunning, and waits for it before it calls the plugin: the
// decision is on disk before anything runs. One row at a time inside the
// transaction, so each id is known (RETURNING of a multi-row INSERT keeps
// no promised order); the commit is what costs, and there is one.
func (s *Store) RecordDecisions(ctx context.Context, entries []AuditEntry) ([]int64, error) {
	return s.RecordAuditBatch(ctx, entries, nil, nil)
}

// decisionStmt returns the prepared INSERT of one decision, RETURNING its id.
func (s *Store) decisionStmt(ctx context.Context) (*sql.Stmt, error) {
	s.auditMu.Lock()
	defer s.auditMu.Unlock()
	if s.decisionInsert != nil {
		return s.decisionInsert, nil
	}
	st, err := s.db.PrepareContext(ctx, s.q(`INSERT INTO audit_log (`+auditColumns+`, replica) VALUES `+auditRowReplica+` RETURNING id`))
	if err != nil {
		return nil, fmt.Errorf("prepare decision insert: %w", err)
	}
	s.decisionInsert = st
	return st, nil
}

// AuditOutcome is how a recorded entry ended: it replaces the outcome,
// detail and duration of the entry ID.
type AuditOutcome struct {
	ID       int64
	Outcome  string
	Detail   string
	Duration time.Duration
}

// RecordOutcomes writes the outcomes of entries recorded before by
// RecordDecisions, in one transaction, each by the entry's id (the primary
// key: no scan). An id that matches no entry is an error.
func (s *Store) RecordOutcomes(ctx context.Context, outcomes []AuditOutcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		for _, o := range outcomes {
			res, err := s.txExec(ctx, tx, s.q(`UPDATE audit_log SET outcome = ?, detail = ?, duration_ns = ? WHERE id = ?`),
				o.Outcome, o.Detail, int64(o.Duration), o.ID)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err == nil && n == 0 {
				return fmt.Errorf("audit entry %d not found", o.ID)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	return nil
}

// InterruptRunningAudits marks every entry still OutcomeRunning as
// OutcomeInterrupted, with detail, and returns how many it marked. Only the
// process that owns the store may call it, at start: a running bot's
// entries are running for real. It reads the whole table once (no index on
// outcome), which is a start-up cost, not a per-command one.
func (s *Store) InterruptRunningAudits(ctx context.Context, detail string) (int64, error) {
	// On a shared store only this replica's own unfinished commands are
	// its to end; the others' are still running.
	where, args := `outcome = ?`, []any{OutcomeInterrupted, detail, OutcomeRunning}
	if s.Shared() {
		where += ` AND replica = ?`
		args = append(args, s.replicaID())
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE audit_log SET outcome = ?, detail = ? WHERE `+where), args...) // once, at start
	if err != nil {
		return 0, fmt.Errorf("interrupt running audit entries: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("interrupt running audit entries: %w", err)
	}
	return n, nil
}

// AuditFilter narrows Audit's listing. Zero fields filter nothing.
type AuditFilter struct {
	// User is "adapter:id" (that adapter's user) or a plain id (that id
	// on any adapter, or an entry's user name).
	User string
	// Person is a person of config people: (alice): their entries from
	// every adapter.
	Person string
	// TriggeredBy is the plugin that ran the commands (Host.RunCommand),
	// or "chima" for schedules'.
	TriggeredBy string
	// Command is the command's name (deploy), or plugin/command
	// (deploy/deploy).
	Command string
	// Outcome is the exact outcome (ok, denied, running, …), or "allowed"
	// for every entry whose Decision is allowed.
	Outcome string
	// Since keeps entries at or after this time (the at index serves it).
	Since time.Time
	// Limit is how many entries, newest first; <= 0 means 50.
	Limit int
}

// AuditWhere returns up to f.Limit audit entries that match f, newest first
// (by time, then by id). The filters are SQL conditions: only Since has an
// index (audit_log_at), so combine the others with it on a large log.
func (s *Store) AuditWhere(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if f.Limit <= 0 {
		f.Limit = defaultLimit
	}
	var where []string
	var args []any
	if u := f.User; u != "" {
		if adapter, id, ok := strings.Cut(u, ":"); ok && adapter != "" {
			where = append(where, "adapter = ? AND user_id = ?")
			args = append(args, adapter, id)
		} else {
			where = append(where, "(user_id = ? OR user_name = ?)")
			args = append(args, u, u)
		}
	}
	if f.Person != "" {
		where = append(where, "person = ?")
		args = append(args, f.Person)
	}
	if f.TriggeredBy != "" {
		where = append(where, "triggered_by = ?")
		args = append(args, f.TriggeredBy)
	}
	if c := f.Command; c != "" {
		if plugin, name, ok := strings.Cut(c, "/"); ok {
			where = append(where, "plugin = ? AND command = ?")
			args = append(args, plugin, name)
		} else {
			where = append(where, "command = ?")
			args = append(args, c)
		}
	}
	switch o := f.Outcome; o {
	case "":
	case "allowed":
		where = append(where, "outcome NOT IN ('denied', 'rejected', 'unavailable', '')")
	default:
		where = append(where, "outcome = ?")
		args = append(args, o)
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= ?")
		args = append(args, f.Since.UnixMilli())
	}
	q := `SELECT id, at, request_id, adapter, room, user_id, user_name, text, plugin, command, outcome, detail, duration_ns, via, person, triggered_by
		FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY at DESC, id DESC LIMIT ?"
	args = append(args, f.Limit)
	rows, err := s.db.QueryContext(ctx, s.q(q), args...) // one text per filter: not for the statement cache
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at, dur int64
		if err := rows.Scan(&e.ID, &at, &e.RequestID, &e.Adapter, &e.Room, &e.UserID, &e.UserName,
			&e.Text, &e.Plugin, &e.Command, &e.Outcome, &e.Detail, &dur, &e.Via, &e.Person, &e.TriggeredBy); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		e.Time = fromMillis(sql.NullInt64{Int64: at, Valid: true})
		e.Duration = time.Duration(dur)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}

// RecordAuditBatch writes, in one transaction, the decisions (returning
// their ids in order), final entries and outcomes the bot's audit writer
// gathered: one commit a batch instead of one per kind, since decisions'
// commands wait for it.
func (s *Store) RecordAuditBatch(ctx context.Context, decisions, finals []AuditEntry, outcomes []AuditOutcome) ([]int64, error) {
	if len(decisions)+len(finals)+len(outcomes) == 0 {
		return nil, nil
	}
	var decide, update *sql.Stmt
	var err error
	if len(decisions) > 0 {
		if decide, err = s.decisionStmt(ctx); err != nil {
			return nil, fmt.Errorf("record audit batch: %w", err)
		}
	}
	if len(outcomes) > 0 {
		if update, err = s.outcomeStmt(ctx); err != nil {
			return nil, fmt.Errorf("record audit batch: %w", err)
		}
	}
	stmts := map[int]*sql.Stmt{}
	for _, n := range []int{min(len(finals), auditRowsPerInsert), len(finals) % auditRowsPerInsert} {
		if n == 0 || stmts[n] != nil {
			continue
		}
		if stmts[n], err = s.auditStmt(ctx, n); err != nil {
			return nil, fmt.Errorf("record audit batch: %w", err)
		}
	}
	ids := make([]int64, 0, len(decisions))
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		if decide != nil {
			st := tx.StmtContext(ctx, decide)
			for _, e := range decisions {
				var id int64
				if err := st.QueryRowContext(ctx, append(s.auditArgs(make([]any, 0, auditParams+1), e), s.replicaID())...).Scan(&id); err != nil {
					return fmt.Errorf("decision: %w", err)
				}
				ids = append(ids, id)
			}
		}
		for rest := finals; len(rest) > 0; {
			n := min(len(rest), auditRowsPerInsert)
			args := make([]any, 0, n*auditParams)
			for _, e := range rest[:n] {
				args = s.auditArgs(args, e)
			}
			if _, err := tx.StmtContext(ctx, stmts[n]).ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("entries: %w", err)
			}
			rest = rest[n:]
		}
		if update != nil {
			st := tx.StmtContext(ctx, update)
			for _, o := range outcomes {
				// An outcome whose decision is gone (never written) is
				// skipped, not a reason to lose the rest of the batch.
				if _, err := st.ExecContext(ctx, o.Outcome, o.Detail, int64(o.Duration), o.ID); err != nil {
					return fmt.Errorf("outcome: %w", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record audit batch: %w", err)
	}
	return ids, nil
}

// outcomeStmt returns the prepared UPDATE of one decision's outcome.
func (s *Store) outcomeStmt(ctx context.Context) (*sql.Stmt, error) {
	s.auditMu.Lock()
	defer s.auditMu.Unlock()
	if s.outcomeUpdate != nil {
		return s.outcomeUpdate, nil
	}
	st, err := s.db.PrepareContext(ctx, s.q(`UPDATE audit_log SET outcome = ?, detail = ?, duration_ns = ? WHERE id = ?`))
	if err != nil {
		return nil, fmt.Errorf("prepare outcome update: %w", err)
	}
	s.outcomeUpdate = st
	return st, nil
}
