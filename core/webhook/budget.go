package webhook

import (
	"context"
	"sync"
)

// defaultBudget is shared by every receiver that names none, so that two
// receivers do not double the bound.
var defaultBudget = NewBudget(DefaultBudget)

// SharedBudget is the budget of every receiver that names none: GitHub's
// webhook and the adapters' routes (core/httpapi) share it, so that a flood
// on one endpoint and another does not double the bound.
func SharedBudget() *Budget { return defaultBudget }

// Budget bounds a number of bytes in use at once, across goroutines: the
// bodies of webhook requests read before their signature is verified. Unlike
// a semaphore over requests, it lets many small bodies in beside one large
// one, and bounds memory whatever the sizes.
type Budget struct {
	mu    sync.Mutex
	limit int64
	used  int64
	// freed is closed (and replaced) whenever bytes are released, to wake
	// the waiters.
	freed chan struct{}
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget {
	return &Budget{limit: limit, freed: make(chan struct{})}
}

// Acquire takes n bytes from the budget, waiting until they are free or ctx
// ends; it reports whether it took them. A request for more than the whole
// budget never succeeds.
func (b *Budget) Acquire(ctx context.Context, n int64) bool {
	if n > b.limit {
		return false
	}
	for {
		b.mu.Lock()
		if b.used+n <= b.limit {
			b.used += n
			b.mu.Unlock()
			return true
		}
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return false
		}
	}
}

// Release gives back n bytes taken by Acquire.
func (b *Budget) Release(n int64) {
	b.mu.Lock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// InUse returns the bytes taken now.
func (b *Budget) InUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
