package provider

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Spec is a command to run: an argv and its complete environment.
type Spec struct {
	// Path is the program: an absolute path, or a name looked up in the
	// PATH of Env.
	Path string
	// Args are the arguments, without the program name.
	Args []string
	// Env is the complete environment. Nil means an empty one: the bot's
	// own environment is never passed on implicitly.
	Env []string
	// Dir is the working directory.
	Dir string
	// Name names the command in messages; the base of Path when empty.
	Name string
	// Grace is the time between SIGTERM and SIGKILL when the command is
	// stopped; DefaultGrace when 0.
	Grace time.Duration
	// Tag, when set, is put in the environment of the command as TagEnv,
	// which every process it starts inherits, so that Sweep can find what a
	// command of a dead plugin left behind.
	Tag string
}

func (s Spec) name() string {
	if s.Name != "" {
		return s.Name
	}
	return filepath.Base(s.Path)
}

// String shows the command for logs, quoting arguments that need it.
func (s Spec) String() string {
	parts := []string{s.Path}
	for _, a := range s.Args {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`;&|<>()*?[]{}!~#") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// ExitError is a command that ended unsuccessfully.
type ExitError struct {
	// Name names the command.
	Name string
	// Code is the exit status, or -1 when a signal ended it.
	Code int
	// Signal is the signal that ended it, if one did.
	Signal syscall.Signal
}

// Error returns "fab exited with status 1" or "fab was killed by SIGKILL
// (signal 9)".
func (e *ExitError) Error() string {
	if e.Code >= 0 {
		return fmt.Sprintf("%s exited with status %d", e.Name, e.Code)
	}
	name := unix.SignalName(e.Signal) // Signal.String is "killed": "killed by killed"
	if name == "" {
		name = "a signal"
	}
	return fmt.Sprintf("%s was killed by %s (signal %d)", e.Name, name, int(e.Signal))
}

// stopError is a command not started, or stopped, because its context
// ended. It says why in words ("script/deploy stopped: cancelled"), where
// the cause's own text would be Go's ("context canceled"), and unwraps to
// the cause.
type stopError struct {
	name, what string
	cause      error
}

func (e *stopError) Error() string {
	why := e.cause.Error()
	switch {
	case errors.Is(e.cause, context.DeadlineExceeded):
		why = "its timeout passed"
	case errors.Is(e.cause, context.Canceled):
		why = "cancelled"
	}
	return e.name + " " + e.what + ": " + why
}

func (e *stopError) Unwrap() error { return e.cause }

// lineMax bounds one output line; longer lines are split.
const lineMax = 64 << 10

// drainTimeout bounds the wait for the output pipe to close once the
// command's process group is gone (a process that left the group with
// setsid may still hold it).
const drainTimeout = 2 * time.Second

// Run runs spec in its own process group, writing its stdout and stderr,
// combined, line by line to out (each Write is one line ending in "\n").
// Stdin is /dev/null.
//
// When ctx ends, the command's processes get SIGTERM and, if anything is
// left after spec.Grace, SIGKILL; Run then returns an error wrapping the
// context's error. When the command exits by itself, anything it left
// running is ended the same way before Run returns. A nonzero exit is an
// *ExitError. If writing to out fails, the rest of the output is dropped
// (the command is not blocked) and the error is returned when the command
// itself succeeded.
//
// On Linux, in a program that called ServeReaper, "the command's processes"
// is its whole tree, including processes that left its group or session,
// and the tree is ended too when the process that called Run dies, even by
// SIGKILL (see ServeReaper). Elsewhere it is the command's process group,
// and on Linux the command itself gets SIGKILL when the caller dies.
func Run(ctx context.Context, spec Spec, out io.Writer) error {
	name := spec.name()
	env := spec.Env
	if env == nil {
		env = []string{}
	}
	if spec.Tag != "" {
		env = append(env[:len(env):len(env)], TagEnv+"="+spec.Tag)
	}
	path, err := lookPath(spec.Path, env)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return &stopError{name: name, what: "not started", cause: context.Cause(ctx)}
	}
	grace := spec.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	cmd := &exec.Cmd{
		Path:        path,
		Args:        append([]string{spec.Path}, spec.Args...),
		Env:         env,
		Dir:         spec.Dir,
		Stdout:      w,
		Stderr:      w,
		SysProcAttr: sysProcAttr(),
	}
	reaped := reaperOn.Load()
	if reaped {
		// The reaper runs the command and ends its whole tree (see
		// ServeReaper); this process only signals the reaper.
		cmd.Path, cmd.Args = "/proc/self/exe", reaperArgs(grace, path, cmd.Args)
		cmd.SysProcAttr = reaperProcAttr()
	}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	w.Close() // the child has its copy; EOF comes when every holder is gone
	pgid := cmd.Process.Pid

	copied := make(chan error, 1)
	go func() { copied <- copyLines(out, r) }()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	var waitErr error
	switch {
	case reaped:
		waitErr = waitReaper(ctx, cmd.Process.Pid, grace, spec.Tag, waited)
	default:
		select {
		case waitErr = <-waited:
		case <-ctx.Done():
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case waitErr = <-waited:
			case <-time.After(grace):
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
				waitErr = <-waited
			}
		}
		// The leader is gone; nothing else of its group may stay.
		endGroup(pgid, grace)
	}

	var copyErr error
	select {
	case copyErr = <-copied:
	case <-time.After(drainTimeout):
		r.Close() // someone outside the group holds the pipe; stop reading
		copyErr = <-copied
	}
	r.Close()

	if ctx.Err() != nil {
		return &stopError{name: name, what: "stopped", cause: context.Cause(ctx)}
	}
	if waitErr != nil {
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) {
			xe := &ExitError{Name: name, Code: ee.ExitCode()}
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				xe.Signal = ws.Signal()
			}
			return xe
		}
		return fmt.Errorf("%s: %w", name, waitErr)
	}
	if copyErr != nil && !errors.Is(copyErr, os.ErrClosed) {
		return fmt.Errorf("%s succeeded, but its output could not be written: %w", name, copyErr)
	}
	return nil
}

// reaperSlack is how long past its grace period a stopped reaper may take
// to end its tree before it is killed.
const reaperSlack = 5 * time.Second

// waitReaper waits for the reaper pid to exit; when ctx ends first, it asks
// the reaper to end the command's tree (SIGTERM), and kills the reaper and
// sweeps the tag if the reaper does not manage within grace and some slack.
func waitReaper(ctx context.Context, pid int, grace time.Duration, tag string, waited <-chan error) error {
	select {
	case err := <-waited:
		return err
	case <-ctx.Done():
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case err := <-waited:
		return err
	case <-time.After(grace + reaperSlack):
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	err := <-waited
	if tag != "" {
		_, _ = sweepTag(tag)
	}
	return err
}

// endGroup ends what is left of a process group: SIGTERM, then SIGKILL if
// anything is still alive after grace.
func endGroup(pgid int, grace time.Duration) {
	if !groupAlive(pgid) {
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if !groupAlive(pgid) {
			return
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// groupAlive reports whether a process group has a live (not zombie)
// member. It reads /proc where there is one, since a signal to a group of
// zombies waiting to be reaped still succeeds.
func groupAlive(pgid int) bool {
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	procs, err := processes()
	if err != nil {
		return true
	}
	for _, p := range procs {
		if p.pgid == pgid && p.live() {
			return true
		}
	}
	return false
}

// procEntry is what /proc/<pid>/stat says of a process.
type procEntry struct {
	pid, ppid, pgid int
	state           byte
}

// live reports whether the process is not a zombie.
func (p procEntry) live() bool { return p.state != 'Z' && p.state != 'X' }

// processes lists every process in /proc; it fails where there is none.
func processes() ([]procEntry, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []procEntry
	for _, e := range entries {
		if p, ok := procStat(e.Name()); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// procStat reads /proc/<pid>/stat; ok is false when pid is not a process.
func procStat(pid string) (p procEntry, ok bool) {
	n, err := strconv.Atoi(pid)
	if err != nil {
		return procEntry{}, false
	}
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return procEntry{}, false
	}
	// pid (comm) state ppid pgrp ...; comm may contain spaces and ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procEntry{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 || len(f[0]) == 0 {
		return procEntry{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return procEntry{}, false
	}
	return procEntry{pid: n, ppid: ppid, pgid: pgid, state: f[0][0]}, true
}

// copyLines copies r to out one line at a time. After a write error it
// keeps reading (so the command never blocks on a full pipe) and returns
// the first error.
func copyLines(out io.Writer, r io.Reader) error {
	br := bufio.NewReaderSize(r, lineMax)
	var werr error
	write := func(line []byte) {
		if werr != nil {
			return
		}
		if len(line) == 0 || line[len(line)-1] != '\n' {
			line = append(line[:len(line):len(line)], '\n')
		}
		_, werr = out.Write(line)
	}
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			write(line)
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return werr
		default:
			if werr != nil {
				return werr
			}
			return err
		}
	}
}

// lookPath finds a program in the PATH of env (not the bot's PATH).
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		if err := executable(file); err != nil {
			return "", err
		}
		return file, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, file)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed: not found in PATH %q", file, path)
}

func executable(p string) error {
	st, err := os.Stat(p)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", p, err)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", p)
	case st.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s is not executable", p)
	}
	return nil
}
