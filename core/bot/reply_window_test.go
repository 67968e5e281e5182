package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
	"github.com/chimaops/chima/core/outbox"
)

// limitedRoom is a Memory adapter that answers every post to room busy with
// a Retry-After while limited is set, as a service that rate-limits a room
// for a long while does.
type limitedRoom struct {
	*chattest.Memory
	limited atomic.Bool
}

func (a *limitedRoom) Send(ctx context.Context, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	if to.Room == "busy" && a.limited.Load() {
		return chat.MessageRef{}, &chat.RetryAfterError{After: 5 * time.Millisecond, Err: errors.New("ratelimited")}
	}
	return a.Memory.Send(ctx, to, out)
}

// A request's replies are queued, not waited for, up to replyWindow of
// them: a flood of replies to a rate-limited room holds at most that many
// in the outbox, the request waits beyond it, and once the limit lifts
// every reply goes out in the order it was made.
func TestAFloodOfRepliesToARateLimitedRoomIsBoundedAndKeepsItsOrder(t *testing.T) {
	mem := &limitedRoom{Memory: chattest.NewMemory("chat")}
	mem.limited.Store(true)
	b := New(Options{Adapters: []chat.Adapter{mem}, Outbox: outbox.Options{MaxAttempts: 1 << 30}})
	r := b.replierTo(chat.MessageRef{Adapter: "chat", Room: "busy", MessageID: "m1"}, chat.MessageRef{Adapter: "chat", Room: "busy"})
	const n = 200
	var made atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			r.send(context.Background(), chat.Output{Text: fmt.Sprint("reply ", i)}, false)
			made.Add(1)
		}
		r.wait(context.Background())
	}()
	deadline := time.Now().Add(10 * time.Second)
	for made.Load() < replyWindow {
		if time.Now().After(deadline) {
			t.Fatalf("only %d replies were queued while the room is limited, want %d without waiting", made.Load(), replyWindow)
		}
		time.Sleep(time.Millisecond)
	}
	// The request waits now; give it time to overrun the window if it
	// would (no duration is asserted).
	time.Sleep(50 * time.Millisecond)
	if got := made.Load(); got > replyWindow+1 {
		t.Fatalf("%d replies were queued to a room that sends none, want the request held at %d", got, replyWindow+1)
	}
	if got := b.out.Pending(); got > replyWindow+1 {
		t.Fatalf("the outbox holds %d replies of one request, want at most %d", got, replyWindow+1)
	}
	mem.limited.Store(false)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the replies were not all delivered once the limit lifted (%d made)", made.Load())
	}
	var got []string
	for _, s := range mem.Sent() {
		got = append(got, strings.TrimPrefix(s.Out.Text, "reply "))
	}
	for i, g := range got {
		if g != fmt.Sprint(i) {
			t.Fatalf("delivered out of order at %d: %v", i, got)
		}
	}
	if len(got) != n {
		t.Fatalf("delivered %d replies, want %d", len(got), n)
	}
	b.closeOutbox()
}

// refusedOnce is a Memory adapter that refuses its first post for good.
type refusedOnce struct {
	*chattest.Memory
	tried atomic.Bool
}

func (a *refusedOnce) Send(ctx context.Context, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	if !a.tried.Swap(true) {
		return chat.MessageRef{}, fmt.Errorf("refused: %w", chat.ErrRefused)
	}
	return a.Memory.Send(ctx, to, out)
}

// A progress message the service refused is not edited, as there is
// nothing to edit: the next progress is posted anew.
func TestProgressWhoseMessageWasRefusedIsPostedAnew(t *testing.T) {
	mem := &refusedOnce{Memory: chattest.NewMemory("chat")}
	b := New(Options{Adapters: []chat.Adapter{mem}})
	r := b.replierTo(chat.MessageRef{Adapter: "chat", Room: "ops", MessageID: "m1"}, chat.MessageRef{Adapter: "chat", Room: "ops"})
	ctx := context.Background()
	r.progressUpdate(ctx, "log", chat.Output{Text: "step 1"})
	<-r.progress["log"].Done()
	r.progressUpdate(ctx, "log", chat.Output{Text: "step 2"})
	r.wait(ctx)
	b.closeOutbox()
	sent := mem.Sent()
	if len(sent) != 1 || sent[0].Edited || sent[0].Out.Text != "step 2" {
		t.Fatalf("the service got %+v, want step 2 posted", sent)
	}
}
