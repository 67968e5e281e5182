package bot_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-github/v57/github"

	"github.com/chimaops/chima/core/chat/chattest"
	"github.com/chimaops/chima/core/outbox"
	"github.com/chimaops/chima/core/webhook"
)

// BenchmarkCIWebhookToMessageEdit measures a GitHub webhook's way to the
// chat message it edits through the real bot: a signed workflow_run
// delivery enters the bot's /webhooks/github handler (signature, durable
// write), the event queue hands it to the ci-status plugin process over
// gRPC, the plugin takes its commit's lease and record in the store's KV
// and edits the commit's message through the host, and the in-memory chat
// sees the edit. 8 deliveries are in flight, each for a commit of its own
// whose message exists. The outbox's edit interval (1 s per message, a
// guard against the services' rate limits that coalesces edits) is off:
// the figure is the path, not the wait that guard adds by design.
func BenchmarkCIWebhookToMessageEdit(b *testing.B) {
	const inFlight, secret = 8, "bench secret"
	tb := startBot(b, botOptions{
		plugins:  []string{"plugins/cistatus"},
		settings: map[string]map[string]any{"cistatus": {"subscriptions": `[{"repo": "octo-org/octo-repo", "room": "mem:builds"}]`}},
		outbox:   outbox.Options{DefaultMinEditInterval: -1},
	})
	hook := &webhook.GitHub{Secret: []byte(secret), Queue: tb.bot.Events()}
	raw, err := os.ReadFile("../webhook/testdata/github/workflow_run.json")
	if err != nil {
		b.Fatal(err)
	}
	// Commit w is w+1 repeated: its message's title names it.
	shaOf := func(w int) string { return strings.Repeat(fmt.Sprintf("%x", w+1), 40) }
	var attempt atomic.Int64
	body := func(w int, status string) []byte {
		var ev github.WorkflowRunEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			b.Fatal(err)
		}
		ev.WorkflowRun.HeadSHA = github.String(shaOf(w))
		ev.WorkflowRun.ID = github.Int64(int64(5000 + w))
		ev.WorkflowRun.RunAttempt = github.Int(int(attempt.Add(1)))
		ev.WorkflowRun.Status, ev.WorkflowRun.Conclusion = github.String(status), nil
		if status == "completed" {
			ev.WorkflowRun.Conclusion = github.String("success")
		}
		out, err := json.Marshal(&ev)
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
	var delivery atomic.Int64
	deliver := func(payload []byte) {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(payload)
		req := httptest.NewRequest(http.MethodPost, "/webhooks/github", strings.NewReader(string(payload)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "workflow_run")
		req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d", delivery.Add(1)))
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		w := httptest.NewRecorder()
		hook.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Errorf("the webhook answered %d %s", w.Code, w.Body)
		}
	}
	seen := make([]chan bool, inFlight) // true for an edit
	for i := range seen {
		seen[i] = make(chan bool, 16)
	}
	tb.chat.Subscribe(func(s chattest.Sent) {
		_, rest, ok := strings.Cut(s.Out.Title, " @ ")
		if !ok || len(rest) < 7 {
			return
		}
		for w := range inFlight {
			if strings.HasPrefix(rest, shaOf(w)[:7]) {
				seen[w] <- s.Edited
			}
		}
	})
	// Every commit has its message: each measured delivery edits one.
	for w := range inFlight {
		deliver(body(w, "queued"))
		if <-seen[w] {
			b.Fatalf("commit %d's first event edited a message", w)
		}
	}
	lat := make([][]time.Duration, inFlight)
	states := []string{"in_progress", "completed"}
	// The payloads are made before the clock starts: GitHub makes them on
	// its machines, not on the bot's CPUs, which the figure is about.
	payloads := make([][][]byte, inFlight)
	for w := range inFlight {
		n := b.N / inFlight
		if w < b.N%inFlight {
			n++
		}
		for i := range n {
			payloads[w] = append(payloads[w], body(w, states[i%2]))
		}
	}
	b.ResetTimer()
	cpu0 := treeCPU()
	var wg sync.WaitGroup
	for w := range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, payload := range payloads[w] {
				t0 := time.Now()
				deliver(payload)
				select {
				case edited := <-seen[w]:
					if !edited {
						b.Errorf("commit %d got a new message, not an edit", w)
						return
					}
				case <-time.After(30 * time.Second):
					b.Errorf("commit %d's message was never edited", w)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	cpu := treeCPU() - cpu0
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(percentile(all, 50).Microseconds())/1e3, "p50-ms")
	b.ReportMetric(float64(percentile(all, 99).Microseconds())/1e3, "p99-ms")
	// CPU per delivery, the bot's and the plugin's: with 8 in flight on a
	// few shared cores, latency follows it and the other load; it does not
	// follow the other load.
	b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N), "cpu-ms/delivery")
}

// treeCPU is the CPU time (user and system) used so far by this process
// and the processes it started (the plugins), read from /proc; 0 where
// /proc cannot tell.
func treeCPU() time.Duration {
	var ticks int64
	var walk func(pid string)
	walk = func(pid string) {
		ticks += procTicks(pid)
		tasks, _ := os.ReadDir("/proc/" + pid + "/task")
		for _, t := range tasks {
			kids, _ := os.ReadFile("/proc/" + pid + "/task/" + t.Name() + "/children")
			for _, k := range strings.Fields(string(kids)) {
				walk(k)
			}
		}
	}
	walk(strconv.Itoa(os.Getpid()))
	return time.Duration(ticks) * time.Second / 100 // USER_HZ is 100 on Linux
}

// procTicks is a process's utime + stime from /proc/<pid>/stat, in clock
// ticks.
func procTicks(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// after its closing one (state is field 3, utime 14, stime 15).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}
