package bot_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
	"github.com/chimaops/chima/core/config"
	"github.com/chimaops/chima/core/internal/testplugins"
	"github.com/chimaops/chima/core/pluginhost"
)

// BenchmarkDispatch measures the whole dispatch path: a message enters the
// in-memory adapter, is routed and authorised, goes to the hello plugin
// process over go-plugin gRPC (one multiplexed stream), and the reply reaches
// the adapter. It reports messages/s and latency percentiles, with 1 and with
// 8 messages in flight, plus the host's and the plugin's resident memory.
func BenchmarkDispatch(b *testing.B) {
	for _, inflight := range []int{1, 8} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			tb := startBot(b, botOptions{plugins: []string{"examples/hello"}})
			rooms := make([]chan struct{}, inflight)
			for i := range rooms {
				rooms[i] = make(chan struct{}, 1)
			}
			tb.chat.Subscribe(func(s chattest.Sent) {
				i, err := strconv.Atoi(strings.TrimPrefix(s.Ref.Room, "r"))
				if err != nil || !strings.HasPrefix(s.Out.Text, "Hello") {
					b.Errorf("unexpected reply %q in %q", s.Out.Text, s.Ref.Room)
					return
				}
				rooms[i] <- struct{}{}
			})
			// Warm up: connections, the plugin's goroutines, the store.
			for i := range inflight {
				tb.sayAs("alice", "r"+strconv.Itoa(i), "chima hello warm")
				<-rooms[i]
			}
			tb.chat.Reset()

			lat := make([][]time.Duration, inflight)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := range inflight {
				n := b.N / inflight
				if w < b.N%inflight {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					room := "r" + strconv.Itoa(w)
					l := make([]time.Duration, 0, n)
					for range n {
						t0 := time.Now()
						tb.chat.Inject(chat.Message{Ref: chat.MessageRef{Room: room}, User: chat.User{ID: "alice"}, Text: "chima hello bench"})
						<-rooms[w]
						l = append(l, time.Since(t0))
					}
					lat[w] = l
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			all := slices.Concat(lat...)
			slices.Sort(all)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(percentile(all, 50).Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(percentile(all, 99).Nanoseconds())/1e3, "p99-µs")
			b.ReportMetric(rssMiB(os.Getpid()), "host-RSS-MiB")
			b.ReportMetric(rssMiB(tb.host.Status()[0].PID), "plugin-RSS-MiB")
			tb.chat.Reset()
		})
	}
}

// BenchmarkPluginStart measures start-to-ready of the plugins `make run`
// starts: process start, handshake, AutoMTLS, Describe and the multiplexed
// stream, all plugins concurrently.
func BenchmarkPluginStart(b *testing.B) {
	var specs []pluginhost.Spec
	for _, name := range shippedPlugins() {
		path, err := testplugins.Build(name)
		if err != nil {
			b.Fatal(err)
		}
		spec := pluginhost.Spec{Name: filepath.Base(name), Path: path, Env: []string{"PATH=" + os.Getenv("PATH")}}
		switch spec.Name {
		case "deploy":
			apps, _ := filepath.Abs("../../examples/config/apps.json")
			spec.Settings = map[string]any{"apps_file": apps, "workspace_dir": b.TempDir()}
		case "backup":
			// It checks restic's version at start, as under make run.
			dir := b.TempDir()
			password := filepath.Join(dir, "password")
			if err := os.WriteFile(password, []byte("bench"), 0o600); err != nil {
				b.Fatal(err)
			}
			spec.Settings = map[string]any{"restic": benchRestic(b), "targets": map[string]any{"files": map[string]any{
				"kind": "directory", "path": b.TempDir(), "repository": filepath.Join(dir, "repo"),
				"password_file": password, "scratch": filepath.Join(dir, "scratch"),
			}}}
		}
		specs = append(specs, spec)
	}
	b.ResetTimer()
	for b.Loop() {
		h := pluginhost.New(pluginhost.Options{})
		if errs := h.Start(context.Background(), specs); len(errs) > 0 {
			b.Fatal(errs)
		}
		b.StopTimer()
		h.Stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(len(specs)), "plugins")
}

// benchRestic is the restic .ci/services.sh built (CHIMA_SERVICES_ENV), else
// the one make run links, else restic on $PATH.
func benchRestic(b *testing.B) string {
	if env := os.Getenv("CHIMA_SERVICES_ENV"); env != "" {
		if data, err := os.ReadFile(env); err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(line, "CHIMA_RESTIC="); ok {
					return v
				}
			}
		}
	}
	if p, err := filepath.Abs("../../bin/restic"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath("restic")
	if err != nil {
		b.Skip("no restic for the backup plugin: run bash .ci/services.sh up or make run once")
	}
	return p
}

// shippedPlugins lists the plugin packages the example config runs.
func shippedPlugins() []string {
	var out []string
	for _, p := range []string{"examples/hello", "plugins/deploy", "plugins/cistatus", "plugins/backup"} {
		if _, err := os.Stat(filepath.Join("..", "..", p, "main.go")); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

// rssMiB reads a process's resident set size from /proc.
func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkDeployCommandToProviderStart measures what a person waits for
// before their deploy runs: from the chat message to the moment the app's
// deploy script starts, through the router, the deploy plugin, the durable
// job queue, a fetch of the warm mirror, a clean checkout of the exact commit
// of a 5,000-file repository and the provider's exec.
func BenchmarkDeployCommandToProviderStart(b *testing.B) {
	if _, err := exec.LookPath("git"); err != nil {
		b.Skip("git not installed")
	}
	dir := b.TempDir()
	repo, marks := filepath.Join(dir, "repo"), filepath.Join(dir, "marks")
	for _, d := range []string{filepath.Join(repo, "script"), marks} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	// The script's first act is to note when it started.
	script := "#!/bin/sh\ndate +%s%N > " + marks + "/$DEPLOYMENT_ID.tmp && mv " + marks + "/$DEPLOYMENT_ID.tmp " + marks + "/$DEPLOYMENT_ID\n"
	if err := os.WriteFile(filepath.Join(repo, "script/deploy"), []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	for i := range 5000 {
		sub := filepath.Join(repo, "src", fmt.Sprintf("d%02d", i%50))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%04d.txt", i)), []byte(fmt.Sprintf("file %d\n", i)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"commit", "-q", "-m", "5000 files"}} {
		cmd := exec.Command("git", append([]string{"-c", "user.name=b", "-c", "user.email=b@e", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = repo
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	appsFile := filepath.Join(dir, "apps.json")
	if err := os.WriteFile(appsFile, []byte(fmt.Sprintf(`{"demo": {"provider": "shell", "repository": %q, "environments": ["staging"]}}`, repo)), 0o644); err != nil {
		b.Fatal(err)
	}
	tb := startBot(b, botOptions{
		plugins:  []string{"plugins/deploy"},
		roles:    map[string]config.Role{"deployer": {Users: []string{"mem:alice"}, Permissions: []string{"deploy"}}},
		settings: map[string]map[string]any{"deploy": {"apps_file": appsFile, "workspace_dir": filepath.Join(dir, "ws")}},
		timeout:  time.Minute,
	})
	deploy := func(id int) time.Duration {
		t0 := time.Now()
		tb.say("chima deploy demo/main to staging")
		path := filepath.Join(marks, strconv.Itoa(id))
		deadline := time.Now().Add(time.Minute)
		for {
			raw, err := os.ReadFile(path)
			if err == nil {
				ns, _ := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
				started := time.Unix(0, ns)
				// Let the job end before the next one: one deploy at a time.
				waitJobState(b, tb, int64(id))
				return started.Sub(t0)
			}
			if time.Now().After(deadline) {
				b.Fatalf("deployment %d never started its script", id)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	deploy(1) // warms the mirror: the figure is for a warm cache
	b.ResetTimer()
	var lat []time.Duration
	for i := range b.N {
		lat = append(lat, deploy(i+2))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(percentile(lat, 50).Microseconds())/1e3, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 99).Microseconds())/1e3, "p99-ms")
}

func waitJobState(b *testing.B, tb *testBot, id int64) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if j, err := tb.store.GetJob(context.Background(), id); err == nil && j.State.Terminal() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	b.Fatalf("job %d did not end", id)
}
