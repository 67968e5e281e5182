package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk/sdktest"
)

// crashBed is a bot with the deploy plugin and an app whose slow deploy
// starts long-lived processes, some of them out of its process group, all
// findable by a marker in their argv.
type crashBed struct {
	cfg    string
	marks  string // the script touches marks/<deployment id> once all started
	marker string
}

// newCrashBed makes the repository and config; plugin lines go into the
// deploy plugin's config entry (max_restarts: 0, say).
func newCrashBed(t *testing.T, plugin ...string) *crashBed {
	t.Helper()
	for _, tool := range []string{"git", "setsid", "sleep"} {
		sdktest.NeedTool(t, tool)
	}
	dir := t.TempDir()
	sleep, _ := exec.LookPath("sleep")
	b := &crashBed{marks: filepath.Join(dir, "marks"), marker: fmt.Sprintf("chima-e2e-crash-%d-%d", os.Getpid(), time.Now().UnixNano())}
	// A sleep whose argv[0] carries the marker.
	sleeper := filepath.Join(dir, b.marker)
	if err := os.Symlink(sleep, sleeper); err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(dir, "repo")
	for _, d := range []string{filepath.Join(repo, "script"), b.marks} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// On branch slow: a background child, a child in a session of its
	// own, a daemon that double-forked out of another session, and the
	// script itself, all sleeping for minutes.
	script := fmt.Sprintf(`#!/bin/sh
echo "deploying $DEPLOY_REF"
[ -f slow ] || exit 0
S=%s
$S 300 &
setsid $S 301 &
setsid sh -c "$S 302 &" &
sleep 0.2
touch %s/$DEPLOYMENT_ID
exec $S 303
`, sleeper, b.marks)
	if err := os.WriteFile(filepath.Join(repo, "script/deploy"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	run := gitIn(t, repo, dir)
	run("init", "-q")
	run("add", ".")
	run("commit", "-q", "-m", "v1")
	run("checkout", "-q", "-b", "slow")
	if err := os.WriteFile(filepath.Join(repo, "slow"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	run("add", "slow")
	run("commit", "-q", "-m", "slow")
	run("checkout", "-q", "main")

	b.cfg, _, _ = deployConfig(t, "", fmt.Sprintf(`{"demo": {"provider": "shell", "repository": %q,
		"environments": ["staging"], "notify_rooms": ["ops"]}}`, repo), plugin)
	t.Cleanup(func() { b.killMarked() }) // only if the test failed
	return b
}

// marked lists the live processes with the marker in their argv.
func (b *crashBed) marked() []int {
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var out []int
	for _, f := range files {
		argv, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(argv), b.marker) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		if alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

func (b *crashBed) killMarked() {
	for _, pid := range b.marked() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// startSlowDeploy starts deployment #1 of branch slow and waits until all
// its processes run.
func (b *crashBed) startSlowDeploy(t *testing.T, c *console) {
	t.Helper()
	c.say(t, "chima deploy demo/slow")
	c.expect(t, "is deploying demo/slow to staging (#1)")
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := os.Stat(filepath.Join(b.marks, "1"))
		if n := len(b.marked()); err == nil && n == 4 {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("the deploy script's processes never all started (%d of 4 running)", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitNoMarked fails unless every process of the script is gone (a failure
// guard of 15s applies; it asserts no duration).
func (b *crashBed) waitNoMarked(t *testing.T, when string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		left := b.marked()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var argv []string
			for _, pid := range left {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				argv = append(argv, fmt.Sprintf("%d: %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
			}
			t.Fatalf("%s, processes of the deploy script still run:\n%s", when, strings.Join(argv, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deployPlugin returns the pid of the bot's deploy plugin process.
func deployPlugin(t *testing.T, c *console) int {
	t.Helper()
	for _, pid := range childPIDs(t, c.cmd.Process.Pid) {
		if argv, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(argv), "plugins/deploy") {
			return pid
		}
	}
	t.Fatal("deploy plugin process not found")
	return 0
}

// checkEndedAndFree checks, through chat, that deployment #1 is recorded
// as ended and that the environment takes the next deploy.
func checkEndedAndFree(t *testing.T, c *console, why string) {
	t.Helper()
	c.say(t, "chima deploys demo")
	c.expect(t, "#1 deploy slow@")
	c.say(t, "chima deploy:cancel 1")
	c.expect(t, "Deployment #1 already ended: error ("+why)
	c.say(t, "chima deploy demo/main")
	c.expect(t, "Deployed demo/main")
}

func TestDeployPluginKilledMidDeployEndsTheDeploymentAndEveryProcessOfIt(t *testing.T) {
	b := newCrashBed(t)
	c := startConsole(t, b.cfg)
	b.startSlowDeploy(t, c)
	if err := syscall.Kill(deployPlugin(t, c), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The restarted plugin records the end and tells the thread, then the
	// notify room.
	const why = "interrupted because the deploy plugin crashed"
	c.expect(t, "Deployment #1 of demo/slow")
	line := c.expect(t, "[ops] chima: Deployment #1 of demo/slow")
	if !strings.Contains(line, why) {
		t.Fatalf("the notify room was told %q, want it to say %q", line, why)
	}
	b.waitNoMarked(t, "after the plugin was killed")
	checkEndedAndFree(t, c, why)
}

func TestBotKilledMidDeployLeavesNoProcessAndTheNextBotEndsTheDeployment(t *testing.T) {
	b := newCrashBed(t)
	c := startConsole(t, b.cfg)
	b.startSlowDeploy(t, c)
	// Long enough for the plugin to note the deployment alive (every 5 s):
	// its end is then that note, not the next bot's start.
	time.Sleep(6 * time.Second)
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	// Nothing of the deploy outlives the bot, even before a new one starts.
	b.waitNoMarked(t, "after the bot was killed")
	time.Sleep(3 * time.Second) // the bot is down a while: not deploy time

	c = startConsole(t, b.cfg)
	const why = "interrupted by restart"
	c.expect(t, "Deployment #1 of demo/slow")
	line := c.expect(t, "[ops] chima: Deployment #1 of demo/slow")
	if !strings.Contains(line, why) || !strings.Contains(line, "ran for at least ") {
		t.Fatalf("the notify room was told %q, want it to say it ran for at least the time until it was last seen alive, and %q", line, why)
	}
	checkEndedAndFree(t, c, why)
}

// A deploy plugin killed under a deploy that is never to be restarted cannot
// tell the room: the core does, naming the deployment by its job's title.
// The next bot's plugin then records the end, once.
func TestDeployPluginThatStaysDownHasTheCoreTellTheRoomAndTheNextBotRecordsTheEnd(t *testing.T) {
	b := newCrashBed(t, "max_restarts: 0")
	c := startConsole(t, b.cfg)
	b.startSlowDeploy(t, c)
	if err := syscall.Kill(deployPlugin(t, c), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "Deployment #1 of demo/slow to staging was interrupted because the deploy plugin crashed. The deploy plugin is down")
	b.waitNoMarked(t, "after the plugin was killed")
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()

	c = startConsole(t, b.cfg)
	const why = "interrupted because the deploy plugin crashed"
	line := c.expect(t, "[ops] chima: Deployment #1 of demo/slow")
	if !strings.Contains(line, why) {
		t.Fatalf("the notify room was told %q, want it to say %q", line, why)
	}
	checkEndedAndFree(t, c, why)
}
