package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chimaops/chima/plugins/deploy/internal/apps"
)

// runProvider runs the app's provider for dep in the checkout dir, writing
// its output to out.
func (d *deployer) runProvider(ctx context.Context, a *apps.App, dep *Deployment, dir string, out io.Writer) error {
	switch a.Provider {
	case "shell":
		script := filepath.Join(dir, filepath.Clean("/"+a.Script))
		if _, err := os.Stat(script); err != nil {
			return fmt.Errorf("the shell provider's script %s is not in the repository", a.Script)
		}
		cmd := exec.Command(script)
		cmd.Dir = dir
		cmd.Env = []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
			"DEPLOY_ENV=" + dep.Env, "DEPLOY_REF=" + dep.Ref, "DEPLOY_SHA=" + dep.SHA,
			"DEPLOY_TASK=" + dep.Task, "DEPLOYMENT_ID=" + strconv.FormatInt(dep.ID, 10),
			"DEPLOY_HOSTS=" + dep.Hosts, "DEPLOY_USER=" + dep.User,
		}
		return runGroup(ctx, cmd, out)
	}
	return fmt.Errorf("provider %s is not available", a.Provider)
}

// runGroup runs cmd in its own process group and ends the whole group when
// ctx ends.
func runGroup(ctx context.Context, cmd *exec.Cmd, out io.Writer) error {
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitErr(err)
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		return ctx.Err()
	}
}

func exitErr(err error) error {
	if ee, ok := err.(*exec.ExitError); ok {
		return fmt.Errorf("the deploy command %s", strings.TrimPrefix(ee.Error(), "exit status "))
	}
	return err
}
