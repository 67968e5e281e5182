package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// idleBot is a running `chima run` with the deploy plugin and an HTTP server,
// for tests of what time does to a bot.
type idleBot struct {
	*console
	base string // the HTTP server's base URL
}

// startIdleBot starts the built bot on a console pipe, with the deploy
// plugin on a real repository and the HTTP server on a free port.
func startIdleBot(t *testing.T) *idleBot {
	t.Helper()
	repo, _, _ := gitRepo(t)
	addr := freePort(t)
	cfg, _, _ := deployConfig(t, fmt.Sprintf("http: {addr: %q, base_url: %q}\n", addr, "http://"+addr),
		fmt.Sprintf(`{"demo": {"provider": "shell", "repository": %q,
		"environments": ["staging", "production"], "default_environment": "staging"}}`, repo), nil)
	c := startConsole(t, cfg)
	c.say(t, "chima help deploy")
	c.expect(t, "deploy:lock")
	return &idleBot{console: c, base: "http://" + addr}
}

// pluginPID returns the pid of the bot's plugin process whose executable is
// named name, or 0.
func (b *idleBot) pluginPID(t *testing.T, name string) int {
	t.Helper()
	for _, pid := range childPIDs(t, b.cmd.Process.Pid) {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err == nil && filepath.Base(exe) == name && alive(pid) {
			return pid
		}
	}
	return 0
}

// idle waits as a person would between commands. It is behaviour, not a
// timing assertion: go-plugin's broker forgets undialled connection info
// after 5 s, so this is past every such hold.
func idle(t *testing.T) {
	t.Logf("idling 10 s")
	time.Sleep(10 * time.Second)
}

var logLink = regexp.MustCompile(`http://\S+/deployments/\d+/log\?token=\S+`)

// useDeploy exercises every Host service the deploy plugin needs: jobs and
// posts (a deploy), KV (records), locks and logs (the status and its page).
func (b *idleBot) useDeploy(t *testing.T, id int) {
	t.Helper()
	b.say(t, "chima deploy demo/main to staging")
	b.expect(t, "Deployed demo/main")
	b.say(t, "chima deploy:lock demo in production release freeze")
	b.expect(t, "Locked demo in production")
	b.say(t, "chima deploy:unlock demo in production")
	b.expect(t, "Unlocked demo in production")
	b.say(t, fmt.Sprintf("chima deploy:status %d", id))
	line := b.expect(t, "/log?token=")
	link := logLink.FindString(line)
	if link == "" {
		t.Fatalf("no log link in %q", line)
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("log page of #%d answered %d", id, resp.StatusCode)
	}
}

func TestDeployPluginServesCommandsAfterSittingIdle(t *testing.T) {
	if testing.Short() {
		t.Skip("idles 20 s")
	}
	t.Parallel() // it mostly waits; let the other end-to-end tests run meanwhile
	b := startIdleBot(t)

	t.Run("after idling from start", func(t *testing.T) {
		idle(t)
		b.useDeploy(t, 1)
	})

	t.Run("after idling from a kill -9 restart", func(t *testing.T) {
		old := b.pluginPID(t, "deploy")
		if old == 0 {
			t.Fatal("no deploy plugin process")
		}
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for pid := b.pluginPID(t, "deploy"); pid == 0 || pid == old; pid = b.pluginPID(t, "deploy") {
			if time.Now().After(deadline) {
				t.Fatal("the deploy plugin was not restarted")
			}
			time.Sleep(50 * time.Millisecond)
		}
		idle(t)
		b.useDeploy(t, 2)
	})
}
