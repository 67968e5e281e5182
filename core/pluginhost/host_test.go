package pluginhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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

	"github.com/chimaops/chima/core/internal/testplugins"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/sdktest"
)

// bins holds the fixture plugin binaries built once for the package's tests.
var bins = map[string]string{}

func TestMain(m *testing.M) {
	for _, name := range []string{"crashy", "v2"} {
		p, err := testplugins.Build(name)
		if err != nil {
			panic(err)
		}
		bins[name] = p
	}
	code := m.Run()
	testplugins.Cleanup()
	os.Exit(code)
}

func spec(name string) Spec {
	return Spec{Name: name, Path: bins["crashy"], Env: []string{"PATH=" + os.Getenv("PATH")}, MaxRestarts: 3, RestartWindow: time.Minute}
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func newHost(t *testing.T, specs ...Spec) (*Host, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	h := New(Options{
		Logger:      slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		HostService: func(string) pluginv1.HostServer { return sdktest.NewFakeHost() },
		ReadyWait:   5 * time.Second,
	})
	t.Cleanup(h.Stop)
	if errs := h.Start(context.Background(), specs); len(errs) > 0 {
		t.Fatalf("start: %v", errs)
	}
	return h, logs
}

func command(name string, args map[string]string) *pluginv1.Call {
	return &pluginv1.Call{Kind: &pluginv1.Call_Command{Command: &pluginv1.CommandRequest{
		RequestId: "r1", Command: name, Args: args,
		Message: &pluginv1.MessageRef{Adapter: "test", Room: "general", MessageId: "m1"},
	}}}
}

// run calls a command and returns the reply texts and the Done event.
func run(t *testing.T, h *Host, plugin, name string, args map[string]string) ([]string, *pluginv1.Done, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var replies []string
	var done *pluginv1.Done
	err := h.Call(ctx, plugin, command(name, args), func(ev *pluginv1.Event) {
		switch k := ev.GetKind().(type) {
		case *pluginv1.Event_Reply:
			replies = append(replies, k.Reply.GetOutput().GetText())
		case *pluginv1.Event_Done:
			done = k.Done
		}
	})
	return replies, done, err
}

func TestHostStartsPluginAndRunsCommandsOverMultiplexedStream(t *testing.T) {
	h, _ := newHost(t, spec("crashy"))
	st := h.Status()
	if len(st) != 1 || st[0].State != StateRunning || !st[0].Multiplexed || st[0].Version != "0.0.1" || st[0].PID == 0 {
		t.Fatalf("status = %+v", st)
	}
	for i := range 20 {
		text := fmt.Sprintf("message %d", i)
		replies, done, err := run(t, h, "crashy", "echo", map[string]string{"text": text})
		if err != nil || len(replies) != 1 || replies[0] != text || done == nil {
			t.Fatalf("echo %d: replies=%v done=%v err=%v", i, replies, done, err)
		}
	}
}

func TestHostGivesPluginsACleanEnvironment(t *testing.T) {
	t.Setenv("CHIMA_TEST_HOST_ONLY", "leaked")
	s := spec("crashy")
	s.Env = append(s.Env, "GIVEN=yes")
	h, _ := newHost(t, s)
	replies, _, err := run(t, h, "crashy", "env", map[string]string{"names": "GIVEN CHIMA_TEST_HOST_ONLY"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "GIVEN=yes CHIMA_TEST_HOST_ONLY="; len(replies) != 1 || replies[0] != want {
		t.Fatalf("env = %v, want %q", replies, want)
	}
}

func TestHostRedactsSecretsFromPluginLogs(t *testing.T) {
	s := spec("crashy")
	s.Env = append(s.Env, "SECRET_TOKEN=hunter2-very-secret")
	s.Secrets = []string{"hunter2-very-secret"}
	h, logs := newHost(t, s)
	if _, _, err := run(t, h, "crashy", "env", map[string]string{"names": "NONE"}); err != nil {
		t.Fatal(err)
	}
	// The plugin's log line travels through stderr asynchronously.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "env asked") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	out := logs.String()
	if !strings.Contains(out, "env asked") {
		t.Fatalf("plugin log line did not reach the host log:\n%s", out)
	}
	if strings.Contains(out, "hunter2-very-secret") || !strings.Contains(out, "[redacted]") {
		t.Fatalf("secret not redacted:\n%s", out)
	}
}

func TestHostServesHostServiceThroughBroker(t *testing.T) {
	h, _ := newHost(t, spec("crashy"))
	replies, _, err := run(t, h, "crashy", "kv", map[string]string{"key": "k", "value": "v1"})
	if err != nil || len(replies) != 1 || replies[0] != "k=v1" {
		t.Fatalf("kv: %v %v", replies, err)
	}
}

func TestCrashMidCommandEndsCallWithErrCrashedAndRestartsPlugin(t *testing.T) {
	h, _ := newHost(t, spec("crashy"))
	oldPID := h.Status()[0].PID
	replies, _, err := run(t, h, "crashy", "exit", nil)
	if !errors.Is(err, ErrCrashed) {
		t.Fatalf("err = %v, want ErrCrashed", err)
	}
	if len(replies) != 1 || replies[0] != "about to exit" {
		t.Fatalf("replies before the crash were lost: %v", replies)
	}
	// The next command waits for the restart and works; it is never the
	// crashed command run again.
	replies, _, err = run(t, h, "crashy", "echo", map[string]string{"text": "back"})
	if err != nil || len(replies) != 1 || replies[0] != "back" {
		t.Fatalf("after restart: %v %v", replies, err)
	}
	st := h.Status()[0]
	if st.Restarts != 1 || st.PID == oldPID || st.State != StateRunning {
		t.Fatalf("status after restart = %+v (old pid %d)", st, oldPID)
	}
}

func TestPluginKilledByHandWhileIdleIsRestarted(t *testing.T) {
	h, _ := newHost(t, spec("crashy"))
	pid := h.Status()[0].PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { st := h.Status()[0]; return st.State == StateRunning && st.PID != pid })
	if replies, _, err := run(t, h, "crashy", "echo", map[string]string{"text": "ok"}); err != nil || replies[0] != "ok" {
		t.Fatalf("after kill: %v %v", replies, err)
	}
}

func TestOversizedMessageBreakingTheStreamRestartsThePlugin(t *testing.T) {
	h, _ := newHost(t, spec("crashy"))
	oldPID := h.Status()[0].PID
	if _, _, err := run(t, h, "crashy", "big", nil); !errors.Is(err, ErrCrashed) {
		t.Fatalf("err = %v, want ErrCrashed", err)
	}
	// The process lived on with a dead stream; it was replaced.
	replies, _, err := run(t, h, "crashy", "echo", map[string]string{"text": "served"})
	if err != nil || len(replies) != 1 || replies[0] != "served" {
		t.Fatalf("after the broken stream: %v %v", replies, err)
	}
	if st := h.Status()[0]; st.PID == oldPID || st.Restarts != 1 {
		t.Fatalf("status = %+v (old pid %d)", st, oldPID)
	}
	waitFor(t, func() bool { return !alive(oldPID) })
}

func TestASlowConsumerDoesNotHoldUpThePluginsOtherCalls(t *testing.T) {
	h, _ := newHost(t, spec("crashy"))
	release := make(chan struct{})
	slowDone := make(chan error, 1)
	go func() {
		// A consumer stuck on its chat service (rate limited) while the
		// plugin streams far more than any buffer holds.
		slowDone <- h.Call(context.Background(), "crashy", command("spam", map[string]string{"n": "500"}), func(*pluginv1.Event) { <-release })
	}()
	time.Sleep(100 * time.Millisecond) // let the spam fill whatever it fills
	replies, _, err := run(t, h, "crashy", "echo", map[string]string{"text": "not held up"})
	close(release)
	if err != nil || len(replies) != 1 || replies[0] != "not held up" {
		t.Fatalf("a call behind the slow one: %v %v", replies, err)
	}
	if err := <-slowDone; err != nil {
		t.Fatalf("slow call: %v", err)
	}
}

func TestHandlerPanicIsAnErrorNotACrash(t *testing.T) {
	h, _ := newHost(t, spec("crashy"))
	_, done, err := run(t, h, "crashy", "panic", nil)
	if err != nil || done.GetOutcome() != "error" || !strings.Contains(done.GetDetail(), "on purpose") {
		t.Fatalf("done=%v err=%v", done, err)
	}
	if st := h.Status()[0]; st.Restarts != 0 || st.State != StateRunning {
		t.Fatalf("status = %+v", st)
	}
}

func TestRepeatedCrashesMarkPluginFailed(t *testing.T) {
	s := spec("crashy")
	s.MaxRestarts = 2
	h, _ := newHost(t, s)
	for range 3 {
		if _, _, err := run(t, h, "crashy", "exit", nil); !errors.Is(err, ErrCrashed) {
			t.Fatalf("err = %v", err)
		}
	}
	waitFor(t, func() bool { return h.State("crashy") == StateFailed })
	if _, _, err := run(t, h, "crashy", "echo", map[string]string{"text": "x"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if st := h.Status()[0]; !strings.Contains(st.LastError, "crashed 3 times") {
		t.Fatalf("last error = %q", st.LastError)
	}
}

func TestCancelledCallStopsHandlerAndPluginKeepsServing(t *testing.T) {
	h, _ := newHost(t, spec("crashy"))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- h.Call(ctx, "crashy", command("sleep", map[string]string{"d": "1h"}), func(*pluginv1.Event) {})
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if replies, _, err := run(t, h, "crashy", "echo", map[string]string{"text": "still here"}); err != nil || replies[0] != "still here" {
		t.Fatalf("%v %v", replies, err)
	}
}

func TestBadPluginsFailAtStartWithClearErrorsWhileOthersRun(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "notexec")
	if err := os.WriteFile(notExec, []byte("plain text"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := spec("good")
	v2 := spec("future")
	v2.Path = bins["v2"]
	noexec := spec("noexec")
	noexec.Path = notExec
	pinned := spec("pinned")
	sum := sha256.Sum256([]byte("not the binary"))
	pinned.SHA256 = hex.EncodeToString(sum[:])
	badcfg := spec("badcfg")
	badcfg.Settings = map[string]any{"fail_configure": "yes"}

	h := New(Options{})
	t.Cleanup(h.Stop)
	errs := h.Start(context.Background(), []Spec{good, v2, noexec, pinned, badcfg})
	joined := fmt.Sprint(errs)
	for _, want := range []string{"plugin future:", "plugin noexec:", "plugin pinned:", "plugin badcfg:", "configure refused on purpose"} {
		if !strings.Contains(joined, want) {
			t.Errorf("start errors %q lack %q", joined, want)
		}
	}
	if len(errs) != 4 {
		t.Errorf("got %d errors, want 4: %v", len(errs), errs)
	}
	for _, st := range h.Status() {
		want := StateFailed
		if st.Name == "good" {
			want = StateRunning
		}
		if st.State != want {
			t.Errorf("%s state = %s, want %s", st.Name, st.State, want)
		}
	}
	if replies, _, err := run(t, h, "good", "echo", map[string]string{"text": "fine"}); err != nil || replies[0] != "fine" {
		t.Fatalf("good plugin: %v %v", replies, err)
	}
}

func TestStopLeavesNoPluginProcess(t *testing.T) {
	h := New(Options{})
	if errs := h.Start(context.Background(), []Spec{spec("a"), spec("b")}); len(errs) > 0 {
		t.Fatal(errs)
	}
	var pids []int
	for _, st := range h.Status() {
		pids = append(pids, st.PID)
	}
	h.Stop()
	for _, pid := range pids {
		waitFor(t, func() bool { return !alive(pid) })
	}
	if st := h.Status(); st[0].State != StateStopped {
		t.Fatalf("state after stop = %s", st[0].State)
	}
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b))
	return len(fields) > 2 && fields[2] != "Z"
}

// waitFor polls cond as a failure guard; it asserts no duration.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
