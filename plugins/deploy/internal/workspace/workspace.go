package workspace

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/chimaops/chima/plugins/deploy/internal/validate"
)

// Options tunes a Cache. The zero value is ready to use.
type Options struct {
	// Git is the git binary; "git" from PATH when empty.
	Git string
	// Env is added to git's minimal environment, and wins over it. Use it
	// for credentials git needs, e.g. SSH_AUTH_SOCK and GIT_SSH_COMMAND for
	// ssh URLs, or GIT_CONFIG_COUNT/GIT_CONFIG_KEY_0/GIT_CONFIG_VALUE_0 for
	// an http.extraHeader.
	Env []string
	// Credentials, when set, is asked before each git command that reaches
	// a repository's remote (clone, fetch, ls-remote), with the repository
	// as the Cache clones it, for environment to add to that command's
	// alone: credentials that expire, such as a GitHub App installation's
	// token in an http.extraHeader, which Env would keep past their end.
	// Its error stops the command. Local commands never ask.
	Credentials func(ctx context.Context, repoURL string) ([]string, error)
	// CheckoutDir is where checkouts are made; <dir>/checkouts when empty.
	CheckoutDir string
	// MaxPacks is the number of pack files after which a fetch repacks the
	// mirror into one; 16 when zero.
	MaxPacks int
}

// Cache holds the mirrors under one directory. It is safe for concurrent
// use; use one Cache per directory in a process.
type Cache struct {
	dir       string
	mirrors   string
	checkouts string
	home      string
	gitBin    string
	env       []string
	creds     func(ctx context.Context, repoURL string) ([]string, error)
	maxPacks  int

	mu     sync.Mutex
	repos  map[string]*repo
	active map[string]bool // checkout dirs not yet cleaned up
}

// repo is the state of one mirror.
type repo struct {
	url  string
	dir  string
	name string // for messages, credentials redacted
	// lock is held while git changes the mirror's bookkeeping: fetch,
	// repack, and adding or pruning a worktree entry. They can't overlap:
	// fetch and repack walk every worktree's HEAD, and a worktree being
	// added has a placeholder HEAD and a half-written entry that make the
	// others fail. Writing a checkout's files happens outside the lock.
	lock chan struct{}
	// fetchStart is when the last successful fetch (or clone) started.
	fetchStart time.Time
}

// New returns a Cache keeping its mirrors in dir, creating it if needed.
func New(dir string, opts Options) (*Cache, error) {
	if dir == "" {
		return nil, errors.New("workspace: no cache directory given")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	c := &Cache{
		dir:       dir,
		mirrors:   filepath.Join(dir, "mirrors"),
		checkouts: opts.CheckoutDir,
		home:      filepath.Join(dir, "home"),
		gitBin:    opts.Git,
		creds:     opts.Credentials,
		maxPacks:  opts.MaxPacks,
		repos:     map[string]*repo{},
		active:    map[string]bool{},
	}
	if c.checkouts == "" {
		c.checkouts = filepath.Join(dir, "checkouts")
	} else if c.checkouts, err = filepath.Abs(c.checkouts); err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	if c.gitBin == "" {
		c.gitBin = "git"
	}
	if c.maxPacks <= 0 {
		c.maxPacks = 16
	}
	for _, d := range []string{c.mirrors, c.checkouts, c.home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("workspace: %w", err)
		}
	}
	c.env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + c.home,
		"LC_ALL=C",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_ALLOW_PROTOCOL=file:git:http:https:ssh",
		"GIT_SSH_COMMAND=ssh -o BatchMode=yes",
	}, opts.Env...)
	return c, nil
}

// Dir is the cache directory.
func (c *Cache) Dir() string { return c.dir }

// UnknownRefError is a ref that names no commit in the repository.
type UnknownRefError struct {
	// Repo is the repository, with credentials redacted.
	Repo string
	// Ref is the ref asked for.
	Ref string
}

// Error returns `no branch, tag or commit "x" in repo`.
func (e *UnknownRefError) Error() string {
	return fmt.Sprintf("no branch, tag or commit %q in %s", e.Ref, e.Repo)
}

var (
	scpLikeRE   = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:`)
	transportRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*::`) // git's <transport>::<address>
)

// normalize turns a repository into the string git clones: local paths
// become absolute, URLs stay as they are.
func normalize(repoURL string) (string, error) {
	switch {
	case repoURL == "":
		return "", errors.New("workspace: no repository given")
	case strings.HasPrefix(repoURL, "-"):
		return "", fmt.Errorf("workspace: repository %q starts with \"-\"", repoURL)
	case strings.ContainsAny(repoURL, "\x00\n\r"):
		return "", errors.New("workspace: repository contains a control character")
	case strings.Contains(repoURL, "://") || scpLikeRE.MatchString(repoURL) || transportRE.MatchString(repoURL):
		return repoURL, nil
	}
	abs, err := filepath.Abs(repoURL)
	if err != nil {
		return "", fmt.Errorf("workspace: %w", err)
	}
	return abs, nil
}

// repo returns the state of a repository's mirror.
func (c *Cache) repo(repoURL string) (*repo, error) {
	u, err := normalize(repoURL)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.repos[u]; ok {
		return r, nil
	}
	sum := sha256.Sum256([]byte(u))
	r := &repo{
		url:  u,
		dir:  filepath.Join(c.mirrors, baseName(u)+"-"+hex.EncodeToString(sum[:8])+".git"),
		name: redact(u),
		lock: make(chan struct{}, 1),
	}
	c.repos[u] = r
	return r, nil
}

var unsafeNameRE = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// baseName is a readable name for a repository's directories: "project-x".
func baseName(u string) string {
	u = strings.TrimRight(u, "/")
	if i := strings.LastIndexAny(u, "/:"); i >= 0 {
		u = u[i+1:]
	}
	u = strings.TrimSuffix(u, ".git")
	u = strings.Trim(unsafeNameRE.ReplaceAllString(u, "_"), "._-")
	if len(u) > 40 {
		u = u[:40]
	}
	if u == "" {
		u = "repo"
	}
	return u
}

// acquire takes the repository's lock, or gives up with ctx.
func (r *repo) acquire(ctx context.Context) error {
	select {
	case r.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("workspace: waiting for %s: %w", r.name, context.Cause(ctx))
	}
}

func (r *repo) release() { <-r.lock }

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// MirrorDir returns the directory of the repository's bare mirror (which may
// not exist yet).
func (c *Cache) MirrorDir(repoURL string) (string, error) {
	r, err := c.repo(repoURL)
	if err != nil {
		return "", err
	}
	return r.dir, nil
}

// Fetch brings the repository's mirror up to date: a mirror clone the first
// time, `git fetch --prune` afterwards. Calls for the same repository are
// serialised; a call that waited while another fetch ran from after it was
// made returns without fetching again.
func (c *Cache) Fetch(ctx context.Context, repoURL string) error {
	r, err := c.repo(repoURL)
	if err != nil {
		return err
	}
	asked := time.Now()
	if err := r.acquire(ctx); err != nil {
		return err
	}
	defer r.release()
	if !r.fetchStart.IsZero() && r.fetchStart.After(asked) && exists(r.dir) {
		return nil
	}
	return c.fetchLocked(ctx, r)
}

// fetchLocked fetches or clones; the caller holds r's lock.
func (c *Cache) fetchLocked(ctx context.Context, r *repo) error {
	start := time.Now()
	if !exists(r.dir) {
		if err := c.clone(ctx, r); err != nil {
			return err
		}
	} else {
		if _, err := c.remote(ctx, r, r.dir, "fetch", "--prune", "--quiet", "origin"); err != nil {
			return fmt.Errorf("workspace: fetching %s: %w", r.name, err)
		}
		if err := c.maybeRepack(ctx, r); err != nil {
			return err
		}
	}
	r.fetchStart = start
	return nil
}

// clone makes the mirror in a temporary directory and renames it into
// place, so that an interrupted clone never leaves a half mirror behind.
func (c *Cache) clone(ctx context.Context, r *repo) error {
	tmp, err := os.MkdirTemp(c.mirrors, ".clone-*")
	if err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	defer os.RemoveAll(tmp)
	dst := filepath.Join(tmp, "mirror.git")
	if _, err := c.remote(ctx, r, c.dir, "clone", "--mirror", "--no-local", "--quiet", "--", r.url, dst); err != nil {
		return fmt.Errorf("workspace: cloning %s: %w", r.name, err)
	}
	if err := os.Rename(dst, r.dir); err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	return nil
}

// ensure makes sure the mirror exists, cloning it if needed.
func (c *Cache) ensure(ctx context.Context, r *repo) error {
	if exists(r.dir) {
		return nil
	}
	if err := r.acquire(ctx); err != nil {
		return err
	}
	defer r.release()
	if exists(r.dir) {
		return nil
	}
	return c.fetchLocked(ctx, r)
}

// maybeRepack packs the mirror when fetches have left many packs or loose
// objects, which slow checkouts down. The caller holds r's lock.
func (c *Cache) maybeRepack(ctx context.Context, r *repo) error {
	packs, _ := filepath.Glob(filepath.Join(r.dir, "objects", "pack", "*.pack"))
	// Like git gc --auto: loose objects in one of 256 fan-out directories
	// estimate the total.
	loose, _ := os.ReadDir(filepath.Join(r.dir, "objects", "17"))
	args := []string{"repack", "-d", "-q"}
	switch {
	case len(packs) > c.maxPacks:
		args = append(args, "-a")
	case len(loose)*256 > 2000:
	default:
		return nil
	}
	if _, err := c.git(ctx, r.dir, args...); err != nil {
		return fmt.Errorf("workspace: repacking %s: %w", r.name, err)
	}
	return nil
}

// Resolve returns the full SHA of the commit ref names in the mirror (a
// branch, tag, full ref or SHA), cloning the mirror first if there is none;
// call Fetch first to see the latest pushes. The ref is checked with
// validate.Ref; one naming nothing is an *UnknownRefError.
func (c *Cache) Resolve(ctx context.Context, repoURL, ref string) (string, error) {
	if err := validate.Ref(ref); err != nil {
		return "", err
	}
	r, err := c.repo(repoURL)
	if err != nil {
		return "", err
	}
	if err := c.ensure(ctx, r); err != nil {
		return "", err
	}
	return c.resolve(ctx, r, ref)
}

func (c *Cache) resolve(ctx context.Context, r *repo, ref string) (string, error) {
	// ref passed validate.Ref, so it can't start with "-"; it is one argv
	// entry and never reaches a shell.
	out, err := c.git(ctx, r.dir, "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	if err != nil {
		var ge *GitError
		if errors.As(err, &ge) && ge.ExitCode == 1 && ctx.Err() == nil {
			return "", &UnknownRefError{Repo: r.name, Ref: ref}
		}
		return "", fmt.Errorf("workspace: resolving %q in %s: %w", ref, r.name, err)
	}
	sha := strings.TrimSpace(out)
	if !validate.IsFullSHA(sha) {
		return "", fmt.Errorf("workspace: resolving %q in %s: git printed %q", ref, r.name, sha)
	}
	return sha, nil
}

// ErrNoDefaultBranch is returned by DefaultBranch when the repository has
// no default branch: neither the remote nor the mirror has a HEAD that names
// a branch (a detached HEAD, say). Other failures, such as a repository that
// can't be cloned, are not this error.
var ErrNoDefaultBranch = errors.New("no default branch")

// DefaultBranch returns the repository's default branch ("main"), asking
// the remote which branch its HEAD points to and recording it in the mirror.
// When the remote can't say, the mirror's HEAD (from the clone) is used.
// A repository with no default branch is an error wrapping
// ErrNoDefaultBranch.
func (c *Cache) DefaultBranch(ctx context.Context, repoURL string) (string, error) {
	r, err := c.repo(repoURL)
	if err != nil {
		return "", err
	}
	if err := c.ensure(ctx, r); err != nil {
		return "", err
	}
	// Ask the remote (network, outside the lock), then record the answer.
	if out, err := c.remote(ctx, r, r.dir, "ls-remote", "--symref", "origin", "HEAD"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			target, ok := strings.CutPrefix(line, "ref: ")
			if !ok {
				continue
			}
			target, _, _ = strings.Cut(target, "\t")
			if branch, ok := strings.CutPrefix(target, "refs/heads/"); ok && validate.Ref(branch) == nil {
				if err := r.acquire(ctx); err != nil {
					return "", err
				}
				_, err := c.git(ctx, r.dir, "symbolic-ref", "HEAD", target)
				r.release()
				if err != nil {
					return "", fmt.Errorf("workspace: %w", err)
				}
				return branch, nil
			}
		}
	}
	out, err := c.git(ctx, r.dir, "symbolic-ref", "--quiet", "HEAD")
	if err != nil {
		// Exit status 1 is git's "HEAD is not a symbolic ref" (detached);
		// anything else (a cancel, git failing) is not an answer.
		var ge *GitError
		if errors.As(err, &ge) && ge.ExitCode == 1 && ctx.Err() == nil {
			return "", fmt.Errorf("workspace: %s: %w (its HEAD is detached)", r.name, ErrNoDefaultBranch)
		}
		return "", fmt.Errorf("workspace: reading the default branch of %s: %w", r.name, err)
	}
	branch, ok := strings.CutPrefix(strings.TrimSpace(out), "refs/heads/")
	if !ok || branch == "" {
		return "", fmt.Errorf("workspace: %s: %w (its HEAD is %s)", r.name, ErrNoDefaultBranch, strings.TrimSpace(out))
	}
	return branch, nil
}

// Checkout is a clean working tree of one commit, made for one deployment.
type Checkout struct {
	// Dir is the working tree's directory.
	Dir string
	// SHA is the commit checked out (HEAD is detached at it).
	SHA string

	cache *Cache
	repo  *repo
	once  sync.Once
	err   error
}

// Checkout makes a clean working tree of sha (a full SHA, as Resolve
// returns) in a fresh directory. Call Cleanup on the result when done.
// Checkouts may be made in parallel, also of the same repository.
func (c *Cache) Checkout(ctx context.Context, repoURL, sha string) (*Checkout, error) {
	if !validate.IsFullSHA(sha) {
		return nil, fmt.Errorf("workspace: checkout wants a full commit SHA, got %q", sha)
	}
	r, err := c.repo(repoURL)
	if err != nil {
		return nil, err
	}
	if err := c.ensure(ctx, r); err != nil {
		return nil, err
	}
	// The folder may have gone since New: tmpfs is cleared by cleaners
	// such as systemd-tmpfiles, and a bot that is not running deploys has
	// nothing in it to keep it.
	if err := os.MkdirAll(c.checkouts, 0o700); err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	dir, err := os.MkdirTemp(c.checkouts, baseName(r.url)+"-"+sha[:12]+"-*")
	if err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	co := &Checkout{Dir: dir, SHA: sha, cache: c, repo: r}
	c.mu.Lock()
	c.active[dir] = true
	c.mu.Unlock()
	fail := func(err error) (*Checkout, error) {
		err = fmt.Errorf("workspace: checking out %s of %s: %w", sha[:12], r.name, err)
		return nil, errors.Join(err, co.Cleanup())
	}
	// Register the worktree (quick, under the lock), then write its files
	// (slow, in parallel with other checkouts and fetches).
	if err := r.acquire(ctx); err != nil {
		return fail(err)
	}
	// Never killed half-way: an interrupted `worktree add` leaves its entry
	// locked ("initializing"), which prune skips and every later fetch of
	// the mirror then fails on ("bad object worktrees/…/HEAD"). It is
	// quick (no files are written), so it runs to its end even when ctx is
	// cancelled; ctx is checked right after.
	addCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	_, err = c.git(addCtx, r.dir, "worktree", "add", "--no-checkout", "--detach", "--quiet", dir, sha)
	cancel()
	r.release()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return fail(err)
	}
	if _, err := c.git(ctx, dir, "reset", "--hard", "--quiet"); err != nil {
		return fail(err)
	}
	return co, nil
}

// Prepare is what a deployment does: Fetch, Resolve ref, Checkout. A ref
// that is a full SHA already in the mirror skips the fetch (a redeploy or
// rollback of a known commit needs no network).
func (c *Cache) Prepare(ctx context.Context, repoURL, ref string) (*Checkout, error) {
	if err := validate.Ref(ref); err != nil {
		return nil, err
	}
	r, err := c.repo(repoURL)
	if err != nil {
		return nil, err
	}
	sha := ""
	if validate.IsFullSHA(ref) && exists(r.dir) {
		sha, _ = c.resolve(ctx, r, ref)
	}
	if sha == "" {
		if err := c.Fetch(ctx, repoURL); err != nil {
			return nil, err
		}
		if sha, err = c.resolve(ctx, r, ref); err != nil {
			return nil, err
		}
	}
	return c.Checkout(ctx, repoURL, sha)
}

// Cleanup removes the working tree and its worktree entry in the mirror.
// It is safe to call more than once and from a deferred call after the
// deployment's context ended; later calls return the first call's result.
func (co *Checkout) Cleanup() error {
	co.once.Do(func() {
		c := co.cache
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// remove -f -f also drops an entry left locked by an earlier,
		// interrupted add; failing is fine (no entry), removeAll and prune
		// follow.
		_ = c.removeWorktree(ctx, co.repo, co.Dir)
		errRemove := removeAll(co.Dir)
		errPrune := c.prune(ctx, co.repo)
		c.mu.Lock()
		delete(c.active, co.Dir)
		c.mu.Unlock()
		if err := errors.Join(errRemove, errPrune); err != nil {
			co.err = fmt.Errorf("workspace: cleaning up %s: %w", co.Dir, err)
		}
	})
	return co.err
}

// Sweep removes checkouts left behind by an earlier process (one that
// crashed before Cleanup) and prunes their worktree entries. Checkouts of
// this Cache that are still in use are kept. Call it at startup.
func (c *Cache) Sweep(ctx context.Context) error {
	entries, err := os.ReadDir(c.checkouts)
	if err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	var errs []error
	for _, e := range entries {
		dir := filepath.Join(c.checkouts, e.Name())
		c.mu.Lock()
		inUse := c.active[dir]
		c.mu.Unlock()
		if !inUse {
			errs = append(errs, removeAll(dir))
		}
	}
	mirrors, _ := filepath.Glob(filepath.Join(c.mirrors, "*.git"))
	for _, m := range mirrors {
		if err := c.prune(ctx, c.repoByDir(m)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("workspace: sweeping: %w", err)
	}
	return nil
}

// prune drops the worktree entries whose directories are gone.
func (c *Cache) prune(ctx context.Context, r *repo) error {
	if err := r.acquire(ctx); err != nil {
		return err
	}
	defer r.release()
	_, err := c.git(ctx, r.dir, "worktree", "prune")
	return err
}

// removeWorktree unregisters the worktree at dir from the mirror, locked
// or not.
func (c *Cache) removeWorktree(ctx context.Context, r *repo, dir string) error {
	if err := r.acquire(ctx); err != nil {
		return err
	}
	defer r.release()
	_, err := c.git(ctx, r.dir, "worktree", "remove", "--force", "--force", dir)
	return err
}

// repoByDir returns the repo whose mirror is dir, or a stand-in for a
// mirror made by an earlier process.
func (c *Cache) repoByDir(dir string) *repo {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.repos {
		if r.dir == dir {
			return r
		}
	}
	return &repo{dir: dir, name: filepath.Base(dir), lock: make(chan struct{}, 1)}
}

// removeAll removes a tree, making read-only directories writable first if
// a deploy left some behind (Go's module cache does, for one).
func removeAll(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
