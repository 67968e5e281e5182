//go:build linux

package provider

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func mustSid(t *testing.T) int {
	t.Helper()
	sid, err := unix.Getsid(0)
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

// escapes is a script that starts processes that leave its process group:
// one in a session of its own that ignores SIGTERM, and a daemon that
// double-forked out of another session (its parent exited). It writes
// their pids to $PIDS and then does what tail says.
func escapes(tail string) string {
	return `setsid sh -c 'trap "" TERM; echo $$ >> "$PIDS"; exec sleep 601' &
setsid sh -c 'sleep 602 & echo $! >> "$PIDS"' &
wait $!
while [ "$(wc -l < "$PIDS")" -lt 2 ]; do sleep 0.01; done
` + tail
}

func TestTheWholeTreeIsEndedEvenWhatLeftTheProcessGroup(t *testing.T) {
	tests := []struct {
		name    string
		tail    string
		stop    bool
		timeout time.Duration
		want    error // nil: the script succeeds by itself
	}{
		{"on cancel", "sleep 600 & wait\n", true, 0, context.Canceled},
		{"on timeout, with SIGKILL for a script that ignores SIGTERM", "trap '' TERM\nwhile :; do sleep 1; done\n", false, 500 * time.Millisecond, context.DeadlineExceeded},
		{"when the script exits by itself", "echo done\n", false, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cancel, done, pids := startScript(t, escapes(tt.tail), tt.timeout, 300*time.Millisecond, 2)
			for _, pid := range pids {
				if sid, err := unix.Getsid(pid); err != nil || sid == mustSid(t) {
					t.Fatalf("process %d is in session %d (%v), want one of its own", pid, sid, err)
				}
			}
			if tt.stop {
				cancel()
			}
			select {
			case err := <-done:
				if !errors.Is(err, tt.want) { // errors.Is(err, nil) is err == nil
					t.Fatalf("Run = %v, want %v", err, tt.want)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return")
			}
			waitGone(t, pids...)
		})
	}
}

// dyingPluginEnv makes the test binary play a plugin whose command starts
// processes that leave its group, and which is then killed.
const dyingPluginEnv = "PROVIDER_TEST_DYING_PLUGIN_PIDS"

func TestTheWholeTreeIsEndedWhenThePluginIsKilled(t *testing.T) {
	if pidFile := os.Getenv(dyingPluginEnv); pidFile != "" {
		path := filepath.Join(filepath.Dir(pidFile), "script.sh")
		_ = Run(context.Background(), Spec{Path: path, Env: shEnv("PIDS=" + pidFile), Grace: 300 * time.Millisecond}, io.Discard)
		os.Exit(0)
	}
	pidFile := filepath.Join(t.TempDir(), "pids")
	path := filepath.Join(filepath.Dir(pidFile), "script.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+escapes("echo $$ >> \"$PIDS\"\nsleep 600\n")), 0o755); err != nil {
		t.Fatal(err)
	}
	plugin := exec.Command(os.Args[0], "-test.run=^TestTheWholeTreeIsEndedWhenThePluginIsKilled$")
	plugin.Env = append(os.Environ(), dyingPluginEnv+"="+pidFile)
	if err := plugin.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plugin.Process.Kill(); _ = plugin.Wait() })
	pids := readPIDs(t, pidFile, 3)
	if err := plugin.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = plugin.Wait()
	waitGone(t, pids...)
}

// startTagged starts args in a session of its own, tagged with tag as Run
// tags a command's processes; the test kills it at the end.
func startTagged(t *testing.T, tag string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = shEnv(TagEnv + "=" + tag)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd
}

func TestSweepEndsOnlyTheProcessesTaggedWithItsPrefix(t *testing.T) {
	ours, theirs := startTagged(t, "ab12/7", "sleep", "600"), startTagged(t, "cd34/7", "sleep", "600")
	// Reap ours when it dies, as its parent (init, in real life) would.
	reaped := make(chan struct{})
	go func() { _ = ours.Wait(); close(reaped) }()
	n, err := Sweep("ab12/")
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1 process ended", n, err)
	}
	select {
	case <-reaped:
	case <-time.After(10 * time.Second):
		t.Fatal("the tagged process is still running")
	}
	if !alive(theirs.Process.Pid) {
		t.Fatal("Sweep ended a process of another prefix")
	}
	if _, err := Sweep(""); err == nil {
		t.Fatal("Sweep with an empty prefix would end every tagged process; want an error")
	}
}

func TestAStuckReaperIsKilledAndOnlyItsOwnDeploysProcessesAreSwept(t *testing.T) {
	// Deploy #1's reaper ignores SIGTERM and leaves a straggler behind;
	// deploy #12 of the same installation runs beside it.
	reaper := startTagged(t, "ef56/1", "sh", "-c", "trap '' TERM; exec sleep 600")
	straggler := startTagged(t, "ef56/1", "sleep", "601")
	other := startTagged(t, "ef56/12", "sleep", "602")
	strayGone := make(chan struct{})
	go func() { _ = straggler.Wait(); close(strayGone) }()
	waited := make(chan error, 1)
	go func() { waited <- reaper.Wait() }()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := waitReaper(ctx, reaper.Process.Pid, 0, "ef56/1", waited); err == nil {
		t.Fatal("waitReaper = nil, want the killed reaper's error")
	}
	select {
	case <-strayGone:
	case <-time.After(10 * time.Second):
		t.Fatal("the straggler of the stopped deploy is still running")
	}
	if !alive(other.Process.Pid) {
		t.Fatal("stopping deploy #1 ended a process of deploy #12")
	}
}

// A process the command starts after it was asked to stop (a shell's next
// command, forked as the SIGTERM came) is asked to stop too, at once: it
// does not last out the grace period to be killed. The grace period here
// is longer than the test's guard.
func TestAProcessStartedAsTheCommandStopsIsStoppedToo(t *testing.T) {
	body := `trap 'sleep 600 & exit 0' TERM
echo $$ > "$PIDS"
while :; do sleep 0.05; done
`
	cancel, done, pids := startScript(t, body, 0, time.Hour, 1)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want it cancelled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return: the process the script started on SIGTERM was left to the grace period")
	}
	waitGone(t, pids...)
}
