package pluginhost

import (
	"bufio"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk/wire"
)

// debugProcess is a plugin binary a person started with --debug.
type debugProcess struct {
	cmd    *exec.Cmd
	exited chan error
	attach wire.Reattach
}

// startDebug runs bin --debug and reads the attach line it prints.
func startDebug(t *testing.T, bin, name string) *debugProcess {
	t.Helper()
	cmd := exec.Command(bin, "--debug")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &debugProcess{cmd: cmd, exited: make(chan error, 1)}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		d.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		for range lines {
		}
	})
	prefix := "chima run --attach " + name + "="
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("%s --debug exited without printing %q", bin, prefix)
			}
			if js, found := strings.CutPrefix(line, prefix); found {
				r, err := wire.ParseReattach(strings.Trim(js, "'"))
				if err != nil {
					t.Fatalf("attach line %q: %v", line, err)
				}
				d.attach = r
				go func() {
					for range lines {
					}
				}()
				return d
			}
		case <-timeout:
			t.Fatalf("%s --debug printed no attach line within 10s", bin)
		}
	}
}

// waitExit waits (bounded, as a failure guard) for the process to exit.
func (d *debugProcess) waitExit(t *testing.T) {
	t.Helper()
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the debug process did not exit within 10s")
	}
}

func TestHostAttachedToADebugProcessRunsItsCommandsAndStopsIt(t *testing.T) {
	d := startDebug(t, bins["crashy"], "crashy")
	h, _ := newHost(t, Spec{Name: "crashy", Attach: &d.attach})
	st, _ := h.PluginStatus("crashy")
	if st.State != StateRunning || !st.Attached || st.PID != d.cmd.Process.Pid {
		t.Fatalf("status = %+v, want running, attached, pid %d", st, d.cmd.Process.Pid)
	}
	for _, tc := range []struct {
		command string
		args    map[string]string
		want    string
	}{
		{"echo", map[string]string{"text": "hi"}, "hi"},
		// Through the Host service the bot serves over the broker.
		{"kv", map[string]string{"key": "a", "value": "b"}, "a=b"},
	} {
		replies, done, err := run(t, h, "crashy", tc.command, tc.args)
		if err != nil || done == nil || len(replies) != 1 || replies[0] != tc.want {
			t.Fatalf("%s: replies=%v done=%v err=%v, want %q", tc.command, replies, done, err, tc.want)
		}
	}
	h.Stop()
	d.waitExit(t)
}

func TestAnAttachedDebugProcessThatExitsIsDownAndNotRestarted(t *testing.T) {
	d := startDebug(t, bins["crashy"], "crashy")
	h, _ := newHost(t, Spec{Name: "crashy", Attach: &d.attach})
	if _, _, err := run(t, h, "crashy", "exit", nil); !errors.Is(err, ErrCrashed) {
		t.Fatalf("exit: err = %v, want ErrCrashed", err)
	}
	d.waitExit(t)
	waitFor(t, func() bool { return h.State("crashy") == StateFailed })
	st, _ := h.PluginStatus("crashy")
	if !strings.Contains(st.LastError, "does not restart") || !st.NextRetry.IsZero() || st.Restarts != 0 {
		t.Fatalf("status = %+v, want failed for good, saying it is not restarted", st)
	}
	if err := h.Health(); err == nil || !strings.Contains(err.Error(), "plugin crashy is down") {
		t.Fatalf("health = %v, want the attached plugin named as down", err)
	}
}

func TestAttachingToAProcessThatIsGoneFailsAtStart(t *testing.T) {
	d := startDebug(t, bins["crashy"], "crashy")
	_ = d.cmd.Process.Kill()
	d.waitExit(t)
	h := New(Options{StartTimeout: 2 * time.Second})
	t.Cleanup(h.Stop)
	errs := h.Start(t.Context(), []Spec{{Name: "crashy", Attach: &d.attach}})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "attach to pid") {
		t.Fatalf("start errors = %v, want one naming the attach", errs)
	}
	if st, _ := h.PluginStatus("crashy"); st.State != StateFailed || !st.NextRetry.IsZero() {
		t.Fatalf("status = %+v, want failed and not retried", st)
	}
}
