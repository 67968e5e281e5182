package sdk

import (
	"fmt"

	"github.com/chimaops/chima/sdk/pluginv1"
)

// Create stores value under key only if the key does not exist yet,
// atomically across every replica of the bot. It returns whether it created
// it, and the value stored now (value, or whoever's was there first).
func (kv KV) Create(key string, value []byte) (created bool, current []byte, err error) {
	return kv.swap(&pluginv1.KVCompareAndSwapRequest{Key: key, OldAbsent: true, Value: value})
}

// CompareAndSwap stores value under key only if the key still holds old (as
// Get returned it), atomically across every replica of the bot: the way to
// update shared state that several replicas may change at once. It returns
// whether it wrote, and the value stored now; on false, read current and
// try again.
func (kv KV) CompareAndSwap(key string, old, value []byte) (swapped bool, current []byte, err error) {
	if old == nil {
		old = []byte{}
	}
	return kv.swap(&pluginv1.KVCompareAndSwapRequest{Key: key, Old: old, Value: value})
}

func (kv KV) swap(r *pluginv1.KVCompareAndSwapRequest) (bool, []byte, error) {
	h, err := kv.c.host.get(kv.c)
	if err != nil {
		return false, nil, err
	}
	resp, err := h.KVCompareAndSwap(kv.c, r)
	if err != nil {
		return false, nil, fmt.Errorf("kv compare-and-swap %s: %w", r.GetKey(), err)
	}
	return resp.GetSwapped(), resp.GetCurrent(), nil
}

// Increment adds delta to the decimal counter at key (an absent key counts
// as 0) and returns the new value, atomically across every replica: ids
// handed out this way never collide.
func (kv KV) Increment(key string, delta int64) (int64, error) {
	h, err := kv.c.host.get(kv.c)
	if err != nil {
		return 0, err
	}
	resp, err := h.KVIncrement(kv.c, &pluginv1.KVIncrementRequest{Key: key, Delta: delta})
	if err != nil {
		return 0, fmt.Errorf("kv increment %s: %w", key, err)
	}
	return resp.GetValue(), nil
}
