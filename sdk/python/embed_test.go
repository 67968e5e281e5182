package python

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLibraryHoldsThePackageAndItsGeneratedCode: what the chima binary
// writes out is the whole package, generated code included, as it is on
// disk, and no bytecode caches.
func TestLibraryHoldsThePackageAndItsGeneratedCode(t *testing.T) {
	for _, want := range []string{
		"chima_plugin/__init__.py", "chima_plugin/server.py", "chima_plugin/broker.py",
		"chima_plugin/_tls.py", "chima_plugin/host.py", "chima_plugin/testing.py",
		"chima_plugin/pb/plugin_pb2.py", "chima_plugin/pb/plugin_pb2_grpc.py",
		"chima_plugin/pb/goplugin/grpc_broker_pb2.py", "chima_plugin/pb/health/health_pb2.py",
	} {
		t.Run(want, func(t *testing.T) {
			got, err := fs.ReadFile(Library, want)
			if err != nil {
				t.Fatalf("Library lacks %s: %v", want, err)
			}
			disk, err := os.ReadFile(filepath.FromSlash(want))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(disk) {
				t.Errorf("embedded %s differs from the file", want)
			}
		})
	}
	err := fs.WalkDir(Library, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == "__pycache__" || strings.HasSuffix(path, ".pyc") {
			t.Errorf("Library holds %s: a bytecode cache, which the binary would ship; "+
				"remove it (find sdk/python -name __pycache__ -exec rm -rf {} +) and rebuild", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
