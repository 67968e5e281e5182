package pyplugin_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"

	pysdk "github.com/chimaops/chima/sdk/python"
)

// scaffold lays out what `chima plugin new NAME --lang python` makes: the
// templates of cmd/chima/templates/python rendered for name (the
// interpreter of their first line is Debian's), and the
// embedded chima_plugin library beside them. It returns the directory.
func scaffold(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	tmpls, err := filepath.Glob("../../cmd/chima/templates/python/*")
	if err != nil || len(tmpls) == 0 {
		t.Fatalf("templates: %v (found %d)", err, len(tmpls))
	}
	for _, path := range tmpls {
		tmpl, err := template.ParseFiles(path)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		data := struct{ Name, Exec, Interpreter string }{name, filepath.Join(dir, "plugin.py"), python}
		if err := tmpl.Execute(&out, data); err != nil {
			t.Fatalf("render %s: %v", path, err)
		}
		if err := os.WriteFile(filepath.Join(dir, strings.TrimSuffix(filepath.Base(path), ".tmpl")), out.Bytes(), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.CopyFS(dir, pysdk.Library); err != nil {
		t.Fatalf("write chima_plugin: %v", err)
	}
	return dir
}

// TestPythonTemplateIsAWorkingPluginWithPassingTests: the scaffold's own
// tests pass as a user runs them, and the rendered plugin starts under
// go-plugin with AutoMTLS and answers its command through the Host's KV.
func TestPythonTemplateIsAWorkingPluginWithPassingTests(t *testing.T) {
	requirePythonGRPC(t)
	dir := scaffold(t, "greeter")

	cmd := exec.Command(python, "test_plugin.py", "-v")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("test_plugin.py: %v\n%s", err, out)
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "__pycache__" {
			t.Errorf("running the tests left %s", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	p := startScript(t, filepath.Join(dir, "plugin.py"))
	man := p.describe(t)
	if man.GetName() != "greeter" || len(man.GetCommands()) != 1 || man.GetCommands()[0].GetName() != "greeter" {
		t.Fatalf("manifest = %v, want plugin and command greeter", man)
	}
	for i, want := range []string{"Hello, world! (greeting number 1)", "Hello, world! (greeting number 2)"} {
		events := p.handle(t, "greeter", map[string]string{"name": "world"})
		if d := done(t, events); d.GetOutcome() != "" || events[0].GetReply().GetOutput().GetText() != want {
			t.Errorf("greeting %d: events = %v, want %q", i+1, events, want)
		}
	}
	p.host.mu.Lock()
	defer p.host.mu.Unlock()
	if got := string(p.host.kv["greetings"]); got != "2" {
		t.Errorf("the host's greetings counter = %q, want 2", got)
	}
}
