//go:build linux

package main

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/chimaops/chima/plugins/deploy/internal/provider"
)

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil && !zombie(pid)
}

func zombie(pid int) bool {
	var ws syscall.WaitStatus
	got, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
	return got == pid
}

func TestOnlyAServingPluginSweepsTheProcessesOfEarlierDeploys(t *testing.T) {
	f := newFixture(t, `{"demo": {"provider": "shell", "repository": "acme/demo", "environments": ["staging"]}}`)
	// A process of deploy #1 of this installation: a live deploy of a bot
	// running beside, or one a killed plugin left behind.
	deploy := exec.Command("sleep", "600")
	deploy.Env = []string{"PATH=/usr/bin:/bin", provider.TagEnv + "=" + processTags(f.workspace) + "/1"}
	deploy.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := deploy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = deploy.Process.Kill(); _ = deploy.Wait() })

	// chima explain or chima plugins: described only, nothing swept.
	if err := configured(&deployer{}, f.settings("chima_describe_only", "true")); err != nil {
		t.Fatal(err)
	}
	if !alive(deploy.Process.Pid) {
		t.Fatal("a plugin started only to be described ended a deploy's process")
	}
	// The bot's plugin: what is left of earlier deploys ends before any
	// deploy starts.
	if err := configured(&deployer{}, f.settings()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(deploy.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatal("the serving plugin left an earlier deploy's process running")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
