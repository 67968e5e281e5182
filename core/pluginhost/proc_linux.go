package pluginhost

import (
	"os/exec"
	"syscall"
)

// detach makes the kernel kill the plugin if the host dies without a chance
// to clean up (SIGKILL, OOM): no plugin process outlives the host.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
