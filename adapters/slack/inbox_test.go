package slack_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
)

// inbox is a handler that keeps what it gets until a test takes it.
type inbox struct {
	mu     sync.Mutex
	msgs   []chat.Message
	clicks []chat.Interaction
	wake   chan struct{}
}

func newInbox() *inbox { return &inbox{wake: make(chan struct{}, 1)} }

func (b *inbox) HandleMessage(_ context.Context, m chat.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	b.poke()
}

func (b *inbox) HandleInteraction(_ context.Context, in chat.Interaction) {
	b.mu.Lock()
	b.clicks = append(b.clicks, in)
	b.mu.Unlock()
	b.poke()
}

func (b *inbox) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func take[T any](t testing.TB, b *inbox, list *[]T, what string) T {
	t.Helper()
	timeout := time.After(chattest.Guard)
	for {
		b.mu.Lock()
		if len(*list) > 0 {
			v := (*list)[0]
			*list = (*list)[1:]
			b.mu.Unlock()
			return v
		}
		b.mu.Unlock()
		select {
		case <-b.wake:
		case <-timeout:
			t.Fatalf("the handler got no %s within %s", what, chattest.Guard)
		}
	}
}

func (b *inbox) next(t testing.TB) chat.Message { t.Helper(); return take(t, b, &b.msgs, "message") }

func (b *inbox) click(t testing.TB) chat.Interaction {
	t.Helper()
	return take(t, b, &b.clicks, "interaction")
}
