package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// auditRowsPerInsert bounds one multi-row INSERT: 15 parameters a row stays
// far below every engine's parameter limit.
const auditRowsPerInsert = 64

// auditStmt returns the prepared INSERT of n audit rows.
func (s *Store) auditStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	s.auditMu.Lock()
	defer s.auditMu.Unlock()
	if st := s.auditStmts[n]; st != nil {
		return st, nil
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO audit_log (` + auditColumns + `) VALUES `)
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(auditRow)
	}
	st, err := s.db.PrepareContext(ctx, s.q(q.String()))
	if err != nil {
		return nil, fmt.Errorf("prepare audit insert: %w", err)
	}
	if s.auditStmts == nil {
		s.auditStmts = map[int]*sql.Stmt{}
	}
	s.auditStmts[n] = st
	return st, nil
}

// RecordAudits records many audit entries in one transaction, with
// multi-row INSERTs. The bot's audit writer batches entries this way so that
// writing the audit log costs little per command even at thousands of
// commands a second: one commit and one statement per batch instead of one
// per entry.
func (s *Store) RecordAudits(ctx context.Context, entries []AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	// Prepared before the transaction: with SQLite's single connection,
	// preparing inside it would wait for the connection the transaction
	// holds.
	stmts := map[int]*sql.Stmt{}
	for _, n := range []int{min(len(entries), auditRowsPerInsert), len(entries) % auditRowsPerInsert} {
		if n == 0 || stmts[n] != nil {
			continue
		}
		st, err := s.auditStmt(ctx, n)
		if err != nil {
			return fmt.Errorf("record audits: %w", err)
		}
		stmts[n] = st
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		for len(entries) > 0 {
			n := min(len(entries), auditRowsPerInsert)
			stmt := stmts[n]
			args := make([]any, 0, n*auditParams)
			for _, e := range entries[:n] {
				args = s.auditArgs(args, e)
			}
			if _, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...); err != nil {
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
