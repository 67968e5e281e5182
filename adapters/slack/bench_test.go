package slack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// BenchmarkSlackRoundTrip measures the bot's own share of a round trip:
// from the event leaving the fake Slack (a Socket Mode envelope written to
// the WebSocket, or an Events API POST sent) to the reply's chat.postMessage
// reaching it, with 8 messages in flight (and 1, for the latency without queueing). The handler answers each message
// from a pool of 8 senders, as the core's outbox would.
func BenchmarkSlackRoundTrip(b *testing.B) {
	for _, mode := range []struct {
		name     string
		socket   bool
		inFlight int
	}{{"socket mode", true, 8}, {"events API", false, 8}, {"socket mode", true, 1}, {"events API", false, 1}} {
		b.Run(fmt.Sprintf("%s/inflight=%d", mode.name, mode.inFlight), func(b *testing.B) {
			inFlight := mode.inFlight
			f := newFakeSlack(b, mode.socket)
			general := f.channel("general")
			alice := f.user("alice")

			var mu sync.Mutex
			sent := map[string]time.Time{}
			lat := make([]time.Duration, 0, b.N)
			sem := make(chan struct{}, inFlight)
			f.onPost = func(text string, at time.Time) {
				id := strings.TrimPrefix(text, "ok ")
				mu.Lock()
				t0, ok := sent[id]
				delete(sent, id)
				if ok {
					lat = append(lat, at.Sub(t0))
				}
				mu.Unlock()
				if ok {
					<-sem
				}
			}
			a := newAdapter(b, f, nil)
			work := make(chan chat.Message, 1024)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for range inFlight {
				wg.Go(func() {
					for m := range work {
						if _, err := a.Send(ctx, m.Ref.Thread(), chat.Output{Text: "ok " + m.Text}); err != nil && ctx.Err() == nil {
							b.Error(err)
						}
					}
				})
			}
			h := chat.HandlerFunc(func(_ context.Context, m chat.Message) { work <- m })
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx, h) }()
			defer func() {
				cancel()
				<-done
				close(work)
				wg.Wait()
			}()

			// Each event is built before it is timed: Slack's side of the
			// work is not the bot's.
			build := func(id string) []byte {
				ev, _ := f.userMessage(general, alice, "", mentionFirst, id)
				cb, _ := f.callback(ev)
				if !mode.socket {
					body, _ := json.Marshal(cb)
					return body
				}
				env, _ := json.Marshal(map[string]any{"type": "events_api", "envelope_id": "e" + id, "payload": cb, "accepts_response_payload": false})
				return env
			}
			deliver := func(id string, raw []byte) {
				if mode.socket {
					mu.Lock()
					sent[id] = time.Now()
					mu.Unlock()
					f.sendRaw(raw)
					return
				}
				h := sign(signingSecret, time.Now(), raw)
				h.Set("Content-Type", "application/json")
				mu.Lock()
				sent[id] = time.Now()
				mu.Unlock()
				go func() {
					res, err := f.do("events", h, raw)
					if err != nil || res.StatusCode != http.StatusOK {
						b.Errorf("POST /events: %v %v", err, res)
					}
				}()
			}
			if mode.socket {
				f.waitConnected(b, 1)
			}
			// Warm up: the connections, the user's name in the cache.
			for i := range 2 * inFlight {
				id := "warm" + strconv.Itoa(i)
				sem <- struct{}{}
				deliver(id, build(id))
			}
			for range inFlight {
				sem <- struct{}{}
			}
			for range inFlight {
				<-sem
			}
			mu.Lock()
			lat = lat[:0]
			mu.Unlock()

			events := make([][]byte, b.N)
			for i := range events {
				events[i] = build(strconv.Itoa(i))
			}

			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				sem <- struct{}{}
				deliver(strconv.Itoa(i), events[i])
			}
			for range inFlight { // wait for the last replies
				sem <- struct{}{}
			}
			elapsed := time.Since(start)
			b.StopTimer()

			mu.Lock()
			defer mu.Unlock()
			slices.Sort(lat)
			if len(lat) != b.N {
				b.Fatalf("%d replies for %d messages", len(lat), b.N)
			}
			pct := func(p int) float64 { return float64(lat[(len(lat)-1)*p/100].Microseconds()) / 1e3 }
			b.ReportMetric(pct(50), "p50-ms")
			b.ReportMetric(pct(99), "p99-ms")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
		})
	}
}
