package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-github/v57/github"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/sdktest"
	"github.com/chimaops/chima/sdk/wire"
)

// pluginOn runs a process's worth of the plugin behind the real gRPC glue,
// like sdktest.New, with host as its Host: several instances may share one
// host, as replicas of the bot share one store, and several events may be
// in flight at once.
func pluginOn(tb testing.TB, host pluginv1.HostServer, settings map[string]string) *wire.Conn {
	tb.Helper()
	client, srv := plugin.TestPluginGRPCConn(tb, false, map[string]plugin.Plugin{
		wire.PluginName: &wire.GRPCPlugin{Impl: func(br *plugin.GRPCBroker) pluginv1.PluginServer {
			return sdk.NewServer(newPlugin(&ci{}).spec(), br, nil)
		}},
	})
	tb.Cleanup(func() { srv.Stop(); client.Close() })
	raw, err := client.Dispense(wire.PluginName)
	if err != nil {
		tb.Fatal(err)
	}
	conn := raw.(*wire.Conn)
	id := conn.Broker.NextId()
	go conn.Broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		pluginv1.RegisterHostServer(s, host)
		return s
	})
	if _, err := conn.Plugin.Describe(context.Background(), &pluginv1.DescribeRequest{HostServiceId: id, Settings: settings, ProtocolMinor: wire.ProtocolMinor}); err != nil {
		tb.Fatal(err)
	}
	return conn
}

// benchPlugin is one instance of the plugin on a FakeHost of its own.
func benchPlugin(b *testing.B, settings map[string]string) (*wire.Conn, *sdktest.FakeHost) {
	b.Helper()
	host := sdktest.NewFakeHost()
	return pluginOn(b, host, settings), host
}

// deliverTo hands a webhook event to the plugin and waits for its end; an
// outcome other than success is an error.
func deliverTo(conn *wire.Conn, typ string, body []byte) error {
	stream, err := conn.Plugin.HandleEvent(context.Background(), &pluginv1.WebhookEvent{Type: typ, Payload: body, RequestId: "test"})
	if err != nil {
		return err
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if d := ev.GetDone(); d != nil && d.GetOutcome() != "success" && d.GetOutcome() != "" {
			return fmt.Errorf("event %s: %s", d.GetOutcome(), d.GetDetail())
		}
	}
}

// BenchmarkWebhookToMessageEdit measures a webhook event's way through the
// plugin to the chat message it edits (decode, the commit's record in the
// KV, the subscriptions, the edit through the Host), with 8 events in
// flight, each for a commit of its own that has a message already; without
// a token, so no GitHub call is on the path. It reports p50 and p99.
func BenchmarkWebhookToMessageEdit(b *testing.B) {
	b.Setenv("GITHUB_TOKEN", "")
	var subs []string
	for i := range 1000 {
		subs = append(subs, fmt.Sprintf(`{"repo": "org/repo-%d", "room": "r%d"}`, i, i))
	}
	subs = append(subs, `{"repo": "octo-org/octo-repo", "room": "builds"}`)
	conn, host := benchPlugin(b, map[string]string{"subscriptions": "[" + joinComma(subs) + "]", "chima_default_adapter": "test"})
	var attempt atomic.Int64
	events := func(commit int, status string) []byte {
		return runEventN(b, commit, status, int(attempt.Add(1)))
	}
	deliver := func(body []byte) error { return deliverTo(conn, "github:workflow_run", body) }
	const inFlight = 8
	// Every commit has its message: each measured event edits one.
	for c := range inFlight {
		if err := deliver(events(c, "queued")); err != nil {
			b.Fatal(err)
		}
	}
	var (
		mu    sync.Mutex
		lat   []time.Duration
		next  atomic.Int64
		wg    sync.WaitGroup
		ferr  atomic.Value
		state = []string{"in_progress", "completed"}
	)
	b.ResetTimer()
	for w := range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				if next.Add(1) > int64(b.N) {
					return
				}
				body := events(w, state[i%2])
				start := time.Now()
				if err := deliver(body); err != nil {
					ferr.Store(err)
					return
				}
				d := time.Since(start)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if err, ok := ferr.Load().(error); ok {
		b.Fatal(err)
	}
	if len(host.Updates()) < b.N {
		b.Fatalf("%d edits for %d events", len(host.Updates()), b.N)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds()), "p99-µs")
}

func joinComma(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

// runEventN is workflow_run.json for commit n of master: attempt attempt
// of its run, running or succeeded.
func runEventN(tb testing.TB, n int, status string, attempt int) []byte {
	return edited(tb, "workflow_run.json", func(ev *github.WorkflowRunEvent) {
		ev.WorkflowRun.HeadSHA = github.String(fmt.Sprintf("%040x", n))
		ev.WorkflowRun.ID = github.Int64(int64(5000 + n))
		ev.WorkflowRun.RunAttempt = github.Int(attempt)
		ev.WorkflowRun.Status, ev.WorkflowRun.Conclusion = github.String(status), nil
		if status == "completed" {
			ev.WorkflowRun.Conclusion = github.String("success")
		}
	})
}
