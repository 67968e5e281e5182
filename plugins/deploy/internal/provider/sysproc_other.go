//go:build !linux

package provider

import "syscall"

// sysProcAttr puts the command in its own process group, so that stopping
// it ends everything it started. There is no parent-death signal outside
// Linux: a command outlives a plugin that dies while it runs.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// reaperProcAttr is never used outside Linux (there is no reaper).
func reaperProcAttr() *syscall.SysProcAttr { return sysProcAttr() }
