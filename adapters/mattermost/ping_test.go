package mattermost_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chimaops/chima/adapters/mattermost"
	"github.com/chimaops/chima/adapters/mattermost/mmtest"
	"github.com/chimaops/chima/core/chat"
)

// TestWebsocketPingTimeout checks that the websocket is kept while the
// server pings it and dialled again when the pings stop.
func TestWebsocketPingTimeout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pingEvery time.Duration // the server's
		ownPings  time.Duration // the adapter's (Options.PingInterval)
		redialled bool
	}{
		{"a websocket the server pings is kept", 50 * time.Millisecond, 0, false},
		{"a websocket the server stops pinging is dialled again", time.Hour, 0, true},
		{"a websocket the server answers the adapter's pings on is kept", time.Hour, 50 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mmtest.New()
			defer s.Close()
			s.PingEvery = tc.pingEvery
			_, token := s.AddUser("deploybot", true)
			var connects atomic.Int32
			a, err := mattermost.New(mattermost.Options{URL: s.URL, Token: token, Team: s.Team.Name,
				PingTimeout: 500 * time.Millisecond, PingInterval: tc.ownPings, MinBackoff: 10 * time.Millisecond,
				OnConnect: func() { connects.Add(1) },
				Logger:    slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx, chat.HandlerFunc(func(context.Context, chat.Message) {})) }()
			defer func() {
				cancel()
				<-done
			}()
			// Four ping timeouts: a kept connection has been pinged through
			// them; a silent one has been dialled again.
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) && (tc.redialled && connects.Load() < 2 || !tc.redialled) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := connects.Load(); (n >= 2) != tc.redialled {
				t.Errorf("%d connections, want redialled %v", n, tc.redialled)
			}
		})
	}
}
