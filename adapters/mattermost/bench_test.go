package mattermost_test

import (
	"context"
	"io"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/chimaops/chima/adapters/mattermost"
	"github.com/chimaops/chima/core/chat"
)

// BenchmarkMattermostRoundTrip measures the bot's own share of a round
// trip: from the fake writing a posted event to the adapter's websocket to
// the adapter's createPost request (the reply in the thread) reaching the
// fake, with 8 posts in flight. The handler replies at once, so what is
// measured is the adapter: decoding the event, filtering, the handler
// call, rendering and the REST request.
func BenchmarkMattermostRoundTrip(b *testing.B) {
	t := &testing.T{}
	f := newFakeBackend(t)
	defer f.s.Close()
	p := newPeer(t, f)
	defer p.proxy.l.Close()
	ch := f.channel(t, "bench", "alice")
	aliceID, _ := f.user(t, "alice")

	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	done := make(chan struct{}, 1024)
	f.s.OnPosted = func(post *model.Post) {
		mu.Lock()
		sent[post.Id] = time.Now()
		mu.Unlock()
	}
	f.s.OnCreatePost = func(post *model.Post) {
		if post.RootId == "" {
			return
		}
		now := time.Now()
		mu.Lock()
		if t0, ok := sent[post.RootId]; ok {
			lat = append(lat, now.Sub(t0))
			delete(sent, post.RootId)
		}
		mu.Unlock()
		done <- struct{}{}
	}
	_, _, token := f.bot()
	a, err := mattermost.New(mattermost.Options{URL: f.s.URL, Token: token, Team: f.teamName(), OnConnect: p.connected,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = a.Run(ctx, chat.HandlerFunc(func(ctx context.Context, m chat.Message) {
			go func() { _, _ = a.Send(ctx, m.Ref.Thread(), chat.Text("ok")) }()
		}))
	}()
	p.waitUp(t)
	if t.Failed() {
		b.Fatal("setup failed")
	}

	const inFlight = 8
	b.ResetTimer()
	slots := make(chan struct{}, inFlight)
	for i := 0; i < b.N; i++ {
		slots <- struct{}{}
		go func() {
			<-done
			<-slots
		}()
		if _, err := f.s.CreatePost(aliceID, &model.Post{ChannelId: ch, Message: "status"}); err != nil {
			b.Fatal(err)
		}
	}
	for range inFlight {
		slots <- struct{}{}
	}
	b.StopTimer()
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(lat) == 0 {
		b.Fatal("no round trip measured")
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
