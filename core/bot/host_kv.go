package bot

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
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
