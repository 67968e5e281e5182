package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestADumpGuardedByThePluginEndsWhenResticIsKilled kills restic by
// SIGKILL mid-backup, which gives it no chance to stop its dump: the
// guarded dump ends with it, the unguarded one is left running.
func TestADumpGuardedByThePluginEndsWhenResticIsKilled(t *testing.T) {
	t.Parallel()
	env := services(t)
	for _, tt := range []struct {
		name    string
		guarded bool
	}{{"guarded", true}, {"unguarded, as restic runs it", false}} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "password"), []byte("pw"), 0o600); err != nil {
				t.Fatal(err)
			}
			repo := filepath.Join(dir, "repo")
			resticEnv := append(os.Environ(), "RESTIC_REPOSITORY="+repo, "RESTIC_PASSWORD_FILE="+filepath.Join(dir, "password"))
			initCmd := exec.Command(env["CHIMA_RESTIC"], "--no-cache", "init")
			initCmd.Env = resticEnv
			if out, err := initCmd.CombinedOutput(); err != nil {
				t.Fatalf("init: %v %s", err, out)
			}
			pidFile := filepath.Join(dir, "dump.pid")
			args := []string{"--no-cache", "backup", "--stdin-from-command", "--stdin-filename", "x", "--", "sh", "-c", "echo $$ > " + pidFile + "; exec sleep 120"}
			if tt.guarded {
				var err error
				if args, err = guardDump(args); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(env["CHIMA_RESTIC"], args...)
			cmd.Env = resticEnv
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			var pid int
			for pid == 0 {
				b, _ := os.ReadFile(pidFile)
				pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					t.Fatal("the dump never started")
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			for alive := syscall.Kill(pid, 0) == nil; alive; alive = syscall.Kill(pid, 0) == nil {
				if !tt.guarded && time.Now().After(deadline.Add(-25*time.Second)) {
					return // still running after restic died, as expected without the guard
				}
				if time.Now().After(deadline) {
					t.Fatalf("the dump %d still runs after restic was killed", pid)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if !tt.guarded {
				t.Fatal("the unguarded dump ended with restic: the guarded case proves nothing")
			}
		})
	}
}
