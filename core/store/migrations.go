package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migration is one step of the schema. Versions are applied in order, each
// in its own transaction, and recorded in schema_migrations. Never edit a
// released migration: append a new one.
type migration struct {
	version int
	name    string
	stmts   []string // may use the {{ID}} / {{BLOB}} macros, see dialect.ddl
}

var migrations = []migration{
	{
		version: 1,
		name:    "initial schema",
		stmts: []string{
			`CREATE TABLE audit_log (
				id {{ID}},
				at BIGINT NOT NULL,
				request_id TEXT NOT NULL DEFAULT '',
				adapter TEXT NOT NULL DEFAULT '',
				room TEXT NOT NULL DEFAULT '',
				user_id TEXT NOT NULL DEFAULT '',
				user_name TEXT NOT NULL DEFAULT '',
				text TEXT NOT NULL DEFAULT '',
				plugin TEXT NOT NULL DEFAULT '',
				command TEXT NOT NULL DEFAULT '',
				outcome TEXT NOT NULL DEFAULT '',
				detail TEXT NOT NULL DEFAULT '',
				duration_ns BIGINT NOT NULL DEFAULT 0
			)`,
			`CREATE INDEX audit_log_at ON audit_log (at)`,

			`CREATE TABLE kv (
				ns TEXT NOT NULL,
				key TEXT NOT NULL,
				value {{BLOB}} NOT NULL,
				updated_at BIGINT NOT NULL,
				PRIMARY KEY (ns, key)
			)`,

			`CREATE TABLE locks (
				name TEXT NOT NULL PRIMARY KEY,
				owner TEXT NOT NULL,
				reason TEXT NOT NULL DEFAULT '',
				acquired_at BIGINT NOT NULL,
				expires_at BIGINT,
				job_id BIGINT NOT NULL DEFAULT 0
			)`,
			`CREATE INDEX locks_job ON locks (job_id)`,

			`CREATE TABLE jobs (
				id {{ID}},
				plugin TEXT NOT NULL,
				kind TEXT NOT NULL,
				payload {{BLOB}},
				queue_key TEXT NOT NULL DEFAULT '',
				notify_adapter TEXT NOT NULL DEFAULT '',
				notify_room TEXT NOT NULL DEFAULT '',
				notify_message_id TEXT NOT NULL DEFAULT '',
				notify_thread_id TEXT NOT NULL DEFAULT '',
				origin_request_id TEXT NOT NULL DEFAULT '',
				state TEXT NOT NULL,
				attempt INTEGER NOT NULL DEFAULT 0,
				worker TEXT NOT NULL DEFAULT '',
				detail TEXT NOT NULL DEFAULT '',
				created_at BIGINT NOT NULL,
				run_after BIGINT NOT NULL,
				started_at BIGINT,
				finished_at BIGINT
			)`,
			// The claim query filters on state and queue_key and
			// orders by id.
			`CREATE INDEX jobs_claim ON jobs (state, queue_key, id)`,
			`CREATE INDEX jobs_origin ON jobs (origin_request_id, state)`,
			// The database itself guarantees at most one running job
			// per non-empty queue key, whatever the claim query does
			// under a future multi-writer engine. Partial indexes work
			// on SQLite and PostgreSQL alike.
			`CREATE UNIQUE INDEX jobs_running_key ON jobs (queue_key)
				WHERE state = 'running' AND queue_key <> ''`,
		},
	},
	{
		version: 2,
		name:    "plugin logs and webhook deliveries",
		stmts: []string{
			// A log is a sequence of chunks keyed by their byte offset, so
			// an append is one INSERT, never a rewrite of the whole log.
			`CREATE TABLE plugin_logs (
				ns TEXT NOT NULL,
				name TEXT NOT NULL,
				off BIGINT NOT NULL,
				data {{BLOB}} NOT NULL,
				created_at BIGINT NOT NULL,
				PRIMARY KEY (ns, name, off)
			)`,
			// Webhook deliveries already handled, to drop redeliveries.
			`CREATE TABLE webhook_deliveries (
				source TEXT NOT NULL,
				delivery_id TEXT NOT NULL,
				received_at BIGINT NOT NULL,
				PRIMARY KEY (source, delivery_id)
			)`,
		},
	},
	{
		version: 3,
		name:    "webhook deliveries recorded before they are handled",
		stmts: []string{
			// A delivery is recorded (with its payload) before it is
			// handed to plugins, and marked handled only once every
			// subscribed plugin took it. Rows from version 2 were
			// recorded as seen and are kept as handled.
			`ALTER TABLE webhook_deliveries ADD COLUMN event TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE webhook_deliveries ADD COLUMN payload {{BLOB}}`,
			`ALTER TABLE webhook_deliveries ADD COLUMN headers TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE webhook_deliveries ADD COLUMN state TEXT NOT NULL DEFAULT 'handled'`,
			`ALTER TABLE webhook_deliveries ADD COLUMN handled_by TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE webhook_deliveries ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1`,
			`ALTER TABLE webhook_deliveries ADD COLUMN last_error TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE webhook_deliveries ADD COLUMN claimed_until BIGINT NOT NULL DEFAULT 0`,
			`ALTER TABLE webhook_deliveries ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0`,
			`CREATE INDEX webhook_deliveries_state ON webhook_deliveries (state, received_at)`,
		},
	},
	{
		version: 4,
		name:    "jobs say what they are",
		stmts: []string{
			`ALTER TABLE jobs ADD COLUMN title TEXT NOT NULL DEFAULT ''`,
		},
	},
	{
		version: 5,
		name:    "audit entries say when a click made them",
		stmts: []string{
			// "" for a typed command, "button <ref>" or "action <ref>"
			// for a click on a button of message ref.
			`ALTER TABLE audit_log ADD COLUMN via TEXT NOT NULL DEFAULT ''`,
		},
	},
	{
		version: 6,
		name:    "schedules fire each slot once",
		stmts: []string{
			// One row per (schedule, slot) that was fired: the UNIQUE key is
			// what makes two schedulers on one store fire a slot once.
			// outcome is '' while the command runs.
			`CREATE TABLE schedule_runs (
				schedule TEXT NOT NULL,
				slot BIGINT NOT NULL,
				started_at BIGINT NOT NULL,
				finished_at BIGINT NOT NULL DEFAULT 0,
				outcome TEXT NOT NULL DEFAULT '',
				request_id TEXT NOT NULL DEFAULT '',
				UNIQUE (schedule, slot)
			)`,
		},
	},
	{
		version: 7,
		name:    "replicas: job leases, cancel requests, inbound de-duplication",
		stmts: []string{
			// A running job belongs to the replica that claimed it for as
			// long as its lease (unix ms, by the database's clock) is
			// renewed; another replica ends it as interrupted once the
			// lease lapsed. '' and 0 for jobs claimed before replicas.
			`ALTER TABLE jobs ADD COLUMN replica TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE jobs ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0`,
			// Set by any replica to have the owner stop a running job.
			`ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0`,
			// Replica first: with state first, the planner took this
			// index for the claim and sorted every queued job by id.
			`CREATE INDEX jobs_replica ON jobs (replica, state)`,
			// The claim walks queued jobs in id order and stops at the
			// first eligible one.
			`CREATE INDEX jobs_state_id ON jobs (state, id)`,
			// Which replica recorded a decision: a restarting replica marks
			// only its own unfinished commands interrupted.
			`ALTER TABLE audit_log ADD COLUMN replica TEXT NOT NULL DEFAULT ''`,
			// Chat messages already taken by a replica: a service that
			// delivers each message to every connection (Mattermost's
			// WebSocket) gets one answer.
			`CREATE TABLE inbound_messages (
				adapter TEXT NOT NULL,
				message_id TEXT NOT NULL,
				replica TEXT NOT NULL,
				received_at BIGINT NOT NULL,
				PRIMARY KEY (adapter, message_id)
			)`,
			`CREATE INDEX inbound_messages_at ON inbound_messages (received_at)`,
		},
	},
	{
		version: 8,
		name:    "approval requests and their votes",
		stmts: []string{
			// One row per command waiting for (or past) approval: the
			// exact parsed command, who asked where, who may approve, and
			// its state (pending, approved, denied, expired, done). The
			// move from approved to done is what runs the command, once.
			`CREATE TABLE approval_requests (
				id {{ID}},
				plugin TEXT NOT NULL,
				command TEXT NOT NULL,
				args TEXT NOT NULL DEFAULT '{}',
				text TEXT NOT NULL DEFAULT '',
				requester TEXT NOT NULL,
				requester_adapter TEXT NOT NULL DEFAULT '',
				requester_user TEXT NOT NULL DEFAULT '',
				requester_name TEXT NOT NULL DEFAULT '',
				adapter TEXT NOT NULL DEFAULT '',
				room TEXT NOT NULL DEFAULT '',
				room_name TEXT NOT NULL DEFAULT '',
				thread_id TEXT NOT NULL DEFAULT '',
				message_id TEXT NOT NULL DEFAULT '',
				direct INTEGER NOT NULL DEFAULT 0,
				approvers TEXT NOT NULL DEFAULT '[]',
				count INTEGER NOT NULL DEFAULT 1,
				reason TEXT NOT NULL DEFAULT '',
				confirm INTEGER NOT NULL DEFAULT 0,
				request_id TEXT NOT NULL DEFAULT '',
				created_at BIGINT NOT NULL,
				expires_at BIGINT NOT NULL,
				state TEXT NOT NULL,
				updated_at BIGINT NOT NULL
			)`,
			`CREATE INDEX approval_requests_state ON approval_requests (state, expires_at)`,
			// Each approval or denial; a person votes once on a request
			// (the UNIQUE key makes each approval single use).
			`CREATE TABLE approval_votes (
				request BIGINT NOT NULL,
				voter TEXT NOT NULL,
				adapter TEXT NOT NULL DEFAULT '',
				user_id TEXT NOT NULL DEFAULT '',
				user_name TEXT NOT NULL DEFAULT '',
				approve INTEGER NOT NULL,
				reason TEXT NOT NULL DEFAULT '',
				at BIGINT NOT NULL,
				UNIQUE (request, voter)
			)`,
		},
	},
	{
		version: 9,
		name:    "webhook deliveries handed to each plugin as a durable job",
		stmts: []string{
			// One row per (delivery, plugin): the primary key is what makes
			// a delivery reach each subscribed plugin once. A pending row
			// is due at next_at; a running one is claimed until
			// claimed_until (its process may have died after that).
			`CREATE TABLE event_deliveries (
				source TEXT NOT NULL,
				delivery_id TEXT NOT NULL,
				plugin TEXT NOT NULL,
				state TEXT NOT NULL,
				attempts INTEGER NOT NULL DEFAULT 0,
				last_error TEXT NOT NULL DEFAULT '',
				next_at BIGINT NOT NULL,
				claimed_until BIGINT NOT NULL DEFAULT 0,
				created_at BIGINT NOT NULL,
				updated_at BIGINT NOT NULL,
				finished_at BIGINT NOT NULL DEFAULT 0,
				PRIMARY KEY (source, delivery_id, plugin)
			)`,
			`CREATE INDEX event_deliveries_due ON event_deliveries (state, next_at)`,
			`CREATE INDEX event_deliveries_created ON event_deliveries (created_at)`,
		},
	},
}

// migrate creates schema_migrations if needed and applies every migration not
// yet recorded there. It refuses a database whose schema is newer than this
// binary knows.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER NOT NULL PRIMARY KEY,
		applied_at BIGINT NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	latest := 0
	for i, m := range migrations {
		if m.version <= latest || (i > 0 && m.version != migrations[i-1].version+1) {
			return fmt.Errorf("migrate: migration %d (%s) is out of order", m.version, m.name)
		}
		latest = m.version
	}
	var current sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if current.Int64 > int64(latest) {
		return fmt.Errorf("migrate: database schema version %d is newer than this binary supports (%d)", current.Int64, latest)
	}
	for _, m := range migrations {
		if err := s.withTx(ctx, func(tx *sql.Tx) error { return s.apply(ctx, tx, m) }); err != nil {
			return fmt.Errorf("migrate: version %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

// apply runs one migration inside tx unless it is already recorded. The check
// is repeated inside the transaction so that two processes opening the same
// database at once do not both apply it.
func (s *Store) apply(ctx context.Context, tx *sql.Tx, m migration) error {
	var n int
	if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.version).Scan(&n); err != nil {
		return fmt.Errorf("check applied: %w", err)
	}
	if n > 0 {
		return nil
	}
	for _, stmt := range m.stmts {
		if _, err := tx.ExecContext(ctx, s.d.ddl(stmt)); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`),
		m.version, s.now().UnixMilli()); err != nil {
		return fmt.Errorf("record version: %w", err)
	}
	return nil
}
