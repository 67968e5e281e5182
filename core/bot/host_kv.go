package bot

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chimaops/chima/sdk/pluginv1"
)

// KVCompareAndSwap writes a key of the plugin's state only over the value
// the plugin read, atomically across replicas. The new value is masked as
// KVSet masks it, and so is old: the plugin read the masked one.
func (h *hostService) KVCompareAndSwap(ctx context.Context, r *pluginv1.KVCompareAndSwapRequest) (*pluginv1.KVCompareAndSwapResponse, error) {
	swapped, cur, found, err := h.b.o.Store.KVCompareAndSwap(ctx, h.plugin, r.GetKey(),
		h.b.o.Redactor.Text(r.GetOld()), r.GetOldAbsent(), h.b.o.Redactor.Text(r.GetValue()))
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "kv compare-and-swap: %v", err)
	}
	return &pluginv1.KVCompareAndSwapResponse{Swapped: swapped, Current: cur, Found: found}, nil
}

// KVIncrement adds to a counter of the plugin's state, atomically across
// replicas.
func (h *hostService) KVIncrement(ctx context.Context, r *pluginv1.KVIncrementRequest) (*pluginv1.KVIncrementResponse, error) {
	n, err := h.b.o.Store.KVIncrement(ctx, h.plugin, r.GetKey(), r.GetDelta())
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "kv increment: %v", err)
	}
	return &pluginv1.KVIncrementResponse{Value: n}, nil
}
