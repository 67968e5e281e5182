package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
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

// lease is a commit's lease, held.
type lease struct {
	p   *ci
	c   *sdk.Context
	key string // the record's key
	// mine is the lease's value while held, free its value once given
	// back: it names this holding, so that whoever takes it next over
	// exactly that value knows nobody held it in between.
	mine, free []byte
	// record is the record's value as this process last wrote it, when
	// nobody else held the lease since; nil when it must be read.
	record []byte
	unlock func()
}

// hold takes key's lease, in this process and across replicas.
func (p *ci) hold(c *sdk.Context, key string) (*lease, error) {
	unlock := p.locks.lock(key)
	k := leaseKey(key)
	owner := fmt.Sprintf("%s-%d", processID, leaseSeq.Add(1))
	mine, err := json.Marshal(leaseValue{Owner: owner, Until: time.Now().Add(leaseFor).UnixMilli()})
	if err != nil {
		unlock()
		return nil, fmt.Errorf("encode the lease of %s: %w", key, err)
	}
	// A lease given back names who gave it back; an older replica's says
	// nothing ({}). Both are free: their Until is 0.
	free, err := json.Marshal(freeLease{Freed: owner})
	if err != nil {
		unlock()
		return nil, fmt.Errorf("encode the lease of %s: %w", key, err)
	}
	l := &lease{p: p, c: c, key: key, mine: mine, free: free, unlock: unlock}
	deadline := time.Now().Add(leaseWait)
	wait := time.Millisecond
	old, record := p.records.get(key)
	if old == nil {
		old = leaseFree
	}
	for {
		swapped, cur, err := c.KV().CompareAndSwap(k, old, mine)
		if err == nil && !swapped && len(cur) == 0 {
			// Never leased (or the lease was deleted, and the record may
			// have been with it): create it (another replica may win
			// that too).
			record = nil
			swapped, cur, err = c.KV().Create(k, mine)
		}
		if err != nil {
			unlock()
			return nil, fmt.Errorf("take the lease of %s: %w", key, err)
		}
		if swapped {
			break
		}
		// Someone else held it since this process gave it back: what
		// this process remembers of the record may be old.
		record = nil
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
	l.record = record
	return l, nil
}

// save writes the record under the lease and gives the lease back, with
// the other writes txn holds, in one transaction of the host's KV that
// commits only while this holding still owns the lease: one call and one
// commit of the bot's store for all of it, and never a record written by
// a holder whose lease lapsed and was taken over (that one's handling
// then fails, and its event is handed again, to be applied over the new
// holder's record).
func (l *lease) save(txn *sdk.Txn, record []byte) error {
	k := leaseKey(l.key)
	res, err := txn.IfEquals(k, l.mine).Set(l.key, record).Set(k, l.free).Commit()
	if err != nil {
		l.done(nil)
		return fmt.Errorf("save %s: %w", l.key, err)
	}
	if !res.Committed {
		l.done(nil)
		return fmt.Errorf("save %s: its lease lapsed and another replica of the bot took it over: nothing was saved, the event is handed again", l.key)
	}
	l.done(record)
	return nil
}

// release gives the lease back without writing the record (it was not
// changed, or its handling failed before saving); a lease saved already is
// left alone.
func (l *lease) release() {
	if l.unlock == nil {
		return
	}
	// Over this lease only: one that lapsed and was taken over is the new
	// holder's.
	swapped, _, err := l.c.KV().CompareAndSwap(leaseKey(l.key), l.mine, l.free)
	if err != nil {
		l.c.Logger().Warn("give back a commit's lease", "key", l.key, "error", err)
	}
	if err != nil || !swapped {
		l.done(nil)
		return
	}
	// Nobody else held it: the record this holding started from, when it
	// was known, is still the record.
	l.done(l.record)
}

// done ends the holding in this process. saved is the record as it stands
// under the lease given back, nil when not known (the next holding in this
// process then reads it).
func (l *lease) done(saved []byte) {
	if saved == nil {
		l.p.records.forget(l.key)
	} else {
		l.p.records.put(l.key, l.free, saved)
	}
	l.unlock()
	l.unlock = nil
}

// freeLease is a lease given back: who gave it back.
type freeLease struct {
	Freed string `json:"freed"`
}

// recordCache remembers, for the commits this process handled last, the
// value it gave their lease back with and the record it wrote under it.
// Taking the lease over exactly that value (one compare-and-swap, as
// before) proves that no replica held it since, so the record is still
// that one and need not be read again: every write of a record is made
// under its lease.
type recordCache struct {
	mu sync.Mutex
	m  map[string]cachedRecord
}

type cachedRecord struct{ free, record []byte }

// recordCacheMax bounds the remembered records; past it the cache starts
// again empty, and the records are read as before.
const recordCacheMax = 4096

func (rc *recordCache) get(key string) (free, record []byte) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	e := rc.m[key]
	return e.free, e.record
}

func (rc *recordCache) put(key string, free, record []byte) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.m == nil || len(rc.m) >= recordCacheMax {
		rc.m = make(map[string]cachedRecord)
	}
	rc.m[key] = cachedRecord{free, record}
}

func (rc *recordCache) forget(key string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	delete(rc.m, key)
}
