package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DeliveryState is where a recorded webhook delivery is in its handling.
type DeliveryState string

// Delivery states.
const (
	// DeliveryReceived: recorded, and being handed to its plugins (one
	// EventDelivery each).
	DeliveryReceived DeliveryState = "received"
	// DeliveryHandled: every subscribed plugin took it. Its payload is
	// dropped; the id stays, to recognise redeliveries.
	DeliveryHandled DeliveryState = "handled"
	// DeliveryFailed: every plugin's handing ended, and some plugin's ended
	// failed (it refused the event or could not take it, attempt after
	// attempt). Its payload is kept: a redelivery hands it again to the
	// plugins that failed.
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
	// Attempts counts how many times the delivery was received (the
	// first time and each redelivery).
	Attempts int
	// LastError says why the last attempt failed.
	LastError  string
	ReceivedAt time.Time
}

// GetDelivery returns one recorded delivery.
func (s *Store) GetDelivery(ctx context.Context, source, id string) (Delivery, error) {
	d, err := s.scanDelivery(s.queryRow(ctx, s.q(`SELECT `+deliveryColumns+`
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
