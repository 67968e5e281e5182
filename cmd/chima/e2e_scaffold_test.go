package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// printedPluginLines returns the chima.yaml lines `chima plugin new`
// printed: from "plugins:" to the end.
func printedPluginLines(t *testing.T, out string) string {
	t.Helper()
	i := strings.Index(out, "\nplugins:\n")
	if i < 0 {
		t.Fatalf("plugin new printed no chima.yaml lines:\n%s", out)
	}
	return out[i+1:]
}

func TestPluginNewMakesAGoPluginThatPassesItsTestAndAnswersInTheConsole(t *testing.T) {
	sdk, err := filepath.Abs("../../sdk")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "echo-back")
	out, stderr, code := chima(t, "plugin", "new", "echo-back", "--sdk", sdk, "--dir", dir)
	if code != 0 {
		t.Fatalf("plugin new: exit %d\n%s%s", code, out, stderr)
	}
	lines := printedPluginLines(t, out)
	if want := "  - name: echo-back\n    path: " + filepath.Join(dir, "echo-back") + "\n"; !strings.HasSuffix(lines, want) {
		t.Fatalf("printed lines:\n%s\nwant them to end with:\n%s", lines, want)
	}

	// Its own test passes, in its own module.
	test := exec.Command("go", "test", "-count=1", "./...")
	test.Dir = dir
	test.Env = append(os.Environ(), "GOWORK=off")
	if b, err := test.CombinedOutput(); err != nil {
		t.Fatalf("go test in the new plugin: %v\n%s", err, b)
	}

	// The printed lines, pasted into a chima.yaml with a console.
	cfgDir := t.TempDir()
	cfg := filepath.Join(cfgDir, "chima.yaml")
	yaml := fmt.Sprintf("bot:\n  name: chima\nadapters:\n  - {name: shell, type: shell, room: general, user: alice}\nstore:\n  path: %s\n%s",
		filepath.Join(cfgDir, "chima.db"), lines)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	con := startConsole(t, cfg)
	con.say(t, "chima echo-back hello there")
	con.expect(t, "You said: hello there")
}

func TestPluginNewRefusesBadNamesAndDirectoriesInUse(t *testing.T) {
	used := t.TempDir()
	if err := os.WriteFile(filepath.Join(used, "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"a name with a shell metacharacter", []string{"plugin", "new", "x;touch pwned", "--dir", filepath.Join(t.TempDir(), "x")}, 1, "use lowercase letters, digits and dashes"},
		{"an uppercase name", []string{"plugin", "new", "Hello", "--dir", filepath.Join(t.TempDir(), "x")}, 1, "use lowercase letters, digits and dashes"},
		{"a directory that is not empty", []string{"plugin", "new", "hello", "--dir", used}, 1, "already exists and is not empty"},
		{"no name", []string{"plugin", "new"}, 2, "accepts 1 arg"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, code := chima(t, c.args...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d and %q", code, out, stderr, c.code, c.want)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(used, "main.go")); err != nil || string(b) != "package main\n" {
		t.Fatalf("the directory in use was changed: %q %v", b, err)
	}
}
