// Package testplugins builds the fixture plugins that core's tests run as
// real processes through go-plugin: crashy (misbehaves on demand) and v2
// (speaks a protocol version the host does not).
package testplugins

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

var (
	mu    sync.Mutex
	dir   string
	built = map[string]string{}
)

// Build compiles the named fixture (crashy, v2) or any main package path
// relative to the module root (examples/hello), once per test process, and
// returns the binary's path.
func Build(name string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[name]; ok {
		return p, nil
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "chima-testplugins-")
		if err != nil {
			return "", err
		}
		dir = d
	}
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..", "..")
	pkg := "./" + filepath.ToSlash(name)
	if _, err := os.Stat(filepath.Join(filepath.Dir(self), name)); err == nil {
		pkg = "./core/internal/testplugins/" + name
	}
	out := filepath.Join(dir, filepath.Base(name))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v\n%s", name, err, b)
	}
	built[name] = out
	return out, nil
}

// Cleanup removes the built binaries; call it from TestMain after m.Run.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
		dir, built = "", map[string]string{}
	}
}
