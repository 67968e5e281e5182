//go:build linux

package provider

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// dyingParentEnv makes the test binary play a plugin that starts a deploy
// script with Run and is then killed.
const dyingParentEnv = "PROVIDER_TEST_DYING_PARENT_SCRIPT"

func TestRunCommandDiesWithThePluginProcess(t *testing.T) {
	if path := os.Getenv(dyingParentEnv); path != "" {
		// The "plugin": run the script until killed from outside.
		_ = Run(context.Background(), Spec{Path: path, Env: shEnv()}, io.Discard)
		os.Exit(0)
	}
	if attr := sysProcAttr(); !attr.Setpgid || attr.Pdeathsig != syscall.SIGKILL {
		t.Fatalf("SysProcAttr = %+v, want Setpgid and Pdeathsig SIGKILL", attr)
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	// exec: the script's own process (Run's direct child) is the sleep.
	path := script(t, "echo $$ > "+pidFile+"\nexec sleep 60\n")
	plugin := exec.Command(os.Args[0], "-test.run=^TestRunCommandDiesWithThePluginProcess$")
	plugin.Env = append(os.Environ(), dyingParentEnv+"="+path)
	if err := plugin.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plugin.Process.Kill(); _ = plugin.Wait() })
	pid := readPIDs(t, pidFile, 1)[0]
	// Its own process group: killing the plugin's group would not reach it.
	if pgid, err := syscall.Getpgid(pid); err != nil || pgid != pid {
		t.Fatalf("the script's process group = %d, %v; want its own (%d)", pgid, err, pid)
	}
	if err := plugin.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = plugin.Wait()
	waitGone(t, pid)
}
