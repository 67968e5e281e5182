package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/chimaops/chima/sdk"
)

// Several replicas of the bot may share one store, each with a process of
// this plugin, and GitHub's events of one commit may reach any of them.
// The handling of one commit (reading its record, posting or editing the
// rooms' messages, saving the record) is therefore held under a lease in
// the host's KV, taken and given back with compare-and-swap, which the host
// makes atomic across replicas: one replica at a time reads and writes a
// commit's record, so exactly one posts its message and the others edit
// it. In one process, the keyed mutex queues the deliveries first, so a
// replica never waits for its own lease; it polls only while another
// replica holds it.
const (
	// leaseFor is how long a lease holds without being given back: a
	// replica killed while holding it delays that commit this long.
	leaseFor = 30 * time.Second
	// leaseWait is how long a delivery waits for another replica's lease
	// before it fails (the durable event is then tried again).
	leaseWait = 10 * time.Second
	// leasePollMax bounds the wait between two looks at a held lease.
	leasePollMax = 20 * time.Millisecond
)

// leaseFree is the value of a lease nobody holds: a key once leased keeps
// it, so that taking the lease again is one compare-and-swap.
var leaseFree = []byte(`{}`)

// leaseValue is a held lease: who holds it, and until when (Unix ms).
type leaseValue struct {
	Owner string `json:"owner"`
	Until int64  `json:"until"`
}

// processID tells this process's leases from other replicas'.
var processID = func() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}()

var leaseSeq atomic.Int64

// leaseKey is the KV key of the lease of a record's key.
func leaseKey(key string) string { return "lease/" + strings.TrimPrefix(key, "track/") }

// hold takes key's lease, in this process and across replicas, and
// returns its release.
func (p *ci) hold(c *sdk.Context, key string) (func(), error) {
	unlock := p.locks.lock(key)
	k := leaseKey(key)
	mine, err := json.Marshal(leaseValue{
		Owner: fmt.Sprintf("%s-%d", processID, leaseSeq.Add(1)),
		Until: time.Now().Add(leaseFor).UnixMilli(),
	})
	if err != nil {
		unlock()
		return nil, fmt.Errorf("encode the lease of %s: %w", key, err)
	}
	deadline := time.Now().Add(leaseWait)
	wait := time.Millisecond
	old := leaseFree
	for {
		swapped, cur, err := c.KV().CompareAndSwap(k, old, mine)
		if err == nil && !swapped && len(cur) == 0 {
			// Never leased: create it (another replica may win that too).
			swapped, cur, err = c.KV().Create(k, mine)
		}
		if err != nil {
			unlock()
			return nil, fmt.Errorf("take the lease of %s: %w", key, err)
		}
		if swapped {
			break
		}
		var held leaseValue
		if json.Unmarshal(cur, &held) != nil || held.Until < time.Now().UnixMilli() {
			old = cur // free, or its holder died: take it over what is there
			continue
		}
		if time.Now().After(deadline) {
			unlock()
			return nil, fmt.Errorf("the lease of %s is held by another replica of the bot (until %s)", key, time.UnixMilli(held.Until).UTC().Format(time.RFC3339))
		}
		old = leaseFree
		select {
		case <-c.Done():
			unlock()
			return nil, fmt.Errorf("wait for the lease of %s: %w", key, c.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, leasePollMax)
	}
	return func() {
		// Over this lease only: one that lapsed and was taken over is
		// the new holder's.
		if _, _, err := c.KV().CompareAndSwap(k, mine, leaseFree); err != nil {
			c.Logger().Warn("give back a commit's lease", "key", key, "error", err)
		}
		unlock()
	}, nil
}
