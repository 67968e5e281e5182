//go:build linux

package provider

import (
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// reaperArg, as the first argument of this program, makes it the reaper of
// one command (see ServeReaper).
const reaperArg = "__chima_deploy_reaper"

// reaperOn is set once ServeReaper returned: this program can be its own
// reaper, and Run starts commands through it.
var reaperOn atomic.Bool

// ServeReaper must be called first thing in main by a program that uses
// Run. Started as a reaper by Run, it never returns: it runs one command
// and ends the process tree the command leaves behind, then exits with the
// command's status. Otherwise it returns at once, and Run uses this program
// as the reaper of every command it starts.
//
// The reaper is a small process between the plugin and the command. It is
// a child subreaper (PR_SET_CHILD_SUBREAPER): every process the command
// starts, even one that calls setsid or double-forks to daemonize, stays
// below it when its parent exits, instead of going to init. So when the
// command exits, is cancelled or times out, or when the plugin dies (even by
// SIGKILL: the reaper's parent-death signal is SIGTERM), the reaper finds
// the whole tree in /proc and ends it: SIGTERM, then SIGKILL after the grace
// period. Only a process that clears its environment and also escapes the
// reaper (a nested subreaper) is beyond it; Sweep catches the rest when the
// plugin starts again after the reaper itself was SIGKILLed.
func ServeReaper() {
	if len(os.Args) > 1 && os.Args[1] == reaperArg {
		os.Exit(reaperMain(os.Args[2:]))
	}
	reaperOn.Store(true)
}

// reaperArgs is the argv of a reaper running path with args.
func reaperArgs(grace time.Duration, path string, argv []string) []string {
	return append([]string{"chima-deploy-reaper", reaperArg, grace.String(), path}, argv...)
}

// reaperMain is the reaper: args are the grace period, the program's path
// and its argv (argv[0] first).
func reaperMain(args []string) int {
	if len(args) < 3 {
		fmt.Fprintln(os.Stderr, "chima: reaper: want a grace period, a program and its argv")
		return 126
	}
	grace, err := time.ParseDuration(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "chima: reaper: bad grace period: %v\n", err)
		return 126
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "chima: reaper: PR_SET_CHILD_SUBREAPER: %v\n", err)
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGCHLD)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chima: reaper: %v\n", err)
		return 126
	}
	proc, err := os.StartProcess(args[1], args[2:], &os.ProcAttr{
		Env:   os.Environ(),
		Files: []*os.File{devnull, os.Stdout, os.Stderr},
		// Its own group, as Run gives a command without a reaper; SIGKILL
		// when the reaper dies, which leaves the rest to Sweep.
		Sys: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	})
	devnull.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "chima: starting %s: %v\n", args[1], err)
		return 127
	}
	r := &reaper{leader: proc.Pid}
	// Run the command until it exits, or until the plugin stops it (or
	// dies: the parent-death signal is SIGTERM).
	for !r.leaderDone {
		sig := <-sigs
		if sig != syscall.SIGCHLD {
			break
		}
		r.reap()
	}
	r.endTree(grace)
	for !r.leaderDone {
		// Ended, but not reaped yet.
		r.reap()
		time.Sleep(5 * time.Millisecond)
	}
	signal.Stop(sigs)
	if r.status.Signaled() {
		// Die the way the command died, so Run reports the signal.
		sig := r.status.Signal()
		signal.Reset(sig)
		_ = syscall.Kill(os.Getpid(), sig)
		time.Sleep(100 * time.Millisecond)
		return 128 + int(sig)
	}
	return r.status.ExitStatus()
}

// reaper tracks the command it runs.
type reaper struct {
	leader     int
	leaderDone bool
	status     syscall.WaitStatus
}

// reap collects every child that has ended: the command and any orphan of
// its tree.
func (r *reaper) reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
		if pid == r.leader {
			r.leaderDone, r.status = true, ws
		}
	}
}

// endTree ends every process below the reaper: SIGTERM, then SIGKILL for
// whatever is still there after grace, until nothing is left.
func (r *reaper) endTree(grace time.Duration) {
	self := os.Getpid()
	pids := descendants(self)
	if len(pids) == 0 {
		return
	}
	termed := map[int]bool{}
	term := func(pids []int) {
		for _, pid := range pids {
			if !termed[pid] {
				termed[pid] = true
				_ = syscall.Kill(pid, syscall.SIGTERM)
			}
		}
	}
	term(pids)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		r.reap()
		left := descendants(self)
		if len(left) == 0 {
			return
		}
		// A process forked after the list above was read (a script's
		// next command, started as the SIGTERM reached the shell, which
		// then died and left it to the reaper) was not asked to stop: it
		// gets its SIGTERM now, rather than lasting out the whole grace
		// period to be killed. That wait was TestSIGINTStopsTheBotWhenThe
		// ConsoleIsAPipe's flake: its deploy was stopped between writing
		// its mark and starting its sleep.
		term(left)
	}
	for range 500 {
		pids := descendants(self)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
		r.reap()
	}
}

// descendants lists the live (not zombie) processes below pid.
func descendants(pid int) []int {
	procs, _ := processes()
	children := map[int][]procEntry{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		next := queue[0]
		queue = queue[1:]
		for _, c := range children[next] {
			queue = append(queue, c.pid)
			if c.live() {
				out = append(out, c.pid)
			}
		}
	}
	return out
}

// TagEnv is the environment variable that tags every process of a command
// Run started with a Spec.Tag: its children inherit it, whatever process
// group or session they move to.
const TagEnv = "CHIMA_DEPLOY_TAG"

// Sweep ends, with SIGKILL, every process whose environment carries a
// TagEnv that starts with prefix, and waits (up to a few seconds) until
// none is left. A plugin calls it when it starts, before it runs anything:
// what a command of a plugin that died left behind (if its reaper was
// SIGKILLed too) cannot overlap the next deploy. It returns how many
// processes it ended. It needs to read other processes' environments: as
// the same user, or as root.
func Sweep(prefix string) (int, error) {
	if prefix == "" {
		return 0, fmt.Errorf("sweep: empty tag prefix")
	}
	return sweep(func(tag string) bool { return strings.HasPrefix(tag, prefix) })
}

// sweepTag ends, like Sweep, the processes tagged with exactly tag: those of
// one command. The tags of an installation's deploys share a prefix
// ("…/1", "…/12"), so a prefix would end other deploys' processes too.
func sweepTag(tag string) (int, error) {
	if tag == "" {
		return 0, fmt.Errorf("sweep: empty tag")
	}
	return sweep(func(t string) bool { return t == tag })
}

// sweep ends, with SIGKILL, every process whose TagEnv value match accepts.
func sweep(match func(tag string) bool) (int, error) {
	self := os.Getpid()
	killed := map[int]bool{}
	for range 300 {
		found := 0
		procs, _ := processes()
		for _, p := range procs {
			if p.pid == self || !p.live() || !tagged(p.pid, match) {
				continue
			}
			found++
			if syscall.Kill(p.pid, syscall.SIGKILL) == nil {
				killed[p.pid] = true
			}
		}
		if found == 0 {
			return len(killed), nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return len(killed), fmt.Errorf("sweep: tagged processes still running after SIGKILL")
}

// tagged reports whether process pid's environment has a TagEnv whose value
// match accepts.
func tagged(pid int, match func(tag string) bool) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	key := []byte(TagEnv + "=")
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, key); ok && match(string(v)) {
			return true
		}
	}
	return false
}
