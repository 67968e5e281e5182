package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk/sdktest"
)

// A console fed by a pipe is a script: `printf '…' | chima run` ends when
// the deploys it asked for have, as `chima send` does, instead of
// interrupting them the moment its input ends.
func TestAPipedConsoleWaitsForItsDeploysWhenItsInputEnds(t *testing.T) {
	sdktest.NeedTool(t, "git")
	repo, marks, _ := gitRepo(t)
	cfg, _, _ := deployConfig(t, "", fmt.Sprintf(`{"demo": {"provider": "shell", "repository": %q, "environments": ["staging"]}}`, repo), nil)
	cmd := exec.Command(filepath.Join(binDir, "chima"), "run", "--config", cfg)
	cmd.Stdin = strings.NewReader("chima deploy demo/main to staging\nchima deploy demo/v2 to staging\n")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("chima run: %v\n%s%s", err, out.String(), errb.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("chima run did not end after its input did:\n%s%s", out.String(), errb.String())
	}
	for _, want := range []string{"Deployed demo/main", "Deployed demo/v2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q once the input ended:\n%s\n%s", want, out.String(), errb.String())
		}
	}
	if strings.Contains(out.String(), "interrupted") {
		t.Errorf("a deploy was interrupted by the end of the input:\n%s", out.String())
	}
	for _, id := range []string{"1", "2"} {
		waitFile(t, filepath.Join(marks, id))
	}
}

// Waiting is not being stuck: SIGTERM still interrupts the deploys a piped
// console waits for.
func TestSIGTERMInterruptsTheDeploysAPipedConsoleWaitsFor(t *testing.T) {
	sdktest.NeedTool(t, "git")
	repo, marks, _ := gitRepo(t)
	cfg, _, _ := deployConfig(t, "", fmt.Sprintf(`{"demo": {"provider": "shell", "repository": %q, "environments": ["staging"]}}`, repo), nil)
	c := startConsole(t, cfg)
	c.say(t, "chima deploy demo/slow to staging")
	c.expect(t, "is deploying demo/slow to staging (#1)")
	waitFile(t, filepath.Join(marks, "1"))
	if err := c.in.Close(); err != nil { // the input ends; the deploy sleeps on
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if !alive(c.cmd.Process.Pid) {
		t.Fatal("chima run ended with its input while its deploy ran")
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "interrupted: Chima stopped while it ran")
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("chima run after SIGTERM: %v", err)
	}
}
