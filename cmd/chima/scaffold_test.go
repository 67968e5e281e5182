package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// withLanguage registers a language for one test.
func withLanguage(t *testing.T, name string, l language) {
	t.Helper()
	languages[name] = l
	t.Cleanup(func() { delete(languages, name) })
}

// scriptLanguage is a language like Python's: a template, a library to
// copy, an executable script, nothing to build.
var scriptLanguage = language{
	Templates: fstest.MapFS{
		"plugin.sh.tmpl":      {Data: []byte("#!/bin/sh\n# {{.Name}} at {{.Exec}}\n")},
		"static/keep.txt":     {Data: []byte("{{.Name}} stays as it is\n")},
		"tests/test_one.tmpl": {Data: []byte("test {{.Name}}\n")},
	},
	Library: fstest.MapFS{
		"chima_plugin/__init__.py": {Data: []byte("# the library\n")},
		"chima_plugin/serve.py":    {Data: []byte("def serve(): pass\n")},
	},
	Exec: "plugin.sh",
	Test: "sh tests/test_one",
}

func TestPluginNewRefusesNamesThatAreNotLowercaseLettersDigitsAndDashes(t *testing.T) {
	withLanguage(t, "script", scriptLanguage)
	for _, name := range []string{"", "Hello", "hello_world", "1hello", "-hello", "hello-", "hello world",
		"../escape", "a/b", "hello;rm", "$(id)", "héllo", strings.Repeat("a", 41)} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "p")
			_, err := scaffold(context.Background(), scaffoldOptions{Name: name, Lang: "script", Dir: dir, Out: io.Discard})
			if err == nil || !strings.Contains(err.Error(), "use lowercase letters, digits and dashes") {
				t.Fatalf("err = %v, want the name refused", err)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("a refused name left %s behind (%v)", dir, err)
			}
		})
	}
	for _, name := range []string{"a", "hello", "hello-world", "h2", "x-1-y", strings.Repeat("a", 40)} {
		dir := filepath.Join(t.TempDir(), "p")
		if _, err := scaffold(context.Background(), scaffoldOptions{Name: name, Lang: "script", Dir: dir, Out: io.Discard}); err != nil {
			t.Errorf("name %q: %v", name, err)
		}
	}
}

func TestPluginNewWritesTemplatesAndLibraryAndMakesTheExecutableRunnable(t *testing.T) {
	withLanguage(t, "script", scriptLanguage)
	dir := filepath.Join(t.TempDir(), "p")
	data, err := scaffold(context.Background(), scaffoldOptions{Name: "ping", Lang: "script", Dir: dir, Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	exec := data.Exec
	if exec != filepath.Join(dir, "plugin.sh") {
		t.Fatalf("executable = %s", exec)
	}
	for file, want := range map[string]string{
		"plugin.sh":                "#!/bin/sh\n# ping at " + exec + "\n",
		"static/keep.txt":          "{{.Name}} stays as it is\n",
		"tests/test_one":           "test ping\n",
		"chima_plugin/__init__.py": "# the library\n",
		"chima_plugin/serve.py":    "def serve(): pass\n",
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q (%v), want %q", file, b, err, want)
		}
	}
	if st, err := os.Stat(exec); err != nil || st.Mode().Perm()&0o111 == 0 {
		t.Fatalf("%s is not executable: %v %v", exec, st.Mode(), err)
	}
}

func TestPluginNewRefusesWhatItCannotDoBeforeWritingAnything(t *testing.T) {
	withLanguage(t, "script", scriptLanguage)
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "mine.txt"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	notSDK := t.TempDir()
	if err := os.WriteFile(filepath.Join(notSDK, "go.mod"), []byte("module example.com/other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		o    scaffoldOptions
		want string
	}{
		{"a directory that is not empty", scaffoldOptions{Name: "p", Lang: "script", Dir: full}, "already exists and is not empty"},
		{"an unknown language", scaffoldOptions{Name: "p", Lang: "cobol", Dir: filepath.Join(t.TempDir(), "p")}, `--lang "cobol": this chima makes plugins in`},
		{"--sdk for a language that carries its library", scaffoldOptions{Name: "p", Lang: "script", SDK: "../../sdk", Dir: filepath.Join(t.TempDir(), "p")}, "--sdk is the Go SDK"},
		{"--sdk that is not the SDK", scaffoldOptions{Name: "p", Lang: "go", SDK: notSDK, Dir: filepath.Join(t.TempDir(), "p")}, "is not module github.com/chimaops/chima/sdk"},
		{"--sdk that does not exist", scaffoldOptions{Name: "p", Lang: "go", SDK: filepath.Join(notSDK, "nope"), Dir: filepath.Join(t.TempDir(), "p")}, "not the Go SDK's directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.o.Out = io.Discard
			_, err := scaffold(context.Background(), c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
	if entries, _ := os.ReadDir(full); len(entries) != 1 {
		t.Fatalf("the non-empty directory was written to: %v", entries)
	}
}

func TestYAMLScalarQuotesPathsYAMLWouldMisread(t *testing.T) {
	for in, want := range map[string]string{
		"/srv/plugins/ping/ping": "/srv/plugins/ping/ping",
		"/srv/my plugins/ping":   `"/srv/my plugins/ping"`,
		"/srv/#x/ping":           `"/srv/#x/ping"`,
		`C:\plugins: "x"`:        `"C:\\plugins: \"x\""`,
	} {
		if got := yamlScalar(in); got != want {
			t.Errorf("yamlScalar(%q) = %s, want %s", in, got, want)
		}
	}
}

// checkEntry accepts only a script that explains itself and exits 1, as a
// plugin started without go-plugin's cookie does; anything else means the
// bot could not start it either.
func TestCheckEntryAcceptsOnlyAScriptThatStartsAsAPlugin(t *testing.T) {
	for _, c := range []struct {
		name, script, want string
	}{
		{"a plugin explaining itself", "#!/bin/sh\necho 'This is p, a Chima plugin. It is not meant to be run by hand' >&2\nexit 1\n", ""},
		{"a script that fails to import its library", "#!/bin/sh\necho 'ModuleNotFoundError: No module named grpc' >&2\nexit 1\n", "No module named grpc"},
		{"a script that exits 0", "#!/bin/sh\necho 'not meant to be run'\nexit 0\n", "does not start as a plugin"},
		{"an interpreter that is not there", "#!/nonexistent/python3\n", "does not start as a plugin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "plugin")
			if err := os.WriteFile(path, []byte(c.script), 0o755); err != nil {
				t.Fatal(err)
			}
			err := checkEntry(context.Background(), path)
			if c.want == "" {
				if err != nil {
					t.Fatalf("checkEntry = %v, want it accepted", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("checkEntry = %v, want an error saying %q", err, c.want)
			}
		})
	}
}

// With no Python that can import what chima_plugin needs, plugin new says
// which it tried and what to install, before it writes anything.
func TestFindPythonNamesWhatItTriedAndWhatToInstall(t *testing.T) {
	noGRPC := filepath.Join(t.TempDir(), "python3")
	if err := os.WriteFile(noGRPC, []byte("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'grpc'\" >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := pythonCandidates
	pythonCandidates = []string{"no-such-python3", noGRPC}
	t.Cleanup(func() { pythonCandidates = old })
	_, err := findPython(context.Background())
	for _, want := range []string{"no-such-python3: not found", noGRPC + ": exit status 1: ModuleNotFoundError: No module named 'grpc'", "apt-get install python3-grpcio"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("findPython = %v, want it to say %q", err, want)
		}
	}
}
