package workspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// GitError is a git command that failed.
type GitError struct {
	// Args are git's arguments, with credentials in URLs redacted.
	Args []string
	// ExitCode is git's exit status, or -1 when it didn't exit normally.
	ExitCode int
	// Stderr is what git printed on stderr, trimmed and redacted.
	Stderr string
	// Err is the underlying error.
	Err error
}

// Error returns "git <args>: <error>: <stderr>".
func (e *GitError) Error() string {
	msg := "git " + strings.Join(e.Args, " ") + ": " + e.Err.Error()
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *GitError) Unwrap() error { return e.Err }

// maxStderr bounds how much of git's stderr an error keeps.
const maxStderr = 8 << 10

// gitConfig is given to every git command: no automatic gc or maintenance
// (the cache repacks by itself, under its lock), no hooks, and the mirror's
// objects, pack indexes and refs fsynced when written. The fsync is for the
// cache's durability, and also for speed: on the ext4 volume this was
// measured on, checking out of a freshly written, not yet synced pack took
// 1-2 s instead of 80 ms for 5,000 files. Checkout files are not fsynced.
var gitConfig = []string{
	"-c", "core.fsync=objects,derived-metadata,reference",
	"-c", "gc.auto=0",
	"-c", "maintenance.auto=false",
	"-c", "core.hooksPath=/dev/null",
	"-c", "advice.detachedHead=false",
}

// git runs git in dir and returns its stdout.
func (c *Cache) git(ctx context.Context, dir string, args ...string) (string, error) {
	return c.gitEnv(ctx, c.env, dir, args...)
}

// remote runs a git command that reaches r's remote, with the credentials
// Options.Credentials gives for it.
func (c *Cache) remote(ctx context.Context, r *repo, dir string, args ...string) (string, error) {
	if c.creds == nil {
		return c.git(ctx, dir, args...)
	}
	extra, err := c.creds(ctx, r.url)
	if err != nil {
		return "", fmt.Errorf("credentials for %s: %w", r.name, err)
	}
	env := append(append(make([]string, 0, len(c.env)+len(extra)), c.env...), extra...)
	return c.gitEnv(ctx, env, dir, args...)
}

// gitEnv runs git in dir with the environment env and returns its stdout.
func (c *Cache) gitEnv(ctx context.Context, env []string, dir string, args ...string) (string, error) {
	argv := append(append([]string{}, gitConfig...), args...)
	cmd := exec.CommandContext(ctx, c.gitBin, argv...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &limitedBuffer{buf: &stderr, max: maxStderr}
	// Its own process group, so that cancelling also ends the helpers git
	// starts (upload-pack, index-pack, ssh).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err == nil {
		return stdout.String(), nil
	}
	if ctxErr := context.Cause(ctx); ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctxErr, err)
	}
	ge := &GitError{Args: redactAll(args), ExitCode: -1, Stderr: redact(strings.TrimSpace(stderr.String())), Err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		ge.ExitCode = ee.ExitCode()
	}
	return stdout.String(), ge
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

var credentialsRE = regexp.MustCompile(`(://)[^/@\s]+@`)

// redact hides user names and passwords in URLs: https://u:p@host → https://***@host.
func redact(s string) string { return credentialsRE.ReplaceAllString(s, "${1}***@") }

func redactAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = redact(a)
	}
	return out
}
