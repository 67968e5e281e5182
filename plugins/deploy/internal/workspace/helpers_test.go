package workspace

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/chimaops/chima/sdk/sdktest"
)

// testEnv is the environment of the tests' own git commands: nothing from
// the developer's git config.
func testEnv(home string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"LC_ALL=C",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
	}
}

// run runs git in dir for a test and returns its trimmed stdout.
func run(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	return runInput(tb, dir, nil, args...)
}

func runInput(tb testing.TB, dir string, stdin []byte, args ...string) string {
	tb.Helper()
	argv := append([]string{"-c", "user.name=t", "-c", "user.email=t@e", "-c", "init.defaultBranch=main"}, args...)
	cmd := exec.Command("git", argv...)
	cmd.Dir = dir
	cmd.Env = testEnv(dir)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		tb.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

func requireGit(tb testing.TB) {
	tb.Helper()
	sdktest.NeedTool(tb, "git")
}

// newRepo makes a repository on branch main with one commit of files.
func newRepo(tb testing.TB, files map[string]string) string {
	tb.Helper()
	requireGit(tb)
	dir := filepath.Join(tb.TempDir(), "src")
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	run(tb, dir, "init", "--quiet")
	commit(tb, dir, files, "initial")
	return dir
}

// commit writes files (an empty content deletes the file) and commits them,
// returning the new commit's SHA.
func commit(tb testing.TB, dir string, files map[string]string, msg string) string {
	tb.Helper()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(dir, name)
		if files[name] == "" {
			if err := os.Remove(path); err != nil {
				tb.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(files[name]), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	run(tb, dir, "add", "-A")
	run(tb, dir, "commit", "--quiet", "--allow-empty", "-m", msg)
	return run(tb, dir, "rev-parse", "HEAD")
}

// fastImportRepo makes a repository whose main branch has one commit of n
// small files, written with git fast-import (much faster than files + add).
func fastImportRepo(tb testing.TB, n int) string {
	tb.Helper()
	requireGit(tb)
	dir := filepath.Join(tb.TempDir(), "big")
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	run(tb, dir, "init", "--quiet")
	var s bytes.Buffer
	s.WriteString("commit refs/heads/main\nmark :1\ncommitter t <t@e> 1700000000 +0000\ndata 7\ninitial\n")
	for i := 0; i < n; i++ {
		content := fmt.Sprintf("file %d\nsome content to make it a small but real file\n", i)
		fmt.Fprintf(&s, "M 100644 inline dir%02d/file%04d.txt\ndata %d\n%s\n", i%50, i, len(content), content)
	}
	s.WriteString("\n")
	runInput(tb, dir, s.Bytes(), "fast-import", "--quiet")
	run(tb, dir, "symbolic-ref", "HEAD", "refs/heads/main")
	return dir
}

func newCache(tb testing.TB) *Cache {
	tb.Helper()
	c, err := New(filepath.Join(tb.TempDir(), "cache"), Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// worktrees lists the worktree entries the mirror knows, besides itself.
func worktrees(tb testing.TB, c *Cache, repo string) []string {
	tb.Helper()
	mirror, err := c.MirrorDir(repo)
	if err != nil {
		tb.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(mirror, "worktrees"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
