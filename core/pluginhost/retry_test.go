package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/sdktest"
)

func TestRetryDelayDoublesUpToItsLimit(t *testing.T) {
	cases := []struct {
		failures int
		want     time.Duration
	}{
		{0, 5 * time.Second},
		{1, 10 * time.Second},
		{2, 20 * time.Second},
		{3, 40 * time.Second},
		{6, 5 * time.Minute},
		{7, 5 * time.Minute},
		{1000, 5 * time.Minute},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.failures), func(t *testing.T) {
			if got := retryDelay(c.failures, 5*time.Second, 5*time.Minute); got != c.want {
				t.Fatalf("retryDelay(%d) = %s, want %s", c.failures, got, c.want)
			}
		})
	}
}

// newRetryHost starts a host whose failed plugins are retried soon.
func newRetryHost(t *testing.T, specs ...Spec) (*Host, []error) {
	t.Helper()
	h := New(Options{
		Logger:       slog.New(slog.DiscardHandler),
		HostService:  func(string) pluginv1.HostServer { return sdktest.NewFakeHost() },
		RetryBackoff: 200 * time.Millisecond,
	})
	t.Cleanup(h.Stop)
	return h, h.Start(context.Background(), specs)
}

// A plugin configured never to be restarted (max_restarts: 0, a negative
// MaxRestarts here) says so and what brings it back, not "it crashed 1
// times within 1m0s" as though it would be retried.
func TestPluginNeverRestartedSaysSoAndWhatBringsItBack(t *testing.T) {
	s := spec("crashy")
	s.MaxRestarts = -1
	h, errs := newRetryHost(t, s)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, _, err := run(t, h, "crashy", "exit", nil); !errors.Is(err, ErrCrashed) {
		t.Fatalf("err = %v, want ErrCrashed", err)
	}
	waitFor(t, func() bool { return h.State("crashy") == StateFailed })
	st, _ := h.PluginStatus("crashy")
	const want = "it crashed and is never restarted (max_restarts: 0); restarting the bot starts it again"
	if got := st.Why(time.Now()); got != want || !st.NextRetry.IsZero() {
		t.Fatalf("Why = %q (next retry %v), want %q and no retry", got, st.NextRetry, want)
	}
}

func TestPluginFailedByCrashesIsRetriedAndHealthSaysSoMeanwhile(t *testing.T) {
	s := spec("crashy")
	s.MaxRestarts = 1
	h, errs := newRetryHost(t, s)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if err := h.Health(); err != nil {
		t.Fatalf("health of a running plugin: %v", err)
	}
	for range 2 {
		if _, _, err := run(t, h, "crashy", "exit", nil); !errors.Is(err, ErrCrashed) {
			t.Fatalf("err = %v, want ErrCrashed", err)
		}
	}
	waitFor(t, func() bool { return h.State("crashy") == StateFailed })
	st, _ := h.PluginStatus("crashy")
	if st.NextRetry.IsZero() || st.FailedToStart || st.Crashes != 2 {
		t.Fatalf("failed status = %+v", st)
	}
	if err := h.Health(); err == nil || !strings.Contains(err.Error(), "plugin crashy is down: it crashed 2 times within 1m0s; next restart in") {
		t.Fatalf("health = %v", err)
	}
	// Retried: it runs again, with a fresh allowance of crashes.
	waitFor(t, func() bool { return h.State("crashy") == StateRunning })
	if err := h.Health(); err != nil {
		t.Fatalf("health after the retry: %v", err)
	}
	if replies, _, err := run(t, h, "crashy", "echo", map[string]string{"text": "back"}); err != nil || replies[0] != "back" {
		t.Fatalf("after the retry: %v %v", replies, err)
	}
	if _, _, err := run(t, h, "crashy", "exit", nil); !errors.Is(err, ErrCrashed) {
		t.Fatalf("err = %v, want ErrCrashed", err)
	}
	waitFor(t, func() bool { return h.State("crashy") == StateRunning })
	// Failing again right after a retry waits longer than the last time.
	if _, _, err := run(t, h, "crashy", "exit", nil); !errors.Is(err, ErrCrashed) {
		t.Fatalf("err = %v, want ErrCrashed", err)
	}
	waitFor(t, func() bool { return h.State("crashy") == StateFailed })
	m := h.plugins["crashy"]
	m.mu.Lock()
	retries := m.retries
	m.mu.Unlock()
	if retries != 2 {
		t.Fatalf("failures in a row = %d, want 2", retries)
	}
}

func TestPluginThatCannotStartIsRetriedUntilItCan(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "ready")
	script := filepath.Join(dir, "plugin.sh")
	body := fmt.Sprintf("#!/bin/sh\n[ -f %s ] || { echo 'not ready' >&2; exit 1; }\nexec %s\n", flag, bins["crashy"])
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	s := spec("late")
	s.Path = script
	h, errs := newRetryHost(t, s)
	if len(errs) != 1 {
		t.Fatalf("start errors = %v, want one", errs)
	}
	st, _ := h.PluginStatus("late")
	if st.State != StateFailed || !st.FailedToStart || st.NextRetry.IsZero() {
		t.Fatalf("status = %+v", st)
	}
	if err := h.Health(); err == nil || !strings.Contains(err.Error(), "plugin late is down") {
		t.Fatalf("health = %v", err)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return h.State("late") == StateRunning })
	if replies, _, err := run(t, h, "late", "echo", map[string]string{"text": "up"}); err != nil || replies[0] != "up" {
		t.Fatalf("after the retry: %v %v", replies, err)
	}
}

func TestConfigureErrorIsTheLastErrorInThePluginsOwnWords(t *testing.T) {
	s := spec("badcfg")
	s.Settings = map[string]any{"fail_configure": "yes"}
	h, _ := newRetryHost(t, s)
	st, _ := h.PluginStatus("badcfg")
	if st.LastError != "configure crashy: configure refused on purpose" {
		t.Fatalf("last error = %q", st.LastError)
	}
}

func TestCallToAPluginThatDiedBeforeTheCallWasSentGoesToItsRestart(t *testing.T) {
	h, _ := newHost(t, spec("crashy"))
	var once sync.Once
	beforeCall = func(inst *instance) {
		once.Do(func() {
			// The plugin dies after the call picked its instance and
			// before the call is sent.
			_ = syscall.Kill(inst.pid, syscall.SIGKILL)
			<-inst.mux.done
		})
	}
	t.Cleanup(func() { beforeCall = nil })
	replies, _, err := run(t, h, "crashy", "echo", map[string]string{"text": "delivered once"})
	if err != nil || len(replies) != 1 || replies[0] != "delivered once" {
		t.Fatalf("replies %v, err %v; want the call run by the restarted plugin", replies, err)
	}
}
