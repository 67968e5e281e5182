package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// dumpGuardArg is the first argument that makes the plugin's binary the
// guard of a dump command restic runs: it asks the kernel to kill it when
// restic dies, then becomes the dump (exec, same pid).
//
// restic backup --stdin-from-command kills its command through its
// context, from a goroutine, while it exits on SIGINT: a restic that exits
// first (as it does when the plugin was killed and the kernel sent it
// SIGINT) leaves the dump running, reparented, holding the database's
// transaction for as long as it streams.
const dumpGuardArg = "__chima-dump-guard"

// dumpGuardMain sets the parent-death signal and execs argv. The signal is
// a thread's attribute, kept across exec by the thread that calls it, so
// both happen on one locked thread.
func dumpGuardMain(argv []string) int {
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "usage: backup "+dumpGuardArg+" <dump command>…")
		return 2
	}
	runtime.LockOSThread()
	parent := os.Getppid()
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "dump guard: set the parent-death signal:", err)
		return 1
	}
	if os.Getppid() != parent {
		fmt.Fprintln(os.Stderr, "dump guard: restic ended before the dump started")
		return 1
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "dump guard:", err)
		return 127
	}
	err = syscall.Exec(path, argv, os.Environ())
	fmt.Fprintln(os.Stderr, "dump guard: exec", argv[0]+":", err)
	return 126
}

// guardDump puts the plugin's binary as the dump guard in front of the
// command of restic's --stdin-from-command in args (unchanged when args
// have none).
func guardDump(args []string) ([]string, error) {
	i := slices.Index(args, "--stdin-from-command")
	if i < 0 {
		return args, nil
	}
	j := slices.Index(args[i:], "--")
	if j < 0 {
		return args, nil
	}
	j += i
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the plugin's own binary (it guards the dump): %w", err)
	}
	return slices.Concat(args[:j+1], []string{self, dumpGuardArg}, args[j+1:]), nil
}
