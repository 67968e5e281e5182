package workspace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/plugins/deploy/internal/validate"
)

var ctx = context.Background()

func TestFetchClonesABareMirrorThenFollowsTheRemote(t *testing.T) {
	src := newRepo(t, map[string]string{"README": "one\n"})
	c := newCache(t)
	first := run(t, src, "rev-parse", "HEAD")

	if err := c.Fetch(ctx, src); err != nil {
		t.Fatalf("first Fetch: %v", err)
	}
	mirror, _ := c.MirrorDir(src)
	if got := run(t, mirror, "rev-parse", "--is-bare-repository"); got != "true" {
		t.Fatalf("mirror is not bare: %q", got)
	}
	if !strings.HasPrefix(filepath.Base(mirror), "src-") || !strings.HasSuffix(mirror, ".git") {
		t.Errorf("mirror dir %q should be named after the repository", mirror)
	}
	steps := []struct {
		name    string
		change  func()
		ref     string
		want    func() string
		wantErr string
	}{
		{"the cloned branch resolves", func() {}, "main", func() string { return first }, ""},
		{"a new commit is seen after a fetch", func() { commit(t, src, map[string]string{"README": "two\n"}, "two") },
			"main", func() string { return run(t, src, "rev-parse", "HEAD") }, ""},
		{"a new branch is seen after a fetch", func() { run(t, src, "branch", "feature/x", first) },
			"feature/x", func() string { return first }, ""},
		{"a deleted branch is pruned", func() { run(t, src, "branch", "-D", "feature/x") },
			"feature/x", nil, `no branch, tag or commit "feature/x" in ` + src},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.change()
			if err := c.Fetch(ctx, src); err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			sha, err := c.Resolve(ctx, src, st.ref)
			if st.wantErr != "" {
				var ue *UnknownRefError
				if !errors.As(err, &ue) || err.Error() != st.wantErr {
					t.Fatalf("Resolve(%q) = %q, %v; want %q", st.ref, sha, err, st.wantErr)
				}
				return
			}
			if err != nil || sha != st.want() {
				t.Fatalf("Resolve(%q) = %q, %v; want %q", st.ref, sha, err, st.want())
			}
		})
	}
}

func TestResolveWithoutFetchUsesTheMirrorAsItIs(t *testing.T) {
	src := newRepo(t, map[string]string{"a": "1"})
	old := run(t, src, "rev-parse", "HEAD")
	c := newCache(t)
	if _, err := c.Resolve(ctx, src, "main"); err != nil { // clones on first use
		t.Fatal(err)
	}
	commit(t, src, map[string]string{"a": "2"}, "two")
	if got, err := c.Resolve(ctx, src, "main"); err != nil || got != old {
		t.Fatalf("Resolve without Fetch = %q, %v; want the mirrored %q", got, err, old)
	}
}

func TestResolve(t *testing.T) {
	src := newRepo(t, map[string]string{"a": "1"})
	first := run(t, src, "rev-parse", "HEAD")
	second := commit(t, src, map[string]string{"a": "2"}, "two")
	run(t, src, "tag", "-a", "-m", "release", "v1.0", first)
	run(t, src, "tag", "light", second)
	c := newCache(t)
	if err := c.Fetch(ctx, src); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		ref     string
		want    string
		wantErr string
	}{
		{"a branch resolves to its tip", "main", second, ""},
		{"a full ref resolves", "refs/heads/main", second, ""},
		{"an annotated tag resolves to its commit, not the tag object", "v1.0", first, ""},
		{"a lightweight tag resolves", "light", second, ""},
		{"a full SHA resolves to itself", first, first, ""},
		{"a short SHA resolves to the full SHA", first[:10], first, ""},
		{"HEAD resolves to the default branch", "HEAD", second, ""},
		{"an unknown branch is an UnknownRefError", "nope", "", `no branch, tag or commit "nope" in ` + src},
		{"an unknown SHA is an UnknownRefError", strings.Repeat("0", 40), "", "no branch, tag or commit"},
		{"an option-like ref is refused before git runs", "--output=/tmp/x", "", `ref "--output=/tmp/x" is not allowed: it starts with "-"`},
		{"shell metacharacters are refused", "main;id", "", `it contains ";"`},
		{"reflog syntax is refused", "main@{1}", "", `it contains "@{"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Resolve(ctx, src, tt.ref)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve(%q) = %q, %v; want error %q", tt.ref, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve(%q) = %q, %v; want %q", tt.ref, got, err, tt.want)
			}
		})
	}
}

func TestCheckoutIsACleanTreeOfTheExactCommit(t *testing.T) {
	src := newRepo(t, map[string]string{"app.txt": "v1\n", "lib/util.txt": "u1\n", "gone.txt": "x\n"})
	v1 := run(t, src, "rev-parse", "HEAD")
	commit(t, src, map[string]string{"app.txt": "v2\n", "gone.txt": "", "new.txt": "n\n"}, "v2")
	c := newCache(t)
	if err := c.Fetch(ctx, src); err != nil {
		t.Fatal(err)
	}
	co, err := c.Checkout(ctx, src, v1)
	if err != nil {
		t.Fatalf("Checkout: %v", err)
	}
	defer co.Cleanup()
	if co.SHA != v1 {
		t.Errorf("SHA = %q, want %q", co.SHA, v1)
	}
	want := map[string]string{"app.txt": "v1\n", "lib/util.txt": "u1\n", "gone.txt": "x\n"}
	got := map[string]string{}
	err = filepath.WalkDir(co.Dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(co.Dir, path)
		if rel == ".git" {
			return nil
		}
		if !d.IsDir() {
			b, _ := os.ReadFile(path)
			got[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("checkout files = %v, want %v", got, want)
	}
	if head := run(t, co.Dir, "rev-parse", "HEAD"); head != v1 {
		t.Errorf("git in the checkout sees HEAD %q, want %q", head, v1)
	}
	if status := run(t, co.Dir, "status", "--porcelain"); status != "" {
		t.Errorf("checkout is not clean: %q", status)
	}
	if !strings.HasPrefix(filepath.Base(co.Dir), "src-"+v1[:12]+"-") {
		t.Errorf("checkout dir %q should carry the repo name and short SHA", co.Dir)
	}
}

func TestCheckoutsAreIndependent(t *testing.T) {
	src := newRepo(t, map[string]string{"a.txt": "original\n"})
	sha := run(t, src, "rev-parse", "HEAD")
	c := newCache(t)
	one, err := c.Checkout(ctx, src, sha)
	if err != nil {
		t.Fatal(err)
	}
	two, err := c.Checkout(ctx, src, sha)
	if err != nil {
		t.Fatal(err)
	}
	defer two.Cleanup()
	if one.Dir == two.Dir {
		t.Fatal("two checkouts share a directory")
	}
	if err := os.WriteFile(filepath.Join(one.Dir, "a.txt"), []byte("changed by a deploy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(one.Dir, "build.out"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(two.Dir, "a.txt")); string(b) != "original\n" {
		t.Errorf("a change in one checkout shows in another: %q", b)
	}
	if err := one.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(two.Dir, "a.txt")); string(b) != "original\n" {
		t.Errorf("cleaning up one checkout damaged another: %q", b)
	}
	if got := worktrees(t, c, src); len(got) != 1 || got[0] != filepath.Base(two.Dir) {
		t.Errorf("worktrees after one cleanup = %q, want only %q", got, filepath.Base(two.Dir))
	}
}

// tmpfs cleaners (systemd-tmpfiles) remove folders nobody used for a while:
// the next deploy recreates its checkout folder instead of failing.
func TestCheckoutRecreatesACheckoutFolderThatWasRemoved(t *testing.T) {
	src := newRepo(t, map[string]string{"a.txt": "x\n"})
	sha := run(t, src, "rev-parse", "HEAD")
	dir := filepath.Join(t.TempDir(), "shm", "checkouts")
	c, err := New(filepath.Join(t.TempDir(), "cache"), Options{CheckoutDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Dir(dir)); err != nil {
		t.Fatal(err)
	}
	co, err := c.Checkout(ctx, src, sha)
	if err != nil {
		t.Fatalf("checkout after its folder was removed: %v", err)
	}
	defer co.Cleanup()
	if b, err := os.ReadFile(filepath.Join(co.Dir, "a.txt")); err != nil || string(b) != "x\n" {
		t.Fatalf("checkout holds %q, %v", b, err)
	}
}

func TestCleanup(t *testing.T) {
	tests := []struct {
		name  string
		mess  func(t *testing.T, dir string)
		twice bool
	}{
		{"removes an untouched checkout", func(*testing.T, string) {}, false},
		{"removes files a deploy added", func(t *testing.T, dir string) {
			if err := os.MkdirAll(filepath.Join(dir, "node_modules", "x"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"removes read-only directories a deploy left", func(t *testing.T, dir string) {
			ro := filepath.Join(dir, "cache", "mod")
			if err := os.MkdirAll(ro, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(ro, "f"), []byte("x"), 0o444); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(ro, 0o555); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"is safe to call twice", func(*testing.T, string) {}, true},
	}
	src := newRepo(t, map[string]string{"a": "1"})
	sha := run(t, src, "rev-parse", "HEAD")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t)
			co, err := c.Checkout(ctx, src, sha)
			if err != nil {
				t.Fatal(err)
			}
			tt.mess(t, co.Dir)
			if err := co.Cleanup(); err != nil {
				t.Fatalf("Cleanup: %v", err)
			}
			if tt.twice {
				if err := co.Cleanup(); err != nil {
					t.Fatalf("second Cleanup: %v", err)
				}
			}
			if _, err := os.Stat(co.Dir); !os.IsNotExist(err) {
				t.Errorf("checkout dir still there: %v", err)
			}
			if got := worktrees(t, c, src); len(got) != 0 {
				t.Errorf("mirror still lists worktrees %q", got)
			}
		})
	}
}

func TestParallelPreparesOfOneRepository(t *testing.T) {
	src := newRepo(t, map[string]string{"a": "1", "b/c": "2"})
	sha := run(t, src, "rev-parse", "HEAD")
	c := newCache(t)
	const n = 8
	var wg sync.WaitGroup
	dirs := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			co, err := c.Prepare(ctx, src, "main")
			if err != nil {
				errs[i] = err
				return
			}
			dirs[i] = co.Dir
			if co.SHA != sha {
				errs[i] = fmt.Errorf("SHA %s, want %s", co.SHA, sha)
			}
			if b, err := os.ReadFile(filepath.Join(co.Dir, "b", "c")); err != nil || string(b) != "2" {
				errs[i] = fmt.Errorf("checkout content %q, %v", b, err)
			}
			if err := co.Cleanup(); err != nil {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	sort.Strings(dirs)
	for i := 1; i < n; i++ {
		if dirs[i] == dirs[i-1] {
			t.Fatalf("two deployments got the same directory %s", dirs[i])
		}
	}
	if left, _ := os.ReadDir(c.checkouts); len(left) != 0 {
		t.Errorf("checkouts left behind: %v", left)
	}
	if got := worktrees(t, c, src); len(got) != 0 {
		t.Errorf("worktrees left behind: %q", got)
	}
}

func TestConcurrentFetchesOfOneRepositoryAllSucceed(t *testing.T) {
	src := newRepo(t, map[string]string{"a": "1"})
	c := newCache(t)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.Fetch(ctx, src) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func TestPrepareWithAKnownSHASkipsTheFetch(t *testing.T) {
	src := newRepo(t, map[string]string{"a": "1"})
	sha := run(t, src, "rev-parse", "HEAD")
	c := newCache(t)
	co, err := c.Prepare(ctx, src, "main")
	if err != nil {
		t.Fatal(err)
	}
	if err := co.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(src, src+".moved"); err != nil { // the remote is gone
		t.Fatal(err)
	}
	co, err = c.Prepare(ctx, src, sha)
	if err != nil {
		t.Fatalf("Prepare of a mirrored SHA needed the remote: %v", err)
	}
	if err := co.Cleanup(); err != nil {
		t.Fatal(err)
	}
	_, err = c.Prepare(ctx, src, "main")
	if err == nil {
		t.Fatal("Prepare of a branch must fetch, and the remote is gone")
	}
	var ge *GitError
	if !errors.As(err, &ge) || !strings.Contains(err.Error(), "fatal:") || ge.Stderr == "" {
		t.Errorf("error should carry git's stderr: %v", err)
	}
}

func TestGitErrors(t *testing.T) {
	requireGit(t)
	marker := filepath.Join(t.TempDir(), "pwned")
	tests := []struct {
		name     string
		repo     string
		want     []string
		mustNot  []string
		noMarker bool
	}{
		{"a missing local repository shows git's stderr", filepath.Join(t.TempDir(), "nope"),
			[]string{"cloning", "fatal:", "does not exist"}, nil, false},
		{"credentials in URLs are redacted", "https://deploy:s3cret@127.0.0.1:1/o/r.git",
			[]string{"https://***@127.0.0.1:1/o/r.git", "fatal:"}, []string{"s3cret", "deploy:"}, false},
		{"the ext transport is refused", "ext::sh -c touch% " + marker,
			[]string{"fatal:", "transport 'ext' not allowed"}, nil, true},
		{"an option-like repository is refused", "--upload-pack=touch " + marker,
			[]string{`starts with "-"`}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t)
			err := c.Fetch(ctx, tt.repo)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, w := range tt.mustNot {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q leaks %q", err, w)
				}
			}
			if _, err := os.Stat(marker); tt.noMarker && err == nil {
				t.Error("the repository string ran a command")
			}
		})
	}
}

func TestGitIgnoresTheUsersConfig(t *testing.T) {
	src := newRepo(t, map[string]string{"a": "1"})
	// A user config that would send every clone of src elsewhere.
	evil := filepath.Join(t.TempDir(), "gitconfig")
	cfg := fmt.Sprintf("[url \"%s\"]\n\tinsteadOf = %s\n", filepath.Join(t.TempDir(), "elsewhere"), src)
	if err := os.WriteFile(evil, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_CONFIG_GLOBAL", evil)
	t.Setenv("HOME", home)
	t.Setenv("GIT_DIR", filepath.Join(t.TempDir(), "not-a-repo"))
	c := newCache(t)
	if err := c.Fetch(ctx, src); err != nil {
		t.Fatalf("Fetch used the user's git config or environment: %v", err)
	}
}

func TestDefaultBranch(t *testing.T) {
	src := newRepo(t, map[string]string{"a": "1"})
	c := newCache(t)
	if got, err := c.DefaultBranch(ctx, src); err != nil || got != "main" {
		t.Fatalf("DefaultBranch = %q, %v; want main", got, err)
	}
	run(t, src, "branch", "trunk")
	run(t, src, "symbolic-ref", "HEAD", "refs/heads/trunk")
	if got, err := c.DefaultBranch(ctx, src); err != nil || got != "trunk" {
		t.Fatalf("after the remote changed its default: %q, %v; want trunk", got, err)
	}
	mirror, _ := c.MirrorDir(src)
	if head := run(t, mirror, "symbolic-ref", "HEAD"); head != "refs/heads/trunk" {
		t.Errorf("mirror HEAD = %q, want it updated to refs/heads/trunk", head)
	}
	// With the remote gone, the mirror's record is the answer.
	if err := os.Rename(src, src+".moved"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.DefaultBranch(ctx, src); err != nil || got != "trunk" {
		t.Fatalf("offline DefaultBranch = %q, %v; want trunk", got, err)
	}
}

func TestDefaultBranchTellsANoDefaultBranchFromOtherFailures(t *testing.T) {
	tests := []struct {
		name   string
		repo   func(t *testing.T, c *Cache) string
		noneIs bool // the error wraps ErrNoDefaultBranch
	}{
		{"a detached HEAD is no default branch", func(t *testing.T, c *Cache) string {
			src := newRepo(t, map[string]string{"a": "1"})
			if err := c.Fetch(ctx, src); err != nil {
				t.Fatal(err)
			}
			sha := run(t, src, "rev-parse", "HEAD")
			run(t, src, "checkout", "--quiet", "--detach")
			mirror, _ := c.MirrorDir(src)
			run(t, mirror, "update-ref", "--no-deref", "HEAD", sha)
			return src
		}, true},
		{"a repository that can't be cloned is another failure", func(t *testing.T, c *Cache) string {
			return filepath.Join(t.TempDir(), "missing")
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t)
			got, err := c.DefaultBranch(ctx, tt.repo(t, c))
			if err == nil {
				t.Fatalf("DefaultBranch = %q, want an error", got)
			}
			if errors.Is(err, ErrNoDefaultBranch) != tt.noneIs {
				t.Fatalf("DefaultBranch error %q: errors.Is(ErrNoDefaultBranch) = %v, want %v", err, !tt.noneIs, tt.noneIs)
			}
		})
	}
}

func TestCancelledContextStopsGit(t *testing.T) {
	src := newRepo(t, map[string]string{"a": "1"})
	c := newCache(t)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err := c.Fetch(cctx, src)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := c.Prepare(cctx, src, "main"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Prepare with a cancelled context = %v, want context.Canceled", err)
	}
	mirror, _ := c.MirrorDir(src)
	if _, err := os.Stat(mirror); !os.IsNotExist(err) {
		t.Errorf("a cancelled clone left a mirror behind: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(c.mirrors, ".clone-*")); len(left) != 0 {
		t.Errorf("a cancelled clone left %v", left)
	}
}

func TestCheckoutRefusesAnythingButAFullSHA(t *testing.T) {
	src := newRepo(t, map[string]string{"a": "1"})
	sha := run(t, src, "rev-parse", "HEAD")
	c := newCache(t)
	for _, bad := range []string{"main", sha[:12], "-" + sha[1:], ""} {
		if co, err := c.Checkout(ctx, src, bad); err == nil {
			co.Cleanup()
			t.Errorf("Checkout(%q) succeeded", bad)
		}
	}
	if left, _ := os.ReadDir(c.checkouts); len(left) != 0 {
		t.Errorf("refused checkouts left %v", left)
	}
}

func TestFailedCheckoutLeavesNothing(t *testing.T) {
	src := newRepo(t, map[string]string{"a": "1"})
	c := newCache(t)
	_, err := c.Checkout(ctx, src, strings.Repeat("ab", 20)) // not in the repository
	if err == nil || !strings.Contains(err.Error(), "fatal:") {
		t.Fatalf("Checkout of a missing commit = %v; want git's error", err)
	}
	if left, _ := os.ReadDir(c.checkouts); len(left) != 0 {
		t.Errorf("a failed checkout left %v", left)
	}
	if got := worktrees(t, c, src); len(got) != 0 {
		t.Errorf("a failed checkout left worktrees %q", got)
	}
}

func TestFetchRepacksWhenPacksPileUp(t *testing.T) {
	src := newRepo(t, map[string]string{"a": "1"})
	c, err := New(filepath.Join(t.TempDir(), "cache"), Options{MaxPacks: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Fetch(ctx, src); err != nil {
		t.Fatal(err)
	}
	// More objects than git's unpack limit arrive as a second pack.
	files := map[string]string{}
	for i := range 150 {
		files[fmt.Sprintf("f/%03d", i)] = fmt.Sprintf("content %d\n", i)
	}
	want := commit(t, src, files, "many files")
	if err := c.Fetch(ctx, src); err != nil {
		t.Fatal(err)
	}
	mirror, _ := c.MirrorDir(src)
	packs, _ := filepath.Glob(filepath.Join(mirror, "objects", "pack", "*.pack"))
	if len(packs) != 1 {
		t.Errorf("mirror has %d packs after a fetch with MaxPacks 1, want 1", len(packs))
	}
	if got, err := c.Resolve(ctx, src, "main"); err != nil || got != want {
		t.Errorf("after repack Resolve = %q, %v", got, err)
	}
}

func TestSweepRemovesLeftoversOnly(t *testing.T) {
	src := newRepo(t, map[string]string{"a": "1"})
	sha := run(t, src, "rev-parse", "HEAD")
	c := newCache(t)
	live, err := c.Checkout(ctx, src, sha)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Cleanup()
	// A checkout from a process that crashed: its directory and worktree
	// entry are still there, this Cache never heard of it.
	other, err := New(c.Dir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	crashed, err := other.Checkout(ctx, src, sha)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Sweep(ctx); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if _, err := os.Stat(crashed.Dir); !os.IsNotExist(err) {
		t.Errorf("leftover checkout still there")
	}
	if _, err := os.Stat(filepath.Join(live.Dir, "a")); err != nil {
		t.Errorf("Sweep removed a live checkout: %v", err)
	}
	if got := worktrees(t, c, src); len(got) != 1 {
		t.Errorf("worktrees after Sweep = %q, want the live one only", got)
	}
}

func TestNormalize(t *testing.T) {
	wd, _ := os.Getwd()
	tests := []struct {
		name, in, want, wantErr string
	}{
		{"an absolute path stays", "/srv/git/x", "/srv/git/x", ""},
		{"a relative path becomes absolute", "repos/x", filepath.Join(wd, "repos/x"), ""},
		{"an https URL stays", "https://github.com/o/r.git", "https://github.com/o/r.git", ""},
		{"an scp-like address stays", "git@github.com:o/r.git", "git@github.com:o/r.git", ""},
		{"a transport address stays, for git to refuse", "ext::sh", "ext::sh", ""},
		{"an empty repository is refused", "", "", "no repository"},
		{"a leading dash is refused", "-x", "", `starts with "-"`},
		{"a newline is refused", "a\nb", "", "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := normalize(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("normalize(%q) = %q, %v", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

// BenchmarkCheckoutWarm5000Files measures what a repeat deployment of a
// 5,000-file repository costs in the workspace: fetch (nothing new),
// resolve the branch, check out the exact SHA, clean up. It runs with the
// checkouts on the cache's own file system, and on tmpfs (/dev/shm) when
// there is one: on ext4, creating files shortly after as many were deleted
// is slow (the inode allocator skips recently deleted inodes one by one), so
// back-to-back deployments are much faster with Options.CheckoutDir on a
// tmpfs.
func BenchmarkCheckoutWarm5000Files(b *testing.B) {
	src := fastImportRepo(b, 5000)
	b.Run("checkouts=cache-dir", func(b *testing.B) {
		benchmarkCheckoutWarm(b, src, newCache(b))
	})
	b.Run("checkouts=tmpfs", func(b *testing.B) {
		if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
			b.Skip("no /dev/shm")
		}
		shm, err := os.MkdirTemp("/dev/shm", "chima-bench-")
		if err != nil {
			b.Skip(err)
		}
		b.Cleanup(func() { os.RemoveAll(shm) })
		c, err := New(filepath.Join(b.TempDir(), "cache"), Options{CheckoutDir: shm})
		if err != nil {
			b.Fatal(err)
		}
		benchmarkCheckoutWarm(b, src, c)
	})
}

func benchmarkCheckoutWarm(b *testing.B, src string, c *Cache) {
	co, err := c.Prepare(ctx, src, "main") // warm the mirror
	if err != nil {
		b.Fatal(err)
	}
	if n := countFiles(b, co.Dir); n != 5000 {
		b.Fatalf("checkout has %d files, want 5000", n)
	}
	if err := co.Cleanup(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		co, err := c.Prepare(ctx, src, "main")
		if err != nil {
			b.Fatal(err)
		}
		if !validate.IsFullSHA(co.SHA) {
			b.Fatal("no SHA")
		}
		if err := co.Cleanup(); err != nil {
			b.Fatal(err)
		}
	}
}

func countFiles(tb testing.TB, dir string) int {
	tb.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" { // a file in a worktree
			return nil
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestCancelledCheckoutLeavesTheMirrorUsable cancels checkouts at every
// moment of their life; the mirror must keep fetching and checking out.
func TestCancelledCheckoutLeavesTheMirrorUsable(t *testing.T) {
	requireGit(t)
	repo := newRepo(t, map[string]string{"a.txt": "a\n"})
	c := newCache(t)
	sha, err := c.Resolve(context.Background(), repo, "main")
	if err != nil {
		if err := c.Fetch(context.Background(), repo); err != nil {
			t.Fatal(err)
		}
		if sha, err = c.Resolve(context.Background(), repo, "main"); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			time.Sleep(time.Duration(i) * time.Millisecond)
			cancel()
		}()
		if co, err := c.Checkout(ctx, repo, sha); err == nil {
			if err := co.Cleanup(); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		if err := c.Fetch(context.Background(), repo); err != nil {
			t.Fatalf("after a checkout cancelled at %dms, fetch fails: %v", i, err)
		}
	}
	co, err := c.Prepare(context.Background(), repo, "main")
	if err != nil {
		t.Fatalf("after cancelled checkouts: %v", err)
	}
	if err := co.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if wt := worktrees(t, c, repo); len(wt) != 0 {
		t.Fatalf("worktree entries left: %v", wt)
	}
}

func TestCredentialsAreAskedForEachCommandThatReachesTheRemote(t *testing.T) {
	src := newRepo(t, map[string]string{"README": "one\n"})
	// The remote answers only through the rewrite the credentials give,
	// as a private repository answers only with a token.
	const remote = "file:///nonexistent/upstream.git"
	var mu sync.Mutex
	var asked []string
	var refuse error
	c, err := New(filepath.Join(t.TempDir(), "cache"), Options{Credentials: func(_ context.Context, repoURL string) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, repoURL)
		if refuse != nil {
			return nil, refuse
		}
		return []string{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=url.file://" + src + ".insteadOf", "GIT_CONFIG_VALUE_0=" + remote}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Fetch(ctx, remote); err != nil {
		t.Fatalf("clone with the credentials: %v", err)
	}
	commit(t, src, map[string]string{"README": "two\n"}, "two")
	if err := c.Fetch(ctx, remote); err != nil {
		t.Fatalf("fetch with the credentials: %v", err)
	}
	if sha, err := c.Resolve(ctx, remote, "main"); err != nil || sha != run(t, src, "rev-parse", "HEAD") {
		t.Fatalf("Resolve after the fetch = %q, %v", sha, err)
	}
	run(t, src, "branch", "trunk")
	run(t, src, "symbolic-ref", "HEAD", "refs/heads/trunk")
	if got, err := c.DefaultBranch(ctx, remote); err != nil || got != "trunk" {
		t.Fatalf("DefaultBranch = %q, %v; want the remote's, trunk", got, err)
	}
	if len(asked) != 3 || asked[0] != remote {
		t.Errorf("credentials asked %d times (%q); want once each for the clone, the fetch and ls-remote, not for local commands", len(asked), asked)
	}

	refuse = errors.New("no token today")
	err = c.Fetch(ctx, remote)
	if err == nil || !strings.Contains(err.Error(), "credentials for "+remote+": no token today") {
		t.Fatalf("Fetch with refused credentials = %v", err)
	}
}
