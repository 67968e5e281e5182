package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk/sdktest"
)

// The console's quit hint, as adapters/shell says it on a first Ctrl-C.
const quitHint = "(To quit, press Ctrl-C again, Ctrl-D, or type /quit)"

// terminal runs `chima run` in a real terminal: a detached tmux session of
// its own, typed into with send-keys and read with capture-pane.
type terminal struct {
	sock   string // the tmux server's socket, private to the test
	status string // file where the shell writes chima's exit status
}

func startTerminal(t *testing.T, cfg string) *terminal {
	t.Helper()
	sdktest.NeedTool(t, "tmux")
	// A short directory: a unix socket path is limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "chima-tty-")
	if err != nil {
		t.Fatal(err)
	}
	tm := &terminal{sock: filepath.Join(dir, "tmux"), status: filepath.Join(dir, "status")}
	// The pane stays open after chima exits, so its last words can be read.
	script := fmt.Sprintf("'%s' run --config '%s'; echo $? > '%s'; exec sleep 600", filepath.Join(binDir, "chima"), cfg, tm.status)
	tm.tmux(t, "new-session", "-d", "-s", "chima", "-x", "200", "-y", "50", "sh", "-c", script)
	t.Cleanup(func() {
		// A test that failed with chima still running stops it as an
		// operator would, so that it ends its jobs and plugins, before the
		// terminal goes.
		if pid := tm.findChima(); pid != 0 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			for deadline := time.Now().Add(30 * time.Second); alive(pid) && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
			}
		}
		_ = exec.Command("tmux", "-S", tm.sock, "kill-server").Run()
		os.RemoveAll(dir)
	})
	return tm
}

// findChima is the pid of the chima process in the terminal, or 0.
func (tm *terminal) findChima() int {
	out, err := exec.Command("tmux", "-S", tm.sock, "display-message", "-p", "-t", "chima", "#{pane_pid}").Output()
	if err != nil {
		return 0
	}
	var sh int
	if _, err := fmt.Sscan(string(out), &sh); err != nil {
		return 0
	}
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", sh))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, field := range strings.Fields(string(b)) {
			var pid int
			if _, err := fmt.Sscan(field, &pid); err != nil {
				continue
			}
			if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); bytes.Contains(cmdline, []byte("\x00run\x00")) && alive(pid) {
				return pid
			}
		}
	}
	return 0
}

func (tm *terminal) tmux(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("tmux", append([]string{"-S", tm.sock}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("tmux %v: %v: %s", args, err, errb.String())
	}
	return out.String()
}

// keys types keys into the terminal: text, or tmux key names such as C-c
// and Enter.
func (tm *terminal) keys(t *testing.T, keys ...string) {
	t.Helper()
	tm.tmux(t, append([]string{"send-keys", "-t", "chima"}, keys...)...)
}

// screen is everything the terminal showed, wrapped lines joined.
func (tm *terminal) screen(t *testing.T) string {
	t.Helper()
	return tm.tmux(t, "capture-pane", "-p", "-J", "-t", "chima", "-S", "-1000")
}

// waitShown waits until the terminal has shown want n times in all (a
// failure guard of 20s applies; it asserts no duration), and fails if it
// shows it more often.
func (tm *terminal) waitShown(t *testing.T, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := tm.screen(t)
		got := strings.Count(s, want)
		if got > n {
			t.Fatalf("the terminal shows %q %d times, want %d:\n%s", want, got, n, s)
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the terminal shows %q %d times, want %d:\n%s", want, got, n, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSeen waits until the terminal has shown want at least once.
func (tm *terminal) waitSeen(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := tm.screen(t)
		if strings.Contains(s, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q:\n%s", want, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// chimaPID is the pid of the chima process in the terminal.
func (tm *terminal) chimaPID(t *testing.T) int {
	t.Helper()
	pid := tm.findChima()
	if pid == 0 {
		t.Fatalf("no chima process in the terminal; it shows:\n%s", tm.screen(t))
	}
	return pid
}

// exitStatus waits for chima to exit and returns its exit status.
func (tm *terminal) exitStatus(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(tm.status); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("chima did not exit; the terminal shows:\n%s", tm.screen(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFile waits until path exists.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCtrlCInATerminalSaysHowToQuitAndASecondOneStopsTheBotAsSIGTERMWould(t *testing.T) {
	sdktest.NeedTool(t, "git")
	repo, marks, _ := gitRepo(t)
	cfg := orderDeployConfig(t, repo)
	tm := startTerminal(t, cfg)
	tm.waitSeen(t, "/help lists the console commands")

	// A deploy runs, so that quitting has a job to interrupt.
	tm.keys(t, "chima deploy demo/slow", "Enter")
	tm.waitSeen(t, "is deploying demo/slow to staging (#1)")
	waitFile(t, filepath.Join(marks, "1"))
	chimaPID := tm.chimaPID(t)
	plugins := childPIDs(t, chimaPID)

	// The first Ctrl-C clears the half-typed line and says how to quit.
	tm.keys(t, "chima hel", "C-c")
	tm.waitShown(t, quitHint, 1)
	// The bot still answers; the cleared text did not reach it.
	tm.keys(t, "chima hello world", "Enter")
	tm.waitSeen(t, "Hello, world!")
	if s := tm.screen(t); strings.Contains(s, "helchima") {
		t.Fatalf("the line was not cleared:\n%s", s)
	}

	// A line typed since, so one Ctrl-C only says how to quit again; a
	// second one right after it quits. This one comes as SIGINT, as the
	// terminal sends it whenever readline is not reading (a line being
	// handled): it counts as the key does, and quits nothing by itself.
	if err := syscall.Kill(chimaPID, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	tm.waitShown(t, quitHint, 2)
	if !alive(chimaPID) {
		t.Fatal("chima exited on a single Ctrl-C")
	}
	tm.keys(t, "C-c")
	if status := tm.exitStatus(t); status != "0" {
		t.Fatalf("chima exited with status %s after Ctrl-C twice:\n%s", status, tm.screen(t))
	}
	// As on SIGTERM: the running deploy was interrupted and said so, and no
	// plugin process is left.
	tm.waitSeen(t, "interrupted: Chima stopped while it ran")
	waitGone(t, plugins)
	out, stderr, code := chima(t, "send", "--config", cfg, "chima deploy:status 1")
	if code != 0 || !strings.Contains(out, "interrupted: Chima stopped while it ran") {
		t.Fatalf("deploy:status 1 after the bot quit: exit %d\n%s%s", code, out, stderr)
	}
}

func TestSIGINTStopsTheBotWhenTheConsoleIsAPipe(t *testing.T) {
	sdktest.NeedTool(t, "git")
	repo, marks, _ := gitRepo(t)
	c := startConsole(t, orderDeployConfig(t, repo))
	c.say(t, "chima deploy demo/slow")
	c.expect(t, "is deploying demo/slow to staging (#1)")
	waitFile(t, filepath.Join(marks, "1"))
	plugins := childPIDs(t, c.cmd.Process.Pid)
	if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "interrupted: Chima stopped while it ran")
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("chima run after SIGINT: %v", err)
	}
	waitGone(t, plugins)
}
