package mattermost_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/chimaops/chima/adapters/mattermost"
	"github.com/chimaops/chima/adapters/mattermost/mmtest"
	"github.com/chimaops/chima/core/chat"
)

// Posts made while the websocket is down are fetched when it is back and
// handled once each, in order, before what comes after; posts handled
// before the drop are not handled again, nor posts from before the adapter
// started.
func TestPostsMadeWhileTheWebsocketWasDownAreHandledOnceItIsBack(t *testing.T) {
	for name, newBackend := range map[string]func(*testing.T) backend{
		"fake": func(t *testing.T) backend { return newFakeBackend(t) },
		"real": func(t *testing.T) backend { return needReal(t) },
	} {
		t.Run(name, func(t *testing.T) {
			b := newBackend(t)
			aliceID, aliceTok := b.user(t, "alice")
			room := b.channel(t, "catchup-"+strings.ToLower(model.NewId()[:8]), "alice")
			alice := model.NewAPIv4Client(b.url())
			alice.SetToken(aliceTok)
			post := func(text string) {
				t.Helper()
				if _, _, err := alice.CreatePost(&model.Post{ChannelId: room, Message: text}); err != nil {
					t.Fatalf("alice posting %q: %v", text, err)
				}
			}
			// Said before the bot started: not its to answer, then or
			// after a reconnect.
			post("before the bot")
			g := mmtest.NewGate(t, b.url())
			_, _, token := b.bot()
			var connects atomic.Int32
			var mu sync.Mutex
			var got []string
			a, err := mattermost.New(mattermost.Options{URL: g.URL, Token: token, Team: b.teamName(),
				MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
				OnConnect: func() { connects.Add(1) },
				Logger:    slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- a.Run(ctx, chat.HandlerFunc(func(_ context.Context, m chat.Message) {
					if m.Ref.Room != room || m.User.ID != aliceID {
						return
					}
					mu.Lock()
					got = append(got, m.Text)
					mu.Unlock()
				}))
			}()
			defer func() {
				cancel()
				<-done
			}()
			waitFor := func(what string, n int) {
				t.Helper()
				deadline := time.Now().Add(20 * time.Second)
				for {
					mu.Lock()
					have := len(got)
					mu.Unlock()
					if have >= n {
						return
					}
					if time.Now().After(deadline) {
						mu.Lock()
						defer mu.Unlock()
						t.Fatalf("%s: handled %q, want %d messages", what, got, n)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			for connects.Load() == 0 {
				time.Sleep(10 * time.Millisecond)
			}
			post("before")
			waitFor("a post while connected", 1)

			g.Cut()
			post("while down 1")
			post("while down 2")
			time.Sleep(200 * time.Millisecond) // the adapter redials, and is refused, a few times
			if n := connects.Load(); n != 1 {
				t.Fatalf("the adapter connected %d times through a cut network", n)
			}
			g.Open()
			waitFor("the posts made while down", 3)
			post("after")
			waitFor("a post after the reconnect", 4)
			time.Sleep(200 * time.Millisecond) // a duplicate would come now
			mu.Lock()
			defer mu.Unlock()
			if strings.Join(got, "|") != "before|while down 1|while down 2|after" {
				t.Fatalf("handled %q, want each post once, in order", got)
			}
		})
	}
}
