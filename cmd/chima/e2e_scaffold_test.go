package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk/sdktest"
)

// printedPluginLines returns the chima.yaml entry `chima plugin new`
// printed, to go under plugins: (a blank line before and after it).
func printedPluginLines(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)under plugins: in your chima\.yaml.*\n\n((?:  .*\n)+)\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("plugin new printed no chima.yaml entry:\n%s", out)
	}
	return m[1]
}

// scaffoldGuard bounds one `chima plugin new`, which may download the
// plugin's dependencies (the Go SDK's modules, npm packages). It is a
// failure guard, never an expectation of speed.
const scaffoldGuard = 5 * time.Minute

// plugin new makes a plugin in each language that passes its own test, as
// the printed line runs it, and answers in the console once the printed
// lines are in chima.yaml. The Python and Node plugins count greetings in
// the Host service's KV: their answers come through go-plugin's broker.
func TestPluginNewMakesAPluginInEachLanguageThatPassesItsTestAndAnswersInTheConsole(t *testing.T) {
	sdk, err := filepath.Abs("../../sdk")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		lang string
		// args are the flags besides --lang and --dir.
		args []string
		// exec is the entry's file name in the plugin's directory.
		exec string
		// needs reports what is missing to make a plugin in lang.
		needs func() error
		// say is typed twice; replies are what the bot answers each time.
		say     string
		replies []string
	}{
		{"go", []string{"--sdk", sdk}, "echo-back", func() error { _, err := exec.LookPath("go"); return err },
			"chima echo-back hello there", []string{"You said: hello there", "You said: hello there"}},
		{"python", nil, "plugin.py", func() error { _, err := findPython(context.Background()); return err },
			"chima echo-back Ada", []string{"Hello, Ada! (greeting number 1)", "Hello, Ada! (greeting number 2)"}},
		{"node", nil, "plugin.js", func() error { _, err := findNode(context.Background()); return err },
			"chima echo-back Ada", []string{"Hello, Ada! (greeting number 1)", "Hello, Ada! (greeting number 2)"}},
	} {
		t.Run(c.lang, func(t *testing.T) {
			if err := c.needs(); err != nil {
				sdktest.Missing(t, "cannot make a %s plugin here: %v", c.lang, err)
			}
			dir := filepath.Join(t.TempDir(), "echo-back")
			out := pluginNew(t, append([]string{"echo-back", "--lang", c.lang, "--dir", dir}, c.args...)...)
			lines := printedPluginLines(t, out)
			if want := "  - name: echo-back\n    path: " + filepath.Join(dir, c.exec) + "\n"; lines != want {
				t.Fatalf("printed entry:\n%s\nwant:\n%s", lines, want)
			}
			if !strings.Contains(out, "type in its console: chima echo-back hello\n") {
				t.Errorf("plugin new does not say what to type in the console:\n%s", out)
			}

			// Checking the plugin left no bytecode caches beside it.
			err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err == nil && d.Name() == "__pycache__" {
					t.Errorf("plugin new left %s", path)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}

			// Its own test passes, run as the printed line says.
			testLine := regexp.MustCompile(`(?m)^Its tests: cd (.+) && (.+)$`).FindStringSubmatch(out)
			if testLine == nil || testLine[1] != dir {
				t.Fatalf("plugin new printed no line to run the tests in %s:\n%s", dir, out)
			}
			test := exec.Command("sh", "-c", testLine[2])
			test.Dir = dir
			test.Env = append(os.Environ(), "GOWORK=off", "PYTHONDONTWRITEBYTECODE=1")
			if b, err := test.CombinedOutput(); err != nil {
				t.Fatalf("%s in the new plugin: %v\n%s", testLine[2], err, b)
			}

			// The printed entry, pasted under plugins: of a chima.yaml with a console.
			cfgDir := t.TempDir()
			cfg := filepath.Join(cfgDir, "chima.yaml")
			yaml := fmt.Sprintf("bot:\n  name: chima\nadapters:\n  - {name: shell, type: shell, room: general, user: alice}\nstore:\n  path: %s\nplugins:\n%s",
				filepath.Join(cfgDir, "chima.db"), lines)
			if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			con := startConsole(t, cfg)
			for i, want := range c.replies {
				// The second answer comes after the plugin sat idle past
				// go-plugin's 5 s broker timeout; the Python and Node ones
				// count in the Host's KV, so it still reaches the Host.
				if i > 0 && c.lang != "go" && !testing.Short() {
					idle(t)
				}
				con.say(t, c.say)
				con.expect(t, want)
			}
		})
	}
}

// pluginNew runs `chima plugin new args...`, which must succeed, and
// returns what it printed on stdout.
func pluginNew(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scaffoldGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "chima"), append([]string{"plugin", "new"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("plugin new %v: %v\n%s%s", args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
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
		{"an unknown language", []string{"plugin", "new", "hello", "--lang", "cobol", "--dir", filepath.Join(t.TempDir(), "x")}, 1,
			`--lang "cobol": this chima makes plugins in go, node, python`},
		{"--sdk for a language that carries its library", []string{"plugin", "new", "hello", "--lang", "node", "--sdk", "../../sdk", "--dir", filepath.Join(t.TempDir(), "x")}, 1,
			"--sdk is the Go SDK"},
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
