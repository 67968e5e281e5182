//go:build linux

package provider

import "syscall"

// sysProcAttr puts the command in its own process group (so that stopping
// it ends everything it started) and has the kernel SIGKILL it when the
// process that started it dies (PR_SET_PDEATHSIG), so a deploy script does
// not outlive a crashed or killed plugin and overlap the next deploy of the
// same app and environment.
//
// Pdeathsig covers only the direct child: what the command starts itself
// (a grandchild) is reparented and keeps running. In a program that called
// ServeReaper, commands run under the reaper instead, which covers the whole
// tree (see reaperProcAttr). Linux sends the signal when the OS thread
// that started the command exits, not only the whole process; the Go runtime
// ends a thread only when a goroutine exits while locked to it with
// runtime.LockOSThread, which nothing in this plugin does.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// reaperProcAttr starts the reaper in its own process group, with SIGTERM
// as its parent-death signal: when the plugin dies, even by SIGKILL, the
// reaper hears of it and ends the command's tree.
func reaperProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
