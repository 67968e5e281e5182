package sdk

import (
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

// Txn is a set of writes to the plugin's KV that the host makes together,
// only if every key it checks still holds the value expected: all of them
// or none, atomically across every replica of the bot, in one call and one
// commit of the bot's store. Build it with KV.Txn, then Commit it:
//
//	res, err := c.KV().Txn().
//		IfEquals("lease/x", mine).
//		Set("record/x", record).
//		Delete("open/x").
//		Set("lease/x", free).
//		Commit()
//
// A Txn holds at most MaxTxnOps checks and writes; it needs a bot of
// protocol minor 9 or later.
type Txn struct {
	kv     KV
	checks []*pluginv1.KVCheck
	writes []*pluginv1.KVWrite
}

// MaxTxnOps is how many checks and writes one Txn may hold in all.
const MaxTxnOps = wire.MaxKVTransactionOps

// TxnResult is how a Txn ended. When it did not commit, Key is the first
// check that failed and Current what that key holds (Found unset when it
// is absent): read it, decide again, and commit a new Txn.
type TxnResult struct {
	Committed bool
	Key       string
	Current   []byte
	Found     bool
}

// Txn starts a transaction of the plugin's KV.
func (kv KV) Txn() *Txn { return &Txn{kv: kv} }

// IfEquals makes the transaction commit only if key holds exactly value (as
// Get returned it). An absent key fails the check.
func (t *Txn) IfEquals(key string, value []byte) *Txn {
	t.checks = append(t.checks, &pluginv1.KVCheck{Key: key, Value: value})
	return t
}

// Set stores value under key when the transaction commits.
func (t *Txn) Set(key string, value []byte) *Txn {
	t.writes = append(t.writes, &pluginv1.KVWrite{Key: key, Value: value})
	return t
}

// Delete removes key when the transaction commits (an absent key is no
// error).
func (t *Txn) Delete(key string) *Txn {
	t.writes = append(t.writes, &pluginv1.KVWrite{Key: key, Delete: true})
	return t
}

// Commit asks the host to check and write, in the order given. A result
// that did not commit is no error: the checks did not hold, and nothing was
// written.
func (t *Txn) Commit() (TxnResult, error) {
	if n := len(t.checks) + len(t.writes); n > MaxTxnOps {
		return TxnResult{}, fmt.Errorf("kv transaction: %d checks and writes, more than %d", n, MaxTxnOps)
	}
	h, err := t.kv.c.host.get(t.kv.c)
	if err != nil {
		return TxnResult{}, err
	}
	resp, err := h.KVTransaction(t.kv.c, &pluginv1.KVTransactionRequest{Checks: t.checks, Writes: t.writes})
	if status.Code(err) == codes.Unimplemented {
		return TxnResult{}, fmt.Errorf("kv transaction: the bot is older than protocol minor 9 and has no KV transactions (upgrade it): %w", err)
	}
	if err != nil {
		return TxnResult{}, fmt.Errorf("kv transaction: %w", err)
	}
	return TxnResult{Committed: resp.GetCommitted(), Key: resp.GetFailedKey(), Current: resp.GetCurrent(), Found: resp.GetFound()}, nil
}
