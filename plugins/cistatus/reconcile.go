package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/chimaops/chima/sdk"
)

// Reconciling: GitHub never redelivers a webhook delivery that failed, so
// a commit whose checks are still running is polled until they end.
const (
	jobReconcile = "reconcile"
	// reconcileEvery is how often the open commits are polled.
	reconcileEvery = "@every 5m"
	// reconcilePerRun bounds the API calls of one poll.
	reconcilePerRun = 20
	// reconcileFor is how long a commit is polled before it is given up.
	reconcileFor = 24 * time.Hour
	// reconcileCursor keeps the last open commit a poll took, in the
	// plugin's KV so that every replica of the bot goes on from it.
	reconcileCursor = "reconcile/cursor"
)

// openCommit is a commit whose checks have not all ended.
type openCommit struct {
	Repo   string    `json:"repo"`
	SHA    string    `json:"sha"`
	Branch string    `json:"branch,omitempty"`
	PR     int       `json:"pr,omitempty"`
	Since  time.Time `json:"since"`
}

func openKey(t *tracked) string {
	return "open/" + strings.TrimPrefix(trackKey(t.Repo, t.SHA, t.PR), "track/")
}

// markOpen keeps t in the open commits while a check of it runs: it adds
// the write of its open key to txn, which saves the record.
func (p *ci) markOpen(txn *sdk.Txn, t *tracked) error {
	key := openKey(t)
	running := overall(visible(t.Checks)) == stateRunning
	switch {
	case running == t.Open:
		return nil // as it was: nothing to write
	case running:
		raw, err := json.Marshal(openCommit{Repo: t.Repo, SHA: t.SHA, Branch: t.Branch, PR: t.PR, Since: p.now()})
		if err != nil {
			return fmt.Errorf("encode %s: %w", key, err)
		}
		t.Open = true
		txn.Set(key, raw)
		return nil
	}
	t.Open = false
	txn.Delete(key)
	return nil
}

// runReconcile polls the open commits' CI and applies what changed, as if
// the missed webhooks had come.
func (p *ci) runReconcile(c *sdk.Context) error {
	_, gh := p.state()
	if gh == nil {
		return nil // without a token there is nothing to poll
	}
	keys, err := c.KV().List("open/")
	if err != nil {
		return err
	}
	cursor, _, err := c.KV().Get(reconcileCursor)
	if err != nil {
		return err
	}
	batch := nextBatch(keys, string(cursor), reconcilePerRun)
	if len(batch) > 0 && len(keys) > reconcilePerRun {
		// Moved on first: a poll that fails half-way must not take the
		// same commits again next time, starving the others.
		if err := c.KV().Set(reconcileCursor, []byte(batch[len(batch)-1])); err != nil {
			return err
		}
	}
	for _, key := range batch {
		var o openCommit
		raw, ok, err := c.KV().Get(key)
		if err != nil {
			return err
		}
		if !ok || json.Unmarshal(raw, &o) != nil || p.now().Sub(o.Since) > reconcileFor {
			if err := c.KV().Delete(key); err != nil {
				return err
			}
			continue
		}
		r, err := fetchRollupOf(c, gh, o.Repo, o.SHA, 0, o.Branch)
		if err != nil {
			c.Logger().Warn("polling a commit's CI failed", "repo", o.Repo, "sha", o.SHA, "error", err)
			continue
		}
		d := &delta{Repo: o.Repo, SHA: o.SHA, Branch: o.Branch}
		if o.PR > 0 {
			d.PRs = []int{o.PR}
		}
		for _, ch := range r.Checks {
			if !strings.HasPrefix(ch.Key, "expected:") {
				ch.Required = false // the rollup's own; notices show none
				d.Checks = append(d.Checks, ch)
			}
		}
		if err := p.handleDelta(c, d); err != nil {
			return fmt.Errorf("apply the polled CI of %s@%s: %w", o.Repo, short(o.SHA), err)
		}
	}
	return nil
}

// nextBatch is the n keys (sorted) after cursor, wrapping around to the
// first: successive polls of more open commits than one takes poll each
// in turn. A cursor no longer among keys (its commit ended) still marks
// the place.
func nextBatch(keys []string, cursor string, n int) []string {
	if len(keys) <= n {
		return keys
	}
	start := sort.SearchStrings(keys, cursor)
	if start < len(keys) && keys[start] == cursor {
		start++
	}
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, keys[(start+i)%len(keys)])
	}
	return out
}
