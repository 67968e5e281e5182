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

// DeliveryState is where a recorded webhook delivery is in its handling.
type DeliveryState string

// Delivery states.
const (
	// DeliveryReceived: recorded and claimed for handling; the claim lasts
	// until its lease ends, after which the delivery may be handled again
	// (the process handling it may have died).
	DeliveryReceived DeliveryState = "received"
	// DeliveryHandled: every subscribed plugin took it. Its payload is
	// dropped; the id stays, to recognise redeliveries.
	DeliveryHandled DeliveryState = "handled"
	// DeliveryFailed: a plugin refused it or failed on it. Its payload is
	// kept, and a redelivery is handled again by the plugins that did not
	// take it yet.
	DeliveryFailed DeliveryState = "failed"
)

// Delivery is one verified webhook delivery as the store keeps it.
type Delivery struct {
	// Source is the sender ("github") and ID its delivery id; together
	// they identify the delivery.
	Source, ID string
	// Event is the sender's event type ("deployment").
	Event string
	// Payload is the JSON document; nil once the delivery was handled.
	Payload []byte
	// Headers are the request headers handed to plugins.
	Headers map[string]string
	State   DeliveryState
	// HandledBy are the plugins that took the delivery, sorted.
	HandledBy []string
	// Attempts counts how many times the delivery was claimed.
	Attempts int
	// LastError says why the last attempt failed.
	LastError  string
	ReceivedAt time.Time
}

// Claim says what a caller of ClaimDelivery may do with a delivery.
type Claim int

// Claim outcomes.
const (
	// ClaimNew: the delivery was not known; it is recorded and the caller
	// hands it over.
	ClaimNew Claim = iota + 1
	// ClaimRetry: the delivery had failed, or its last claim lapsed; the
	// caller hands it over again to the plugins not in HandledBy.
	ClaimRetry
	// ClaimHandled: the delivery was handled already: a redelivery to drop.
	ClaimHandled
	// ClaimBusy: another claim on the delivery is still running.
	ClaimBusy
)

// String names the claim outcome, for logs.
func (c Claim) String() string {
	switch c {
	case ClaimNew:
		return "new"
	case ClaimRetry:
		return "retry"
	case ClaimHandled:
		return "handled"
	case ClaimBusy:
		return "busy"
	}
	return fmt.Sprintf("claim(%d)", int(c))
}

// ClaimDelivery records d durably, payload and all, and claims its handling
// for lease. A delivery already recorded is claimed again only if it failed
// or its previous claim lapsed; its payload is then replaced by d's. It
// returns the delivery as stored (with the plugins that took it already)
// and what the caller may do with it.
func (s *Store) ClaimDelivery(ctx context.Context, d Delivery, lease time.Duration) (Delivery, Claim, error) {
	if d.Source == "" || d.ID == "" {
		return Delivery{}, 0, errors.New("claim delivery: empty source or id")
	}
	headers, err := json.Marshal(d.Headers)
	if err != nil {
		return Delivery{}, 0, fmt.Errorf("claim delivery %s/%s: headers: %w", d.Source, d.ID, err)
	}
	var (
		out   Delivery
		claim Claim
	)
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		until := now.Add(lease).UnixMilli()
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO webhook_deliveries
			(source, delivery_id, received_at, event, payload, headers, state, handled_by, attempts, last_error, claimed_until, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, '', 1, '', ?, ?) ON CONFLICT (source, delivery_id) DO NOTHING`),
			d.Source, d.ID, now.UnixMilli(), d.Event, d.Payload, string(headers), DeliveryReceived, until, now.UnixMilli())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			claim = ClaimNew
		} else {
			res, err := tx.ExecContext(ctx, s.q(`UPDATE webhook_deliveries
				SET state = ?, attempts = attempts + 1, claimed_until = ?, updated_at = ?, event = ?, payload = ?, headers = ?
				WHERE source = ? AND delivery_id = ? AND (state = ? OR (state = ? AND claimed_until < ?))`),
				DeliveryReceived, until, now.UnixMilli(), d.Event, d.Payload, string(headers),
				d.Source, d.ID, DeliveryFailed, DeliveryReceived, now.UnixMilli())
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				claim = ClaimRetry
			}
		}
		out, err = s.scanDelivery(tx.QueryRowContext(ctx, s.q(`SELECT `+deliveryColumns+`
			FROM webhook_deliveries WHERE source = ? AND delivery_id = ?`), d.Source, d.ID))
		if err != nil {
			return err
		}
		if claim == 0 {
			claim = ClaimBusy
			if out.State == DeliveryHandled {
				claim = ClaimHandled
			}
		}
		return nil
	})
	if err != nil {
		return Delivery{}, 0, fmt.Errorf("claim delivery %s/%s: %w", d.Source, d.ID, err)
	}
	return out, claim, nil
}

// FinishDelivery ends a claim: it adds handledBy to the plugins that took
// the delivery, and marks it handled when failure is empty (dropping its
// payload) or failed with failure as the reason.
func (s *Store) FinishDelivery(ctx context.Context, source, id string, handledBy []string, failure string) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var prev string
		if err := tx.QueryRowContext(ctx, s.q(`SELECT handled_by FROM webhook_deliveries
			WHERE source = ? AND delivery_id = ?`+s.d.forUpdate()), source, id).Scan(&prev); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		all := append(splitList(prev), handledBy...)
		slices.Sort(all)
		all = slices.Compact(all)
		state, query := DeliveryHandled, `UPDATE webhook_deliveries
			SET state = ?, handled_by = ?, last_error = ?, claimed_until = 0, updated_at = ?, payload = NULL
			WHERE source = ? AND delivery_id = ?`
		if failure != "" {
			state, query = DeliveryFailed, `UPDATE webhook_deliveries
			SET state = ?, handled_by = ?, last_error = ?, claimed_until = 0, updated_at = ?
			WHERE source = ? AND delivery_id = ?`
		}
		_, err := tx.ExecContext(ctx, s.q(query), state, strings.Join(all, ","), failure, s.now().UnixMilli(), source, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("finish delivery %s/%s: %w", source, id, err)
	}
	return nil
}

// GetDelivery returns one recorded delivery.
func (s *Store) GetDelivery(ctx context.Context, source, id string) (Delivery, error) {
	d, err := s.scanDelivery(s.db.QueryRowContext(ctx, s.q(`SELECT `+deliveryColumns+`
		FROM webhook_deliveries WHERE source = ? AND delivery_id = ?`), source, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, fmt.Errorf("delivery %s/%s: %w", source, id, ErrNotFound)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("get delivery %s/%s: %w", source, id, err)
	}
	return d, nil
}

const deliveryColumns = `source, delivery_id, event, payload, headers, state, handled_by, attempts, last_error, received_at`

func (s *Store) scanDelivery(row scanner) (Delivery, error) {
	var (
		d                  Delivery
		headers, handledBy string
		received           int64
	)
	if err := row.Scan(&d.Source, &d.ID, &d.Event, &d.Payload, &headers, &d.State, &handledBy,
		&d.Attempts, &d.LastError, &received); err != nil {
		return Delivery{}, err
	}
	if headers != "" {
		if err := json.Unmarshal([]byte(headers), &d.Headers); err != nil {
			return Delivery{}, fmt.Errorf("headers of %s/%s: %w", d.Source, d.ID, err)
		}
	}
	d.HandledBy = splitList(handledBy)
	d.ReceivedAt = time.UnixMilli(received)
	return d, nil
}

// splitList splits a comma-separated list, "" being the empty list.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
