package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Errors restic's exit codes stand for; a *ResticError wraps one.
var (
	// ErrResticFailed is restic's exit code 1: a fatal error (the dump
	// command failed, a backend refused, …).
	ErrResticFailed = errors.New("restic failed")
	// ErrIncomplete is exit code 3: the snapshot was saved without some
	// files it could not read.
	ErrIncomplete = errors.New("some source files could not be read")
	// ErrNoRepository is exit code 10: the repository does not exist.
	ErrNoRepository = errors.New("the repository does not exist")
	// ErrLocked is exit code 11: the repository is locked by another
	// restic.
	ErrLocked = errors.New("the repository is locked")
	// ErrWrongPassword is exit code 12.
	ErrWrongPassword = errors.New("wrong password for the repository")
	// ErrInterrupted is exit code 130: restic was stopped by a signal.
	ErrInterrupted = errors.New("restic was interrupted")
	// ErrResticVersion says the restic found is too old.
	ErrResticVersion = errors.New("restic is too old")
	// ErrAccessDenied is exit code 1 with the backend refusing the
	// credentials (an S3 server's 403 Access Denied or
	// SignatureDoesNotMatch, …): restic has no exit code of its own for it.
	ErrAccessDenied = errors.New("the repository's backend refused the credentials")
)

// deniedRE recognises what restic's backends say when they refuse the
// credentials: S3's answers as minio-go renders them (a HEAD's 403 has no
// body, so it is only "Access Denied."), Azure's and HTTP's.
var deniedRE = regexp.MustCompile(`(?i)access denied|accessdenied|signature ?we calculated does not match|signaturedoesnotmatch|invalidaccesskeyid|access key id you provided does not exist|authenticationfailed|\b40[13] (unauthorized|forbidden)\b`)

// ResticError is a failed restic run: its exit code, the sentinel that code
// stands for, and what restic said (the password scrubbed from it).
type ResticError struct {
	Op      string
	Code    int
	Kind    error
	Message string
}

func (e *ResticError) Error() string {
	s := fmt.Sprintf("restic %s: %v", e.Op, e.Kind)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap lets errors.Is find the sentinel.
func (e *ResticError) Unwrap() error { return e.Kind }

// kindOfExit maps restic's exit codes to the sentinels.
func kindOfExit(code int) error {
	switch code {
	case 3:
		return ErrIncomplete
	case 10:
		return ErrNoRepository
	case 11:
		return ErrLocked
	case 12:
		return ErrWrongPassword
	case 130:
		return ErrInterrupted
	}
	return ErrResticFailed
}

// minRestic is the oldest restic the plugin accepts: 0.18, the series it
// is built and tested against (issue #11). 0.17 brought what it needs most,
// --stdin-from-command and the exit codes 10 to 12, but no test runs it.
var minRestic = [2]int{0, 18}

var resticVersionRE = regexp.MustCompile(`^restic (\d+)\.(\d+)\.(\d+)`)

// resticBin finds restic: the `restic` setting, else $PATH; and checks its
// version.
func resticBin(setting, dir string) (path, version string, err error) {
	path = setting
	if path == "" {
		if path, err = exec.LookPath("restic"); err != nil {
			return "", "", fmt.Errorf("restic is not on $PATH and no `restic` setting names it: install restic 0.18 or newer (go install github.com/restic/restic/cmd/restic@v0.18.1)")
		}
	} else if !filepath.IsAbs(path) && strings.Contains(path, "/") && dir != "" {
		path = filepath.Join(dir, path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "version").Output()
	if err != nil {
		return "", "", fmt.Errorf("run %s version: %w", path, err)
	}
	m := resticVersionRE.FindStringSubmatch(strings.TrimSpace(string(out)))
	if m == nil {
		return "", "", fmt.Errorf("%s version said %q, not restic's version", path, firstLine(string(out)))
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	version = m[1] + "." + m[2] + "." + m[3]
	if major < minRestic[0] || major == minRestic[0] && minor < minRestic[1] {
		return "", "", fmt.Errorf("%w: %s is restic %s; the backup plugin needs %d.%d or newer (the restic it is tested with): go install github.com/restic/restic/cmd/restic@v0.18.1",
			ErrResticVersion, path, version, minRestic[0], minRestic[1])
	}
	return path, version, nil
}

// restic runs restic for one target: the repository and its password reach
// restic through its environment only (RESTIC_REPOSITORY,
// RESTIC_PASSWORD_FILE or RESTIC_PASSWORD), never its command line.
type restic struct {
	bin      string
	cacheDir string
	// lockWait is how long restic waits for a repository's lock;
	// the package's lockWait when zero.
	lockWait time.Duration
}

// runOpts tune one restic run.
type runOpts struct {
	// env is added to restic's environment (a dump's PGPASSWORD: the dump
	// command restic starts inherits it).
	env []string
	// onStdout gets each line of stdout; without it stdout is returned.
	onStdout func(line []byte)
	// stdout, when set, receives stdout as it is (restic dump).
	stdout io.Writer
}

// password is t's repository password when it comes from the
// environment (a password file's is never read by the plugin).
func (t *Target) password() string {
	if t.PasswordEnv != "" {
		return os.Getenv(t.PasswordEnv)
	}
	return ""
}

// environ is restic's whole environment for t. A target with
// repository_env gets its backend's credentials from there only: the
// backend variables the plugin inherited (another target's AWS_* secret
// declared under that name) are left out, so that one target never signs
// with another's keys.
func (r *restic) environ(t *Target, extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "RESTIC_") {
			continue // only what this target says
		}
		if len(t.RepositoryEnv) > 0 && backendEnv(name) {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "RESTIC_REPOSITORY="+t.Repository, "RESTIC_CACHE_DIR="+r.cacheDir, "RESTIC_PROGRESS_FPS=2")
	if t.PasswordEnv != "" {
		env = append(env, "RESTIC_PASSWORD="+os.Getenv(t.PasswordEnv))
	} else {
		env = append(env, "RESTIC_PASSWORD_FILE="+t.PasswordFile)
	}
	for _, name := range slices.Sorted(maps.Keys(t.RepositoryEnv)) {
		env = append(env, name+"="+os.Getenv(t.RepositoryEnv[name]))
	}
	return append(env, extra...)
}

// command prepares restic with args for t. Cancelling ctx sends restic
// SIGINT, so that it removes its lock from the repository and stops the
// dump it runs; a plugin that dies (even by SIGKILL) has the kernel send it
// SIGINT too.
func (r *restic) command(ctx context.Context, t *Target, o runOpts, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Env = r.environ(t, o.env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	return cmd
}

// lockWait is how long restic waits for a repository's lock.
const lockWait = 10 * time.Minute

// run runs restic with args for t and returns its stdout (unless
// o.onStdout or o.stdout take it), or a *ResticError.
func (r *restic) run(ctx context.Context, t *Target, o runOpts, args ...string) ([]byte, error) {
	flags := []string{"--json"}
	if !slices.Contains(args, "--no-lock") {
		// Another target's backup or prune in the same repository holds
		// its lock for a while: wait for it rather than fail.
		wait := r.lockWait
		if wait <= 0 {
			wait = lockWait
		}
		flags = append(flags, "--retry-lock="+wait.String())
	}
	flags = append(flags, t.optionArgs()...)
	cmd := r.command(ctx, t, o, append(flags, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &limited{w: &stderr, n: 64 << 10}
	var out bytes.Buffer
	var pipe io.ReadCloser
	switch {
	case o.stdout != nil:
		cmd.Stdout = o.stdout
	case o.onStdout != nil:
		var err error
		if pipe, err = cmd.StdoutPipe(); err != nil {
			return nil, fmt.Errorf("restic %s: %w", args[0], err)
		}
	default:
		cmd.Stdout = &out
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start restic %s: %w", args[0], err)
	}
	if pipe != nil {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			o.onStdout(sc.Bytes())
		}
		_, _ = io.Copy(io.Discard, pipe)
	}
	err := cmd.Wait()
	if err == nil {
		return out.Bytes(), nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return nil, fmt.Errorf("restic %s: %w", args[0], err)
	}
	code := ee.ExitCode()
	if code < 0 && ctx.Err() != nil {
		code = 130
	}
	msg := scrub(resticMessage(stderr.Bytes()), t.secrets()...)
	kind := kindOfExit(code)
	if kind == ErrResticFailed && deniedRE.MatchString(msg) {
		kind = ErrAccessDenied
	}
	return nil, &ResticError{Op: args[0], Code: code, Kind: kind, Message: msg}
}

// resticMessage is what restic said on stderr: the message of its
// exit_error (and errors) when it spoke JSON, else its last lines.
func resticMessage(stderr []byte) string {
	var msgs, plain []string
	for _, line := range bytes.Split(stderr, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var m struct {
			Type    string `json:"message_type"`
			Message string `json:"message"`
			Error   struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if line[0] == '{' && json.Unmarshal(line, &m) == nil {
			switch {
			case m.Type == "exit_error" && m.Message != "":
				msgs = append(msgs, m.Message)
			case m.Type == "error" && m.Error.Message != "":
				msgs = append(msgs, m.Error.Message)
			}
			continue
		}
		plain = append(plain, string(line))
	}
	if len(msgs) == 0 {
		msgs = plain
		if len(msgs) > 5 {
			msgs = msgs[len(msgs)-5:]
		}
	}
	s := strings.Join(dedupe(msgs), "; ")
	s = strings.TrimPrefix(s, "Fatal: ")
	return strings.ReplaceAll(s, "\n", " ")
}

func dedupe(in []string) []string {
	var out []string
	for _, s := range in {
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

// scrub removes the secrets from s.
func scrub(s string, secrets ...string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// limited keeps the first n bytes written to it and drops the rest.
type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// snapshot is one entry of `restic snapshots --json`.
type snapshot struct {
	ID      string    `json:"id"`
	ShortID string    `json:"short_id"`
	Time    time.Time `json:"time"`
	Paths   []string  `json:"paths"`
	Tags    []string  `json:"tags"`
	Summary *struct {
		DataAdded           int64     `json:"data_added"`
		TotalFilesProcessed int64     `json:"total_files_processed"`
		TotalBytesProcessed int64     `json:"total_bytes_processed"`
		BackupStart         time.Time `json:"backup_start"`
		BackupEnd           time.Time `json:"backup_end"`
	} `json:"summary"`
}

// tag returns the value of the snapshot's "name:value" tag.
func (s snapshot) tag(name string) string {
	for _, t := range s.Tags {
		if v, ok := strings.CutPrefix(t, name+":"); ok {
			return v
		}
	}
	return ""
}

// snapshots lists t's snapshots, oldest first.
func (r *restic) snapshots(ctx context.Context, t *Target) ([]snapshot, error) {
	out, err := r.run(ctx, t, runOpts{}, "snapshots", "--no-lock", "--tag", targetTag(t), "--tag", suspectTag(t))
	if err != nil {
		return nil, err
	}
	var snaps []snapshot
	if err := json.Unmarshal(out, &snaps); err != nil {
		return nil, fmt.Errorf("restic snapshots: read its JSON: %w", err)
	}
	return snaps, nil
}

// find returns t's snapshot id (a prefix of its id, or "latest" or "").
func (r *restic) find(ctx context.Context, t *Target, id string) (snapshot, error) {
	snaps, err := r.snapshots(ctx, t)
	if err != nil && !(t.Init && errors.Is(err, ErrNoRepository)) {
		return snapshot{}, err
	}
	if len(snaps) == 0 {
		return snapshot{}, fmt.Errorf("%s has no backup yet: `backup %s` takes one", t.Name, t.Name)
	}
	if id == "" || id == "latest" {
		return snaps[len(snaps)-1], nil
	}
	var found []snapshot
	for _, s := range snaps {
		if strings.HasPrefix(s.ID, strings.ToLower(id)) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return snapshot{}, fmt.Errorf("%s has no backup %s (see `backups %s`)", t.Name, id, t.Name)
	case 1:
		return found[0], nil
	}
	return snapshot{}, fmt.Errorf("%s is the start of %d backups of %s: give more of the id", id, len(found), t.Name)
}

// targetTag is the tag the snapshots of t carry, and what forget selects.
func targetTag(t *Target) string { return "target:" + t.Name }

// suspectTag replaces targetTag on the snapshots the anomaly guard marked.
func suspectTag(t *Target) string { return "suspect:" + t.Name }

// hasTag says whether the snapshot carries tag.
func (s snapshot) hasTag(tag string) bool { return slices.Contains(s.Tags, tag) }
