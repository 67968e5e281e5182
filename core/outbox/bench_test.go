package outbox

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chimaops/chima/core/chat"
)

// nullAdapter answers every call at once and keeps nothing: what remains
// is the outbox's own cost.
type nullAdapter struct{ seq atomic.Uint64 }

func (*nullAdapter) Name() string                                  { return "null" }
func (*nullAdapter) Self() chat.User                               { return chat.User{ID: "bot"} }
func (*nullAdapter) Run(ctx context.Context, _ chat.Handler) error { <-ctx.Done(); return nil }
func (*nullAdapter) MaxTextLen() int                               { return 40000 }

func (a *nullAdapter) Send(_ context.Context, to chat.MessageRef, _ chat.Output) (chat.MessageRef, error) {
	to.MessageID = strconv.FormatUint(a.seq.Add(1), 10)
	return to, nil
}

func (*nullAdapter) Update(context.Context, chat.MessageRef, chat.Output) error { return nil }

// BenchmarkOutboxSend is one Send through the outbox to a service that
// answers at once: queueing, the hand-off to the room's goroutine and back.
func BenchmarkOutboxSend(b *testing.B) {
	out := chat.Output{Text: "Deployment #8 of demo/main to staging is done.", Status: "good"}
	b.Run("one-room", func(b *testing.B) {
		o := New(Options{Registerer: prometheus.NewRegistry()})
		a := &nullAdapter{}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := o.Send(ctx, a, chat.MessageRef{Room: "ops"}, out); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		_ = o.Close(ctx)
	})
	b.Run("8-rooms-parallel", func(b *testing.B) {
		o := New(Options{Registerer: prometheus.NewRegistry()})
		a := &nullAdapter{}
		ctx := context.Background()
		var n atomic.Uint64
		b.ReportAllocs()
		b.SetParallelism(4) // 8 senders on this 2-core machine
		b.RunParallel(func(pb *testing.PB) {
			to := chat.MessageRef{Room: fmt.Sprint("room-", n.Add(1)%8)}
			for pb.Next() {
				if _, err := o.Send(ctx, a, to, out); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		_ = o.Close(ctx)
	})
	b.Run("long-split", func(b *testing.B) {
		o := New(Options{Registerer: prometheus.NewRegistry()})
		a := &nullAdapter{}
		ctx := context.Background()
		long := chat.Output{Code: numbered(4000, "2026-01-01T00:00:00Z step %d of the deploy ✓")}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := o.Send(ctx, a, chat.MessageRef{Room: "ops"}, long); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		_ = o.Close(ctx)
	})
}

// BenchmarkOutboxUpdate is one progress edit queued (mostly coalesced).
func BenchmarkOutboxUpdate(b *testing.B) {
	o := New(Options{Registerer: prometheus.NewRegistry()})
	a := &nullAdapter{}
	ctx := context.Background()
	ref, _ := o.Send(ctx, a, chat.MessageRef{Room: "ops"}, chat.Output{Text: "deploying"})
	out := chat.Output{Title: "Deploying…", Code: "step 1\nstep 2"}
	b.ReportAllocs()
	for b.Loop() {
		if err := o.Update(ctx, a, ref, out); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = o.Close(ctx)
}
