package node

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
)

func embedded(t *testing.T) []string {
	t.Helper()
	var files []string
	err := fs.WalkDir(Library, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestLibraryHoldsWhatThePackagePublishesAndNoNodeModules(t *testing.T) {
	files := embedded(t)
	raw, err := Library.ReadFile("chima-plugin/package.json")
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Main  string   `json:"main"`
		Files []string `json:"files"`
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		t.Fatalf("package.json: %v", err)
	}
	for _, want := range append([]string{pkg.Main, "package.json"}, pkg.Files...) {
		p := path.Join("chima-plugin", strings.TrimSuffix(want, "/"))
		if !slices.ContainsFunc(files, func(f string) bool { return f == p || strings.HasPrefix(f, p+"/") }) {
			t.Errorf("package.json publishes %s, which Library lacks", want)
		}
	}
	for _, f := range files {
		if strings.Contains(f, "node_modules") {
			t.Errorf("Library embeds %s", f)
		}
	}
}

func TestLibraryProtoIsTheSDKsProto(t *testing.T) {
	want, err := os.ReadFile("../proto/chima/plugin/v1/plugin.proto")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Library.ReadFile("chima-plugin/proto/chima/plugin/v1/plugin.proto")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("sdk/node/chima-plugin/proto/chima/plugin/v1/plugin.proto differs from sdk/proto's: run make proto")
	}
	for _, name := range []string{"plugin/grpc_broker.proto", "plugin/grpc_controller.proto", "plugin/grpc_stdio.proto", "grpc/health/v1/health.proto"} {
		if _, err := Library.ReadFile("chima-plugin/proto/" + name); err != nil {
			t.Errorf("Library lacks the proto the library loads: %v", err)
		}
	}
}
