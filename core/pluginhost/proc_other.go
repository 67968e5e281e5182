//go:build !linux

package pluginhost

import "os/exec"

// detach is a no-op where the kernel offers no parent-death signal; the host
// still kills its plugins on a clean shutdown.
func detach(*exec.Cmd) {}
