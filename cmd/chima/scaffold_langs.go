package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
)

// languages are the languages `chima plugin new` makes plugins in. Each has
// its templates in templates/<lang>/; a language whose plugins carry a
// library (Python's chima_plugin/, Node's chima-plugin/) names it here.
var languages = map[string]language{
	"go": {Templates: templateDir("go"), Exec: "NAME", Build: buildGo, Test: "go test ./..."},
	// At merge, beside sdk/python and sdk/node (import them as python and
	// node):
	//   "python": {Templates: templateDir("python"), Library: python.Library, Exec: "plugin.py", Test: "python3 -m unittest"},
	//   "node":   {Templates: templateDir("node"), Library: node.Library, Exec: "plugin.js", Test: "node --test"},
}

// buildGo resolves the new plugin's dependencies and builds its binary. A
// local SDK's go.sum seeds the plugin's, so that only what the SDK already
// pins is used. GOWORK=off: a plugin made inside the Chima repository is
// still its own module.
func buildGo(ctx context.Context, o scaffoldOptions, dir string) error {
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
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = dir
		cmd.Env = append(slices.Clone(os.Environ()), "GOWORK=off")
		cmd.Stdout, cmd.Stderr = o.Out, o.Out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go %v: %w", args, err)
		}
	}
	return nil
}
