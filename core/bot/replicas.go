package bot

import (
	"context"
	"time"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/store"
)

// inboundKeep is how long a replica remembers the chat messages it took:
// far longer than any service redelivers a message.
const inboundKeep = 24 * time.Hour

// watchReplicas runs, on a store that several replicas share, the sweep that
// ends other replicas' jobs whose leases lapsed (the replica died or lost
// the database) as interrupted, releasing their locks and telling their
// rooms and plugins, as a restart does for a replica's own jobs. It also
// forgets old inbound messages. It returns when ctx ends.
func (b *Bot) watchReplicas(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		jobs, err := b.o.Store.InterruptExpiredJobs(ctx)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Error("take over lapsed job leases", "error", err)
			}
			continue
		}
		for _, j := range jobs {
			b.log.Warn("job of a lost replica interrupted", "job", j.ID, "plugin", j.Plugin, "replica", j.Replica)
			b.jobInterrupted(ctx, j, j.Detail)
		}
		if time.Since(lastPrune) > time.Hour {
			lastPrune = time.Now()
			if _, err := b.o.Store.PruneInbound(ctx, b.o.Store.Now().Add(-inboundKeep)); err != nil && ctx.Err() == nil {
				b.log.Error("prune inbound messages", "error", err)
			}
		}
	}
}

// takeInbound reports whether this replica should handle m: on a shared
// store, only the first replica to record the message's DeliveryKey does (a
// service such as Mattermost delivers each post to every connection). A store that
// cannot be written leaves the message to this replica: an answer twice is
// better than none.
func (b *Bot) takeInbound(ctx context.Context, m chat.Message) bool {
	if b.o.Store == nil || !b.o.Store.Shared() || m.DeliveryKey == "" {
		return true
	}
	ok, err := b.o.Store.ClaimInbound(ctx, m.Ref.Adapter, m.DeliveryKey)
	if err != nil {
		b.log.Error("de-duplicate inbound message", "adapter", m.Ref.Adapter, "message", m.Ref.MessageID, "error", err)
		return true
	}
	return ok
}

// sharedLease is the lease of a shared store's jobs, and how often the
// replicas' sweep runs (a third of it).
func (b *Bot) sharedLease() time.Duration {
	if b.o.Lease > 0 {
		return b.o.Lease
	}
	return store.DefaultLease
}
