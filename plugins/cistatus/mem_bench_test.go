package main

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/sdktest"
)

// BenchmarkMemory1000Subscriptions10000Commits measures the plugin's heap
// with 1,000 subscriptions in its settings and 10,000 commits tracked (each
// with a workflow still running and a message posted): runtime.ReadMemStats
// after a GC, less the heap before the plugin started and less the bytes of
// the FakeHost's KV and of its record of the posts (the real host keeps
// those in its store and chat, not in the plugin's process; they are
// counted at their encoded size, so the figure is an upper bound). Run
// with -benchtime 1x.
func BenchmarkMemory1000Subscriptions10000Commits(b *testing.B) {
	b.Setenv("GITHUB_TOKEN", "")
	const commits = 10000
	var subs []string
	for i := range 999 {
		subs = append(subs, fmt.Sprintf(`{"repo": "org/repo-%d", "room": "r%d"}`, i, i))
	}
	subs = append(subs, `{"repo": "octo-org/octo-repo", "room": "builds"}`)
	settings := map[string]string{"subscriptions": "[" + joinComma(subs) + "]", "chima_default_adapter": "test"}
	bodies := make([][]byte, commits)
	for n := range commits {
		bodies[n] = runEventN(b, n, "in_progress", 1)
	}
	for range b.N {
		base := heapAfterGC()
		host := sdktest.NewFakeHost()
		conn := pluginOn(b, host, settings)
		var next atomic.Int64
		var wg sync.WaitGroup
		var ferr atomic.Value
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					n := next.Add(1) - 1
					if n >= commits {
						return
					}
					if err := deliverTo(conn, "github:workflow_run", bodies[n]); err != nil {
						ferr.Store(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if err, ok := ferr.Load().(error); ok {
			b.Fatal(err)
		}
		if got := len(host.Posts()); got != commits {
			b.Fatalf("%d messages for %d commits", got, commits)
		}
		kv := 0
		for _, key := range kvKeys(host) {
			v, _ := host.KVValue(key)
			kv += len(key) + len(v)
		}
		// The FakeHost's record of the posts is not the plugin's either.
		for _, p := range host.Posts() {
			kv += outputBytes(p.Output)
		}
		total := heapAfterGC()
		b.ReportMetric(float64(total-base-uint64(kv)), "plugin-heap-B")
		b.ReportMetric(float64(kv), "host-kv-posts-B")
		b.ReportMetric(float64(len(kvKeys(host))), "kv-keys")
	}
}

// kvKeys lists every key of the FakeHost's KV, through its List.
func kvKeys(h *sdktest.FakeHost) []string {
	resp, err := h.KVList(context.Background(), &pluginv1.KVListRequest{})
	if err != nil {
		return nil
	}
	return resp.GetKeys()
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// outputBytes is the text an output holds, what the FakeHost's record of a
// post costs beyond its fixed size.
func outputBytes(o *sdk.Output) int {
	n := len(o.Title) + len(o.Text) + len(o.Code) + len(o.Fallback)
	for _, f := range o.Fields {
		n += len(f.Title) + len(f.Value)
	}
	for _, b := range o.Buttons {
		n += len(b.Label) + len(b.Command) + len(b.Action) + len(b.Value)
	}
	return n
}
