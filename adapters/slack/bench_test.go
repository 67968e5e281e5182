package slack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// BenchmarkSlackRoundTrip measures the bot's own share of a round trip,
// with 8 messages in flight (and 1, for the latency without queueing).
//
// The clock starts as the event is about to reach the bot: in Socket Mode,
// as the fake Slack is about to write the envelope's frame to the
// adapter's WebSocket (encoded, its locks taken: only the write is left);
// over the Events API, as the fake's HTTP client has its connection to the
// bot's server and is about to write the signed POST (httptrace's
// GotConn). It stops when the adapter's chat.postMessage for the reply has
// been written to its HTTP connection (WroteRequest on the Send call's
// context). In between is all the bot does: reading the frame or request
// (for HTTP, the signature check the core's mount runs), slack-go's and
// the adapter's decoding, the envelope's ack, filtering, the handler call,
// a hand-off to a pool of senders (as the core's outbox hands replies to
// its workers), rendering, and the Web API request up to its last byte
// written. Slack's side (building and encoding the event, handling
// chat.postMessage) is not in it, but for the write of the event itself.
//
// msgs/s is the whole loop's rate, the fake included, on the same cores.
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
			sent := map[string]time.Time{} // message text → its clock started
			lat := make([]time.Duration, 0, b.N+2*inFlight)
			sem := make(chan struct{}, inFlight)
			f.onPost = func(string, time.Time) {} // keep no state
			a := newAdapter(b, f, nil)
			work := make(chan chat.Message, 1024)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for range inFlight {
				wg.Go(func() {
					for m := range work {
						// The last request Send writes is the chat.postMessage.
						var wrote atomic.Int64
						trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(time.Now().UnixNano()) }}
						_, err := a.Send(httptrace.WithClientTrace(ctx, trace), m.Ref.Thread(), chat.Output{Text: "ok " + m.Text})
						if err != nil {
							if ctx.Err() == nil {
								b.Error(err)
							}
							continue
						}
						mu.Lock()
						if t0, ok := sent[m.Text]; ok {
							lat = append(lat, time.Unix(0, wrote.Load()).Sub(t0))
							delete(sent, m.Text)
						}
						mu.Unlock()
						<-sem
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
			// Stamped before the event is written, so before the bot can
			// have it.
			stamp := func(id string) {
				now := time.Now()
				mu.Lock()
				sent[id] = now
				mu.Unlock()
			}
			deliver := func(id string, raw []byte) {
				if mode.socket {
					f.sendRawMarked(raw, func() { stamp(id) })
					return
				}
				h := sign(signingSecret, time.Now(), raw)
				h.Set("Content-Type", "application/json")
				ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
					GotConn: func(httptrace.GotConnInfo) { stamp(id) }})
				go func() {
					res, err := f.doContext(ctx, "events", h, raw)
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
