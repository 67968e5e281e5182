package mattermost_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptrace"
	"slices"
	"strconv"
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

// BenchmarkMattermostRoundTrip measures the bot's own share of a round
// trip, with 8 posts in flight (and 1, for the latency without queueing).
//
// The clock starts as the fake server is about to write a user's posted
// event to the adapter's websocket (the frame encoded: the server's JSON
// work and locking are behind it, only the write is left), and stops when
// the adapter's createPost request for the reply in the thread has been
// written to its HTTP connection (httptrace's WroteRequest, on the Send
// call's context). In between is all the bot does: reading and decoding
// the frame and the post in it, filtering, the handler call, a hand-off to
// a pool of senders (as the core's outbox hands replies to its workers),
// rendering, and the REST request up to its last byte written. The server's
// handling of that request and its response are not in it; nor are
// observers' websockets, of which there are none.
//
// msgs/s is the whole loop's rate, the fake included, on the same cores.
func BenchmarkMattermostRoundTrip(b *testing.B) {
	for _, inFlight := range []int{8, 1} {
		b.Run("inflight="+strconv.Itoa(inFlight), func(b *testing.B) { benchRoundTrip(b, inFlight) })
	}
}

func benchRoundTrip(b *testing.B, inFlight int) {
	s := mmtest.New()
	defer s.Close()
	bot, token := s.AddUser("deploybot", true)
	alice, _ := s.AddUser("alice", false)
	ch := s.AddChannel("bench")
	s.Join(ch.Id, bot.Id)
	s.Join(ch.Id, alice.Id)

	var mu sync.Mutex
	arrived := map[string]time.Time{} // post id → its frame about to be written to the bot
	s.OnEventWrite = func(userID string, ev *model.WebSocketEvent) {
		if userID != bot.Id || ev.EventType() != model.WebsocketEventPosted || ev.GetData()["sender_name"] != "@alice" {
			return
		}
		now := time.Now()
		raw, _ := ev.GetData()["post"].(string)
		// The post's JSON starts with its id: a full decode here would
		// spend, on the same cores, time that is the server's.
		id, ok := strings.CutPrefix(raw, `{"id":"`)
		if !ok || len(id) < 26 {
			b.Errorf("posted event without a leading id: %.60s", raw)
			return
		}
		mu.Lock()
		arrived[id[:26]] = now
		mu.Unlock()
	}

	connected := make(chan struct{}, 1)
	a, err := mattermost.New(mattermost.Options{URL: s.URL, Token: token, Team: s.Team.Name,
		OnConnect: func() { connected <- struct{}{} },
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}

	lat := make([]time.Duration, 0, b.N+2*inFlight)
	slots := make(chan struct{}, inFlight)
	work := make(chan chat.Message, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for m := range work {
				// The last request Send writes is the createPost.
				var wrote atomic.Int64
				trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(time.Now().UnixNano()) }}
				_, err := a.Send(httptrace.WithClientTrace(ctx, trace), m.Ref.Thread(), chat.Text("ok"))
				if err != nil {
					if ctx.Err() == nil {
						b.Error(err)
					}
					continue
				}
				mu.Lock()
				if t0, ok := arrived[m.Ref.MessageID]; ok {
					lat = append(lat, time.Unix(0, wrote.Load()).Sub(t0))
					delete(arrived, m.Ref.MessageID)
				}
				mu.Unlock()
				<-slots
			}
		})
	}
	done := make(chan error, 1)
	go func() {
		done <- a.Run(ctx, chat.HandlerFunc(func(_ context.Context, m chat.Message) { work <- m }))
	}()
	defer func() {
		cancel()
		<-done
		close(work)
		wg.Wait()
	}()
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		b.Fatal("the adapter did not connect")
	}

	post := func() {
		slots <- struct{}{}
		if _, err := s.CreatePost(alice.Id, &model.Post{ChannelId: ch.Id, Message: "status"}); err != nil {
			b.Fatal(err)
		}
	}
	drain := func() {
		for range inFlight {
			slots <- struct{}{}
		}
		for range inFlight {
			<-slots
		}
	}
	for range 2 * inFlight { // warm up: the connections
		post()
	}
	drain()
	mu.Lock()
	lat = lat[:0]
	mu.Unlock()

	b.ResetTimer()
	start := time.Now()
	for range b.N {
		post()
	}
	drain()
	elapsed := time.Since(start)
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	if len(lat) != b.N {
		b.Fatalf("%d round trips measured for %d posts", len(lat), b.N)
	}
	reportLatency(b, lat, elapsed)
}

// reportLatency reports the p50 and p99 of lat, and the rate.
func reportLatency(b *testing.B, lat []time.Duration, elapsed time.Duration) {
	slices.Sort(lat)
	pct := func(p int) float64 { return float64(lat[(len(lat)-1)*p/100].Microseconds()) / 1e3 }
	b.ReportMetric(pct(50), "p50-ms")
	b.ReportMetric(pct(99), "p99-ms")
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "msgs/s")
}
