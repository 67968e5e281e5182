package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk/sdktest"
)

// orderDeployConfig writes a config whose deploy plugin deploys app demo
// from repo locally (no GitHub), to staging by default.
func orderDeployConfig(t *testing.T, repo string) string {
	t.Helper()
	cfg, _, _ := deployConfig(t, "", fmt.Sprintf(`{"demo": {"provider": "shell", "repository": %q,
		"environments": ["staging"], "default_environment": "staging"}}`, repo), nil)
	return cfg
}

// gitAddBranch adds branch name, one empty commit ahead of main, to repo.
func gitAddBranch(t *testing.T, repo, name string) {
	t.Helper()
	git := gitIn(t, repo, t.TempDir())
	git("checkout", "-q", "-b", name, "main")
	git("commit", "-q", "--allow-empty", "-m", name)
	git("checkout", "-q", "main")
}

// readLinesUntil reads the console's output lines up to and including the first
// that contains want, and returns them (a failure guard of 60s applies; it
// asserts no duration).
func (c *console) readLinesUntil(t *testing.T, want string) []string {
	t.Helper()
	got := make(chan []string, 1)
	go func() {
		var lines []string
		for c.out.Scan() {
			lines = append(lines, c.out.Text())
			if strings.Contains(c.out.Text(), want) {
				break
			}
		}
		got <- lines
	}()
	select {
	case lines := <-got:
		if len(lines) == 0 || !strings.Contains(lines[len(lines)-1], want) {
			t.Fatalf("output ended without %q:\n%s", want, strings.Join(lines, "\n"))
		}
		return lines
	case <-time.After(60 * time.Second):
		t.Fatalf("no output line with %q", want)
	}
	return nil
}

// lineIndex returns the index of the first line containing s, or -1.
func lineIndex(lines []string, s string) int {
	for i, l := range lines {
		if strings.Contains(l, s) {
			return i
		}
	}
	return -1
}

func TestDeploysPipedBackToBackGetIDsAndRunInTheOrderTheyWereSent(t *testing.T) {
	sdktest.NeedTool(t, "git")
	repo, marks, _ := gitRepo(t)
	refs := []string{"main", "v2", "v3", "v4"}
	gitAddBranch(t, repo, "v3")
	gitAddBranch(t, repo, "v4")
	c := startConsole(t, orderDeployConfig(t, repo))

	var batch strings.Builder
	for _, ref := range refs {
		fmt.Fprintf(&batch, "chima deploy demo/%s to staging\n", ref)
	}
	if _, err := c.in.Write([]byte(batch.String())); err != nil {
		t.Fatal(err)
	}
	lines := c.readLinesUntil(t, "Deployed demo/"+refs[len(refs)-1])
	transcript := strings.Join(lines, "\n")

	last := map[string]int{"queued": -1, "is deploying": -1, "Deployed": -1}
	for i, ref := range refs {
		id := i + 1
		for _, step := range []struct{ name, text string }{
			{"queued", fmt.Sprintf("Deployment #%d: demo/%s to staging queued", id, ref)},
			{"is deploying", fmt.Sprintf("is deploying demo/%s to staging (#%d)", ref, id)},
			{"Deployed", fmt.Sprintf("Deployed demo/%s (", ref)},
		} {
			at := lineIndex(lines, step.text)
			if at < 0 {
				t.Fatalf("no %q in:\n%s", step.text, transcript)
			}
			if at < last[step.name] {
				t.Fatalf("%q came before the %s line of the deploy sent before it:\n%s", step.text, step.name, transcript)
			}
			last[step.name] = at
		}
		mark, err := os.ReadFile(filepath.Join(marks, fmt.Sprint(id)))
		if err != nil || !strings.Contains(string(mark), "DEPLOY_REF="+ref+"\n") {
			t.Errorf("deployment %d ran %q (%v), want ref %s", id, mark, err, ref)
		}
	}
}
