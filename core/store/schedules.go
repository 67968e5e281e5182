package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ScheduleRun is one fired slot of a schedule.
type ScheduleRun struct {
	Schedule string
	// Slot is the time the schedule was due (millisecond precision).
	Slot      time.Time
	StartedAt time.Time
	// FinishedAt is zero while the command runs.
	FinishedAt time.Time
	// Outcome is the command's audit outcome, "" while it runs.
	Outcome   string
	RequestID string
}

// ClaimScheduleSlot records that schedule fires its slot now, and reports
// whether this call is the one that did: false means the slot was claimed
// before (by another scheduler on this store, or before a restart), and must
// not run again.
func (s *Store) ClaimScheduleSlot(ctx context.Context, schedule string, slot time.Time) (bool, error) {
	res, err := s.exec(ctx, s.q(`INSERT INTO schedule_runs (schedule, slot, started_at)
		VALUES (?, ?, ?) ON CONFLICT (schedule, slot) DO NOTHING`),
		schedule, slot.UnixMilli(), s.now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("claim schedule %s slot %s: %w", schedule, slot.UTC().Format(time.RFC3339), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim schedule %s slot %s: %w", schedule, slot.UTC().Format(time.RFC3339), err)
	}
	return n == 1, nil
}

// FinishScheduleSlot records how the command of a claimed slot ended. A
// slot whose outcome is known already keeps it: a plugin schedule's job may
// end (ScheduledJobEnded) before the scheduler records it as enqueued.
func (s *Store) FinishScheduleSlot(ctx context.Context, schedule string, slot time.Time, outcome, requestID string) error {
	_, err := s.exec(ctx, s.q(`UPDATE schedule_runs SET finished_at = ?, outcome = ?, request_id = ?
		WHERE schedule = ? AND slot = ? AND outcome = ''`),
		s.now().UnixMilli(), outcome, requestID, schedule, slot.UnixMilli())
	if err != nil {
		return fmt.Errorf("finish schedule %s slot %s: %w", schedule, slot.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// ScheduledJobEnded records how the job a plugin schedule's slot enqueued
// ended ("job succeeded"), replacing "enqueued".
func (s *Store) ScheduledJobEnded(ctx context.Context, schedule string, slot time.Time, outcome, requestID string) error {
	_, err := s.exec(ctx, s.q(`UPDATE schedule_runs SET finished_at = ?, outcome = ?, request_id = ?
		WHERE schedule = ? AND slot = ?`),
		s.now().UnixMilli(), outcome, requestID, schedule, slot.UnixMilli())
	if err != nil {
		return fmt.Errorf("record the job of schedule %s slot %s: %w", schedule, slot.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// LastScheduleRun returns the latest claimed slot of schedule, and false when
// it never fired.
func (s *Store) LastScheduleRun(ctx context.Context, schedule string) (ScheduleRun, bool, error) {
	var slot, started, finished int64
	r := ScheduleRun{Schedule: schedule}
	err := s.queryRow(ctx, s.q(`SELECT slot, started_at, finished_at, outcome, request_id
		FROM schedule_runs WHERE schedule = ? ORDER BY slot DESC LIMIT 1`), schedule).
		Scan(&slot, &started, &finished, &r.Outcome, &r.RequestID)
	if errors.Is(err, sql.ErrNoRows) {
		return ScheduleRun{}, false, nil
	}
	if err != nil {
		return ScheduleRun{}, false, fmt.Errorf("last run of schedule %s: %w", schedule, err)
	}
	r.Slot, r.StartedAt = time.UnixMilli(slot), time.UnixMilli(started)
	if finished != 0 {
		r.FinishedAt = time.UnixMilli(finished)
	}
	return r, true, nil
}

// ScheduleRuns returns the fired slots of schedule, oldest first, up to
// limit (<= 0 means 50, the newest kept): what ran when, for checks of
// catch-up and for listings.
func (s *Store) ScheduleRuns(ctx context.Context, schedule string, limit int) ([]ScheduleRun, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	rows, err := s.query(ctx, s.q(`SELECT slot, started_at, finished_at, outcome, request_id
		FROM schedule_runs WHERE schedule = ? ORDER BY slot DESC LIMIT ?`), schedule, limit)
	if err != nil {
		return nil, fmt.Errorf("runs of schedule %s: %w", schedule, err)
	}
	defer rows.Close()
	var out []ScheduleRun
	for rows.Next() {
		var slot, started, finished int64
		r := ScheduleRun{Schedule: schedule}
		if err := rows.Scan(&slot, &started, &finished, &r.Outcome, &r.RequestID); err != nil {
			return nil, fmt.Errorf("runs of schedule %s: %w", schedule, err)
		}
		r.Slot, r.StartedAt = time.UnixMilli(slot), time.UnixMilli(started)
		if finished != 0 {
			r.FinishedAt = time.UnixMilli(finished)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("runs of schedule %s: %w", schedule, err)
	}
	slices.Reverse(out)
	return out, nil
}
