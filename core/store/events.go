package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// EventState is where the handing of one delivery to one plugin is.
type EventState string

// Event delivery states.
const (
	// EventPending: waiting to be handed to the plugin, at NextAt or later.
	EventPending EventState = "pending"
	// EventRunning: being handed to the plugin now.
	EventRunning EventState = "running"
	// EventHandled: the plugin took it. Terminal.
	EventHandled EventState = "handled"
	// EventFailed: the plugin refused it or could not take it, attempt
	// after attempt, until the cap. Terminal, until a redelivery re-arms it.
	EventFailed EventState = "failed"
)

// EventKey names the handing of one delivery to one plugin.
type EventKey struct {
	Source, DeliveryID, Plugin string
}

// name is "source:delivery → plugin", for errors. (Not String: an
// EventDelivery, which embeds the key, would print as its key alone.)
func (k EventKey) name() string { return k.Source + ":" + k.DeliveryID + " → " + k.Plugin }

// EventDelivery is one delivery handed to one plugin: a durable job with its
// attempts.
type EventDelivery struct {
	EventKey
	// Event is the sender's event type ("deployment").
	Event    string
	State    EventState
	Attempts int
	// LastError says why the last attempt failed; "" once handled.
	LastError string
	// NextAt is when a pending one is due.
	NextAt time.Time
	// CreatedAt is when the delivery was received for this plugin;
	// UpdatedAt when its state last changed; FinishedAt when it ended
	// (zero while it has not).
	CreatedAt, UpdatedAt, FinishedAt time.Time
	// Payload and Headers are the delivery's, filled by
	// ClaimEventDelivery only.
	Payload []byte
	Headers map[string]string
}

// Retry is how often, and how far apart, a delivery is handed to a plugin
// that does not take it.
type Retry struct {
	// MaxAttempts caps the attempts; the last failed one ends the
	// delivery failed. Default 8.
	MaxAttempts int
	// Backoff is the wait after the first failed attempt, doubled after
	// each next one, up to MaxBackoff. Defaults 1s and 5m.
	Backoff, MaxBackoff time.Duration
}

// DefaultRetry is the Retry of zero fields.
var DefaultRetry = Retry{MaxAttempts: 8, Backoff: time.Second, MaxBackoff: 5 * time.Minute}

// WithDefaults fills in the zero fields of r from DefaultRetry.
func (r Retry) WithDefaults() Retry {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = DefaultRetry.MaxAttempts
	}
	if r.Backoff <= 0 {
		r.Backoff = DefaultRetry.Backoff
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = DefaultRetry.MaxBackoff
	}
	return r
}

// Delay is the wait after failed attempt n (from 1): Backoff·2^(n-1), at
// most MaxBackoff.
func (r Retry) Delay(n int) time.Duration {
	r = r.WithDefaults()
	d := r.Backoff
	for i := 1; i < n && d < r.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.MaxBackoff)
}

// Receipt says what ReceiveDelivery did with a delivery.
type Receipt struct {
	// New: the delivery was not known.
	New bool
	// Queued are the plugins it is to be handed to now: every subscriber
	// of a new delivery, or those whose handing of a known one had failed
	// (a redelivery re-arms them). Empty for a redelivery of a delivery
	// that every plugin took or is taking: one to acknowledge and drop.
	Queued []string
}

// ReceiveDelivery records d durably, payload and all, with one pending
// EventDelivery for each of plugins, in one transaction: once it returns,
// the delivery reaches each of them, whatever happens to the process.
//
// A delivery already recorded is not queued again for a plugin that took it
// or is taking it: only the plugins whose handing ended failed are queued
// again (from attempt 1), with d's payload. A delivery recorded before
// per-plugin handing existed, and not handled then, is queued for the
// plugins that had not taken it.
func (s *Store) ReceiveDelivery(ctx context.Context, d Delivery, plugins []string) (Receipt, error) {
	if d.Source == "" || d.ID == "" {
		return Receipt{}, errors.New("receive delivery: empty source or id")
	}
	headers, err := json.Marshal(d.Headers)
	if err != nil {
		return Receipt{}, fmt.Errorf("receive delivery %s/%s: headers: %w", d.Source, d.ID, err)
	}
	plugins = slices.Compact(slices.Sorted(slices.Values(plugins)))
	var rc Receipt
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		rc = Receipt{}
		now := s.now().UnixMilli()
		state, payload := DeliveryReceived, d.Payload
		if len(plugins) == 0 {
			state, payload = DeliveryHandled, nil // nobody to keep it for
		}
		res, err := s.txExec(ctx, tx, s.q(`INSERT INTO webhook_deliveries
			(source, delivery_id, received_at, event, payload, headers, state, handled_by, attempts, last_error, claimed_until, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, '', 1, '', 0, ?) ON CONFLICT (source, delivery_id) DO NOTHING`),
			d.Source, d.ID, now, d.Event, payload, string(headers), state, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		var queue []string
		if n == 1 {
			rc.New, queue = true, plugins
		} else {
			var rows int
			if err := s.txQueryRow(ctx, tx, s.q(`SELECT COUNT(*) FROM event_deliveries
				WHERE source = ? AND delivery_id = ?`), d.Source, d.ID).Scan(&rows); err != nil {
				return err
			}
			if rows == 0 {
				// Recorded before version 7, or when nobody subscribed.
				var old DeliveryState
				var handledBy string
				if err := s.txQueryRow(ctx, tx, s.q(`SELECT state, handled_by FROM webhook_deliveries
					WHERE source = ? AND delivery_id = ?`), d.Source, d.ID).Scan(&old, &handledBy); err != nil {
					return err
				}
				if old != DeliveryHandled {
					took := splitList(handledBy)
					for _, p := range plugins {
						if !slices.Contains(took, p) {
							queue = append(queue, p)
						}
					}
				}
			} else {
				rearmed, err := s.txQuery(ctx, tx, s.q(`UPDATE event_deliveries
					SET state = ?, attempts = 0, last_error = '', next_at = ?, claimed_until = 0, updated_at = ?, finished_at = 0
					WHERE source = ? AND delivery_id = ? AND state = ?
					RETURNING plugin`), EventPending, now, now, d.Source, d.ID, EventFailed)
				if err != nil {
					return err
				}
				again, err := scanAll(rearmed, func(sc scanner) (string, error) {
					var p string
					return p, sc.Scan(&p)
				})
				if err != nil {
					return err
				}
				slices.Sort(again)
				rc.Queued = again
			}
			if _, err := s.txExec(ctx, tx, s.q(`UPDATE webhook_deliveries SET attempts = attempts + 1, updated_at = ?
				WHERE source = ? AND delivery_id = ?`), now, d.Source, d.ID); err != nil {
				return err
			}
			if len(queue) > 0 || len(rc.Queued) > 0 {
				if _, err := s.txExec(ctx, tx, s.q(`UPDATE webhook_deliveries
					SET state = ?, event = ?, payload = ?, headers = ?, last_error = ''
					WHERE source = ? AND delivery_id = ?`),
					DeliveryReceived, d.Event, d.Payload, string(headers), d.Source, d.ID); err != nil {
					return err
				}
			}
		}
		for _, p := range queue {
			if _, err := s.txExec(ctx, tx, s.q(`INSERT INTO event_deliveries
				(source, delivery_id, plugin, state, attempts, last_error, next_at, claimed_until, created_at, updated_at, finished_at)
				VALUES (?, ?, ?, ?, 0, '', ?, 0, ?, ?, 0)`),
				d.Source, d.ID, p, EventPending, now, now, now); err != nil {
				return err
			}
		}
		if len(queue) > 0 {
			rc.Queued = queue
		}
		return nil
	})
	if err != nil {
		return Receipt{}, fmt.Errorf("receive delivery %s/%s: %w", d.Source, d.ID, err)
	}
	return rc, nil
}

// eventDue is the SQL condition of a row that may be claimed at ? (twice):
// pending and due, or running with its claim lapsed (the process handing
// it died).
const eventDue = `((e.state = 'pending' AND e.next_at <= ?) OR (e.state = 'running' AND e.claimed_until < ?))`

// ClaimEventDelivery picks the handing, to one of plugins, that is due at
// now and has waited longest, and claims it for lease: it is running, its
// attempt counted. It returns it with the delivery's payload and headers,
// or nil when none is due. An empty plugins matches nothing: a plugin that
// is not running is not handed anything, and loses no attempt.
func (s *Store) ClaimEventDelivery(ctx context.Context, now time.Time, lease time.Duration, plugins []string) (*EventDelivery, error) {
	if len(plugins) == 0 {
		return nil, nil
	}
	args := []any{now.UnixMilli(), now.UnixMilli()}
	for _, p := range plugins {
		args = append(args, p)
	}
	// A look first, outside a transaction: the dispatcher asks again after
	// each claim until nothing is due, so most calls find nothing, and
	// need not take the write lock (SQLite's BEGIN IMMEDIATE) to say so.
	// What is due is then claimed in the transaction, looked for again.
	var due int
	err := s.queryRow(ctx, s.q(`SELECT COUNT(*) FROM (SELECT 1 FROM event_deliveries e
		WHERE `+eventDue+` AND e.plugin IN (`+placeholders(len(plugins))+`) LIMIT 1) d`), args...).Scan(&due)
	if err != nil {
		return nil, fmt.Errorf("claim event delivery: %w", err)
	}
	if due == 0 {
		return nil, nil
	}
	var out *EventDelivery
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		out = nil
		var k EventKey
		err := s.txQueryRow(ctx, tx, s.q(`SELECT e.source, e.delivery_id, e.plugin FROM event_deliveries e
			WHERE `+eventDue+` AND e.plugin IN (`+placeholders(len(plugins))+`)
			ORDER BY e.next_at, e.created_at LIMIT 1`+s.d.skipLockedOf("e")), args...).Scan(&k.Source, &k.DeliveryID, &k.Plugin)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := s.txExec(ctx, tx, s.q(`UPDATE event_deliveries
			SET state = ?, attempts = attempts + 1, claimed_until = ?, updated_at = ?
			WHERE source = ? AND delivery_id = ? AND plugin = ?`),
			EventRunning, now.Add(lease).UnixMilli(), now.UnixMilli(), k.Source, k.DeliveryID, k.Plugin); err != nil {
			return err
		}
		var headers string
		e, err := scanEvent(s.txQueryRow(ctx, tx, s.q(`SELECT `+eventColumns+`, w.payload, w.headers
			FROM event_deliveries e JOIN webhook_deliveries w ON w.source = e.source AND w.delivery_id = e.delivery_id
			WHERE e.source = ? AND e.delivery_id = ? AND e.plugin = ?`), k.Source, k.DeliveryID, k.Plugin), &headers)
		if err != nil {
			return err
		}
		if headers != "" {
			if err := json.Unmarshal([]byte(headers), &e.Headers); err != nil {
				return fmt.Errorf("headers of %s: %w", k.name(), err)
			}
		}
		out = &e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim event delivery: %w", err)
	}
	return out, nil
}

// FinishEventDelivery ends an attempt of the running handing k: handled
// when failure is empty; otherwise pending again after retry's delay, or
// failed once its attempts reached retry's cap. Once every plugin's
// handing of the delivery ended, the delivery itself is marked handled
// (its payload dropped) or failed. It returns the handing as it is now.
func (s *Store) FinishEventDelivery(ctx context.Context, k EventKey, failure string, retry Retry) (EventDelivery, error) {
	retry = retry.WithDefaults()
	var out EventDelivery
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		var attempts int
		var state EventState
		if err := s.txQueryRow(ctx, tx, s.q(`SELECT attempts, state FROM event_deliveries
			WHERE source = ? AND delivery_id = ? AND plugin = ?`+s.d.forUpdate()), k.Source, k.DeliveryID, k.Plugin).Scan(&attempts, &state); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if state != EventRunning {
			return fmt.Errorf("it is %s, not running", state)
		}
		next, finished, newState := now, now.UnixMilli(), EventHandled
		switch {
		case failure == "":
		case attempts >= retry.MaxAttempts:
			newState = EventFailed
		default:
			newState, finished, next = EventPending, 0, now.Add(retry.Delay(attempts))
		}
		if _, err := s.txExec(ctx, tx, s.q(`UPDATE event_deliveries
			SET state = ?, last_error = ?, next_at = ?, claimed_until = 0, updated_at = ?, finished_at = ?
			WHERE source = ? AND delivery_id = ? AND plugin = ?`),
			newState, failure, next.UnixMilli(), now.UnixMilli(), finished, k.Source, k.DeliveryID, k.Plugin); err != nil {
			return err
		}
		if err := s.settleDeliveryTx(ctx, tx, k.Source, k.DeliveryID, now); err != nil {
			return err
		}
		var err error
		out, err = scanEvent(s.txQueryRow(ctx, tx, s.q(`SELECT `+eventColumns+`
			FROM event_deliveries e JOIN webhook_deliveries w ON w.source = e.source AND w.delivery_id = e.delivery_id
			WHERE e.source = ? AND e.delivery_id = ? AND e.plugin = ?`), k.Source, k.DeliveryID, k.Plugin), nil)
		return err
	})
	if err != nil {
		return EventDelivery{}, fmt.Errorf("finish event delivery %s: %w", k.name(), err)
	}
	return out, nil
}

// settleDeliveryTx marks a delivery handled or failed once no plugin's
// handing of it is open.
func (s *Store) settleDeliveryTx(ctx context.Context, tx *sql.Tx, source, id string, now time.Time) error {
	rows, err := s.txQuery(ctx, tx, s.q(`SELECT plugin, state, last_error FROM event_deliveries
		WHERE source = ? AND delivery_id = ? ORDER BY plugin`), source, id)
	if err != nil {
		return err
	}
	type row struct {
		plugin, err string
		state       EventState
	}
	all, err := scanAll(rows, func(sc scanner) (row, error) {
		var r row
		return r, sc.Scan(&r.plugin, &r.state, &r.err)
	})
	if err != nil {
		return err
	}
	var handled, failures []string
	for _, r := range all {
		switch r.state {
		case EventHandled:
			handled = append(handled, r.plugin)
		case EventFailed:
			failures = append(failures, "plugin "+r.plugin+": "+r.err)
		default:
			return nil // still open
		}
	}
	query := `UPDATE webhook_deliveries SET state = ?, handled_by = ?, last_error = ?, updated_at = ?, payload = NULL
		WHERE source = ? AND delivery_id = ?`
	state := DeliveryHandled
	if len(failures) > 0 {
		state = DeliveryFailed
		query = strings.Replace(query, ", payload = NULL", "", 1)
	}
	_, err = s.txExec(ctx, tx, s.q(query), state, strings.Join(handled, ","), strings.Join(failures, "; "), now.UnixMilli(), source, id)
	return err
}

// WakeEventDeliveries makes every pending handing to plugin due now, and
// returns how many were waiting out a backoff: a plugin that is back (it
// restarted) gets what it missed at once.
func (s *Store) WakeEventDeliveries(ctx context.Context, plugin string) (int, error) {
	now := s.now().UnixMilli()
	res, err := s.exec(ctx, s.q(`UPDATE event_deliveries SET next_at = ?
		WHERE plugin = ? AND state = ? AND next_at > ?`), now, plugin, EventPending, now)
	if err != nil {
		return 0, fmt.Errorf("wake event deliveries of %s: %w", plugin, err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// ResetRunningEventDeliveries makes every running handing pending and due
// now, and returns how many there were: they were running in a process
// that died (the attempt counts). Only the process that owns the store may
// call it, at start: replicas sharing a store leave a dead one's handings
// to lapse (ClaimEventDelivery takes them once their claim ran out).
func (s *Store) ResetRunningEventDeliveries(ctx context.Context) (int, error) {
	now := s.now().UnixMilli()
	res, err := s.exec(ctx, s.q(`UPDATE event_deliveries
		SET state = ?, next_at = ?, claimed_until = 0, updated_at = ?, last_error = 'the bot stopped during the attempt'
		WHERE state = ?`), EventPending, now, now, EventRunning)
	if err != nil {
		return 0, fmt.Errorf("reset running event deliveries: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// FailEventDeliveriesExcept ends failed, with reason, every open handing
// to a plugin not in plugins (one removed from the config, which nothing
// would ever hand it to), and returns how many there were. Only the process
// that owns the store may call it, at start.
func (s *Store) FailEventDeliveriesExcept(ctx context.Context, plugins []string, reason string) (int, error) {
	now := s.now()
	args := []any{EventFailed, reason, now.UnixMilli(), now.UnixMilli(), EventPending, EventRunning}
	query := `UPDATE event_deliveries SET state = ?, last_error = ?, claimed_until = 0, updated_at = ?, finished_at = ?
		WHERE state IN (?, ?)`
	if len(plugins) > 0 {
		query += ` AND plugin NOT IN (` + placeholders(len(plugins)) + `)`
		for _, p := range plugins {
			args = append(args, p)
		}
	}
	var n int
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		rows, err := s.txQuery(ctx, tx, s.q(query+` RETURNING source, delivery_id`), args...)
		if err != nil {
			return err
		}
		keys, err := scanAll(rows, func(sc scanner) (EventKey, error) {
			var k EventKey
			return k, sc.Scan(&k.Source, &k.DeliveryID)
		})
		if err != nil {
			return err
		}
		n = len(keys)
		for _, k := range keys {
			if err := s.settleDeliveryTx(ctx, tx, k.Source, k.DeliveryID, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("fail the event deliveries of plugins not configured: %w", err)
	}
	return n, nil
}

// NextEventDue returns when the next pending handing to one of plugins is
// due, and false when none is pending.
func (s *Store) NextEventDue(ctx context.Context, plugins []string) (time.Time, bool, error) {
	if len(plugins) == 0 {
		return time.Time{}, false, nil
	}
	args := []any{EventPending}
	for _, p := range plugins {
		args = append(args, p)
	}
	var next sql.NullInt64
	if err := s.queryRow(ctx, s.q(`SELECT MIN(next_at) FROM event_deliveries
		WHERE state = ? AND plugin IN (`+placeholders(len(plugins))+`)`), args...).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("next event due: %w", err)
	}
	return fromMillis(next), next.Valid, nil
}

// OpenEventDeliveries counts the handings not ended yet (pending or
// running), by plugin.
func (s *Store) OpenEventDeliveries(ctx context.Context) (map[string]int, error) {
	rows, err := s.query(ctx, s.q(`SELECT plugin, COUNT(*) FROM event_deliveries
		WHERE state IN (?, ?) GROUP BY plugin`), EventPending, EventRunning)
	if err != nil {
		return nil, fmt.Errorf("count open event deliveries: %w", err)
	}
	out := map[string]int{}
	type pc struct {
		p string
		n int
	}
	list, err := scanAll(rows, func(sc scanner) (pc, error) {
		var r pc
		return r, sc.Scan(&r.p, &r.n)
	})
	if err != nil {
		return nil, fmt.Errorf("count open event deliveries: %w", err)
	}
	for _, r := range list {
		out[r.p] = r.n
	}
	return out, nil
}

// EventFilter selects handings for ListEventDeliveries. Empty fields match
// anything.
type EventFilter struct {
	Plugin string
	State  EventState
	// Since keeps the deliveries received at or after it.
	Since time.Time
	// Limit is how many, newest first; <= 0 means 50.
	Limit int
}

// ListEventDeliveries returns the handings matching f, newest delivery
// first, each delivery's plugins in name order.
func (s *Store) ListEventDeliveries(ctx context.Context, f EventFilter) ([]EventDelivery, error) {
	var where []string
	var args []any
	if f.Plugin != "" {
		where, args = append(where, "e.plugin = ?"), append(args, f.Plugin)
	}
	if f.State != "" {
		where, args = append(where, "e.state = ?"), append(args, f.State)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "e.created_at >= ?"), append(args, f.Since.UnixMilli())
	}
	query := `SELECT ` + eventColumns + ` FROM event_deliveries e
		JOIN webhook_deliveries w ON w.source = e.source AND w.delivery_id = e.delivery_id`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	query += ` ORDER BY e.created_at DESC, e.source, e.delivery_id, e.plugin LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...) // one text per filter: not for the statement cache
	if err != nil {
		return nil, fmt.Errorf("list event deliveries: %w", err)
	}
	out, err := scanAll(rows, func(sc scanner) (EventDelivery, error) { return scanEvent(sc, nil) })
	if err != nil {
		return nil, fmt.Errorf("list event deliveries: %w", err)
	}
	return out, nil
}

const eventColumns = `e.source, e.delivery_id, e.plugin, w.event, e.state, e.attempts, e.last_error,
	e.next_at, e.created_at, e.updated_at, e.finished_at`

// scanEvent reads eventColumns and, when headers is not nil, the delivery's
// payload and headers selected after them.
func scanEvent(sc scanner, headers *string) (EventDelivery, error) {
	var (
		e                                EventDelivery
		next, created, updated, finished int64
	)
	dest := []any{&e.Source, &e.DeliveryID, &e.Plugin, &e.Event, &e.State, &e.Attempts, &e.LastError,
		&next, &created, &updated, &finished}
	if headers != nil {
		dest = append(dest, &e.Payload, headers)
	}
	if err := sc.Scan(dest...); err != nil {
		return EventDelivery{}, err
	}
	e.NextAt, e.CreatedAt, e.UpdatedAt = time.UnixMilli(next), time.UnixMilli(created), time.UnixMilli(updated)
	if finished != 0 {
		e.FinishedAt = time.UnixMilli(finished)
	}
	return e, nil
}
