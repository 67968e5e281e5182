package bot

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

// checkKey refuses an empty key as the plugin's mistake, before the store
// would fail on it.
func checkKey(op, key string) error {
	if key == "" {
		return status.Errorf(codes.InvalidArgument, "%s: the key is empty", op)
	}
	return nil
}

// KVCompareAndSwap writes a key of the plugin's state only over the value
// the plugin read, atomically across replicas. The new value is masked as
// KVSet masks it, and so is old: the plugin read the masked one.
func (h *hostService) KVCompareAndSwap(ctx context.Context, r *pluginv1.KVCompareAndSwapRequest) (*pluginv1.KVCompareAndSwapResponse, error) {
	if err := checkKey("kv compare-and-swap", r.GetKey()); err != nil {
		return nil, err
	}
	swapped, cur, found, err := h.b.o.Store.KVCompareAndSwap(ctx, h.plugin, r.GetKey(),
		h.b.o.Redactor.Text(r.GetOld()), r.GetOldAbsent(), h.b.o.Redactor.Text(r.GetValue()))
	if err != nil {
		return nil, status.Errorf(codes.Internal, "kv compare-and-swap: %v", err)
	}
	return &pluginv1.KVCompareAndSwapResponse{Swapped: swapped, Current: cur, Found: found}, nil
}

// KVIncrement adds to a counter of the plugin's state, atomically across
// replicas.
func (h *hostService) KVIncrement(ctx context.Context, r *pluginv1.KVIncrementRequest) (*pluginv1.KVIncrementResponse, error) {
	if err := checkKey("kv increment", r.GetKey()); err != nil {
		return nil, err
	}
	n, err := h.b.o.Store.KVIncrement(ctx, h.plugin, r.GetKey(), r.GetDelta())
	if errors.Is(err, store.ErrNotCounter) {
		return nil, status.Errorf(codes.FailedPrecondition, "kv increment: %v", err)
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "kv increment: %v", err)
	}
	return &pluginv1.KVIncrementResponse{Value: n}, nil
}

// KVTransaction writes several keys of the plugin's state at once, only if
// the keys it checks hold what the plugin expects, atomically across
// replicas. Values are masked as KVSet masks them, and so are the checked
// ones: the plugin read the masked values.
func (h *hostService) KVTransaction(ctx context.Context, r *pluginv1.KVTransactionRequest) (*pluginv1.KVTransactionResponse, error) {
	if n := len(r.GetChecks()) + len(r.GetWrites()); n > wire.MaxKVTransactionOps {
		return nil, status.Errorf(codes.InvalidArgument, "kv transaction: %d checks and writes, more than the %d one transaction may hold", n, wire.MaxKVTransactionOps)
	}
	checks := make([]store.KVCheck, len(r.GetChecks()))
	for i, c := range r.GetChecks() {
		if err := checkKey("kv transaction: check", c.GetKey()); err != nil {
			return nil, err
		}
		checks[i] = store.KVCheck{Key: c.GetKey(), Value: h.b.o.Redactor.Text(c.GetValue())}
	}
	writes := make([]store.KVWrite, len(r.GetWrites()))
	for i, w := range r.GetWrites() {
		if err := checkKey("kv transaction: write", w.GetKey()); err != nil {
			return nil, err
		}
		writes[i] = store.KVWrite{Key: w.GetKey(), Delete: w.GetDelete()}
		if !w.GetDelete() {
			writes[i].Value = h.b.o.Redactor.Text(w.GetValue())
		}
	}
	committed, conflict, err := h.b.o.Store.KVTransaction(ctx, h.plugin, checks, writes)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "kv transaction: %v", err)
	}
	return &pluginv1.KVTransactionResponse{Committed: committed, FailedKey: conflict.Key, Current: conflict.Current, Found: conflict.Found}, nil
}
