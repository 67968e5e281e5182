package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	node "github.com/chimaops/chima/sdk/node"
	python "github.com/chimaops/chima/sdk/python"
)

// languages are the languages `chima plugin new` makes plugins in. Each has
// its templates in templates/<lang>/; a language whose plugins carry a
// library (Python's chima_plugin/, Node's chima-plugin/) names it here: the
// copy in the chima binary speaks the binary's protocol version.
var languages = map[string]language{
	"go": {Templates: templateDir("go"), Exec: "NAME", Build: buildGo, Built: "built it", Test: "go test ./..."},
	"python": {Templates: templateDir("python"), Library: python.Library, Exec: "plugin.py",
		Interpreter: findPython, Build: checkPython, Built: "ran its tests", Test: "INTERPRETER -m unittest"},
	"node": {Templates: templateDir("node"), Library: node.Library, Exec: "plugin.js",
		Interpreter: findNode, Build: checkNode, Built: "installed its packages and ran its tests", Test: "node --test"},
}

// buildGo resolves the new plugin's dependencies and builds its binary. A
// local SDK's go.sum seeds the plugin's, so that only what the SDK already
// pins is used. GOWORK=off: a plugin made inside the Chima repository is
// still its own module.
func buildGo(ctx context.Context, o scaffoldOptions, _ *templateData, dir string) error {
	if _, err := exec.LookPath("go"); err != nil {
		return fmt.Errorf("go is not on PATH (Go 1.24 or later builds plugins): %w", err)
	}
	var steps [][]string
	if o.SDK != "" {
		sum, err := os.ReadFile(filepath.Join(o.SDK, "go.sum"))
		if err != nil {
			return fmt.Errorf("read the SDK's go.sum: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
			return fmt.Errorf("write go.sum: %w", err)
		}
	} else {
		steps = append(steps, []string{"get", sdkModule + "@latest"})
	}
	steps = append(steps, []string{"mod", "tidy"}, []string{"build", "-o", o.Name, "."})
	for _, args := range steps {
		if err := runIn(ctx, o, dir, []string{"GOWORK=off"}, "go", args...); err != nil {
			return err
		}
	}
	return nil
}

// pythonCandidates are the interpreters findPython tries, in order: the
// one on PATH, then the system's (Debian packages gRPC for it, where a
// pyenv or virtualenv Python often lacks it).
var pythonCandidates = []string{"python3", "/usr/bin/python3"}

// pythonProbe imports what chima_plugin needs and prints the interpreter's
// real path (not a pyenv shim's), which becomes the plugin's first line.
const pythonProbe = "import sys, grpc, google.protobuf, cryptography; print(sys.executable)"

// findPython returns the first Python 3 that can run chima_plugin.
func findPython(ctx context.Context) (string, error) {
	var tried []string
	for _, name := range pythonCandidates {
		path, err := exec.LookPath(name)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: not found", name))
			continue
		}
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, path, "-c", pythonProbe)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v: %s", path, err, lastLine(stderr.String())))
			continue
		}
		if exe := strings.TrimSpace(string(out)); filepath.IsAbs(exe) {
			return exe, nil
		}
		tried = append(tried, fmt.Sprintf("%s: no sys.executable", path))
	}
	return "", fmt.Errorf("no Python 3 here can import grpc, google.protobuf and cryptography, which chima_plugin needs "+
		"(on Debian: apt-get install python3-grpcio python3-protobuf python3-cryptography); tried %s", strings.Join(tried, "; "))
}

// checkPython runs the new plugin's tests and checks that its script starts.
func checkPython(ctx context.Context, o scaffoldOptions, data *templateData, dir string) error {
	// No __pycache__ in the new plugin's directory from this first run.
	if err := runIn(ctx, o, dir, []string{"PYTHONDONTWRITEBYTECODE=1"}, data.Interpreter, "-m", "unittest"); err != nil {
		return err
	}
	return checkEntry(ctx, data.Exec)
}

// findNode returns node's path, and checks npm is there too.
func findNode(context.Context) (string, error) {
	path, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("node is not on PATH (Node.js 20 or later runs the plugin): %w", err)
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return "", fmt.Errorf("npm is not on PATH (it installs the plugin's packages): %w", err)
	}
	return path, nil
}

// checkNode installs the new plugin's packages (chima-plugin from its own
// directory, its dependencies from the npm registry or npm's cache), runs
// its tests and checks that its script starts.
func checkNode(ctx context.Context, o scaffoldOptions, data *templateData, dir string) error {
	if err := runIn(ctx, o, dir, nil, "npm", "install", "--no-audit", "--no-fund", "--prefer-offline"); err != nil {
		return err
	}
	if err := runIn(ctx, o, dir, nil, data.Interpreter, "--test"); err != nil {
		return err
	}
	return checkEntry(ctx, data.Exec)
}

// entryGuard bounds the start of a script that checkEntry runs: it only
// imports its library and explains itself. It is a failure guard, never an
// expectation of speed.
const entryGuard = 30 * time.Second

// checkEntry starts a script plugin as the bot would, in an environment of
// PATH alone, but without go-plugin's magic cookie: a plugin that starts
// (its first line, its imports) says it is not meant to be run by hand and
// exits 1. Anything else means the bot could not start it either.
func checkEntry(ctx context.Context, script string) error {
	ctx, cancel := context.WithTimeout(ctx, entryGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, script)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 && bytes.Contains(out, []byte("not meant to be run")) {
		return nil
	}
	return fmt.Errorf("%s does not start as a plugin (%v):\n%s", script, err, out)
}

// runIn runs one build step in dir, its output to o.Out, with env added to
// this process's environment.
func runIn(ctx context.Context, o scaffoldOptions, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(slices.Clone(os.Environ()), env...)
	cmd.Stdout, cmd.Stderr = o.Out, o.Out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", filepath.Base(name), strings.Join(args, " "), err)
	}
	return nil
}

// lastLine returns the last non-empty line of s: a Python traceback's
// error.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
