package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/chimaops/chima/sdk"
)

// record is what the plugin keeps of one snapshot in its KV state, beside
// what restic keeps: the row counts at backup time and the verification.
type record struct {
	ID       string    `json:"id"`
	Target   string    `json:"target"`
	Time     time.Time `json:"time"`
	By       string    `json:"by,omitempty"`
	Schedule string    `json:"schedule,omitempty"`
	// File is the name a dump is stored under; "" for a directory.
	File string `json:"file,omitempty"`
	// Rows are the rows per table at backup time.
	Rows       rowCounts     `json:"rows,omitempty"`
	Size       int64         `json:"size"`
	Added      int64         `json:"added"`
	Files      int64         `json:"files"`
	DurationMS int64         `json:"duration_ms"`
	Verify     *verifyResult `json:"verify,omitempty"`
	// Suspicious says why the anomaly guard marked the snapshot: it is
	// kept, listed, and never counted by the retention policy.
	Suspicious string `json:"suspicious,omitempty"`
	// CountError says why the rows could not be counted at backup time.
	CountError string `json:"count_error,omitempty"`
}

// lastState is what backup:status shows of a target without asking restic:
// its last good backup and its last verification.
type lastState struct {
	Backup *record `json:"backup,omitempty"`
	// Verified is the last verification, of whichever snapshot.
	Verified   *verifyResult `json:"verified,omitempty"`
	VerifiedID string        `json:"verified_id,omitempty"`
	// Failed is the last backup that failed, and why.
	Failed   string    `json:"failed,omitempty"`
	FailedAt time.Time `json:"failed_at,omitempty"`
}

func lastKey(target string) string { return "last/" + target }

func getLast(c *sdk.Context, target string) (*lastState, error) {
	b, ok, err := c.KV().Get(lastKey(target))
	if err != nil || !ok {
		return &lastState{}, err
	}
	l := &lastState{}
	if err := json.Unmarshal(b, l); err != nil {
		return &lastState{}, nil // rewritten by the next backup
	}
	return l, nil
}

// updateLast changes the target's last state.
func updateLast(c *sdk.Context, target string, f func(*lastState)) error {
	l, err := getLast(c, target)
	if err != nil {
		return err
	}
	f(l)
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return c.KV().Set(lastKey(target), b)
}

// verifyResult is the end of one verification of a snapshot.
type verifyResult struct {
	Time time.Time `json:"time"`
	OK   bool      `json:"ok"`
	// Detail says what was checked, or what was wrong.
	Detail string `json:"detail"`
	// RestoreMS is how long the restore took: the recovery time.
	RestoreMS int64  `json:"restore_ms"`
	By        string `json:"by,omitempty"`
}

func recordKey(target, id string) string { return "snap/" + target + "/" + id }

func getRecord(c *sdk.Context, target, id string) (*record, error) {
	b, ok, err := c.KV().Get(recordKey(target, id))
	if err != nil || !ok {
		return nil, err
	}
	r := &record{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("read the record of %s: %w", id, err)
	}
	return r, nil
}

func putRecord(c *sdk.Context, r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return c.KV().Set(recordKey(r.Target, r.ID), b)
}
