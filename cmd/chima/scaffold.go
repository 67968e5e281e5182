package main

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"go/format"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
)

// templates holds one directory per language (templates/go, …): every file
// is written into the new plugin's directory, a NAME.tmpl rendered with
// text/template as NAME, others as they are. all: keeps files such as
// __init__.py that go:embed would leave out.
//
//go:embed all:templates
var templates embed.FS

// templateDir returns the templates of lang, templates/<lang>.
func templateDir(lang string) fs.FS {
	sub, err := fs.Sub(templates, "templates/"+lang)
	if err != nil {
		panic(err) // only for a path that is not valid, never for a missing one
	}
	return sub
}

// sdkModule is the Go SDK's module path.
const sdkModule = "github.com/chimaops/chima/sdk"

// pluginNameRe is what `chima plugin new` accepts as a name: it becomes a
// directory, a binary, a Go module and a chat command as it is.
var pluginNameRe = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$`)

// scaffoldOptions are chima plugin new's inputs.
type scaffoldOptions struct {
	Name string
	Lang string
	Dir  string
	// SDK is a local Go SDK directory to build against (a replace
	// directive); empty uses the published module.
	SDK string
	// Out gets the build tools' output.
	Out io.Writer
}

// templateData is what the templates see.
type templateData struct {
	// Name is the plugin's name.
	Name string
	// SDKModule is the Go SDK's module path.
	SDKModule string
	// SDKPath is the absolute local SDK directory, or empty.
	SDKPath string
	// Exec is the absolute path of the plugin's executable.
	Exec string
	// Interpreter is the absolute path of what runs a script plugin (the
	// Python of its first line), or empty.
	Interpreter string
}

// language is how a plugin in one language is made.
type language struct {
	// Templates are the plugin's files (templateDir(lang)).
	Templates fs.FS
	// Library, when set, is the language's plugin library, copied into the
	// plugin's directory as it is (its top directory, chima_plugin/ or
	// chima-plugin/, included).
	Library fs.FS
	// Exec is the plugin's executable relative to its directory; NAME
	// stands for the plugin's name. It is made executable.
	Exec string
	// Interpreter, when set, finds what runs the plugin before its files are
	// written (templateData.Interpreter).
	Interpreter func(ctx context.Context) (string, error)
	// Build builds the plugin in its directory, or checks a script plugin
	// (its tests pass, its entry starts); nil when there is nothing to do.
	Build func(ctx context.Context, o scaffoldOptions, data *templateData, dir string) error
	// Built says what Build did, for the message at the end ("built it").
	Built string
	// Test is how to run its tests, for the message at the end;
	// INTERPRETER stands for templateData.Interpreter.
	Test string
}

func newPluginCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Work on plugins: make a new one",
	}
	cmd.AddCommand(newPluginNewCmd())
	return cmd
}

func newPluginNewCmd() *cobra.Command {
	o := scaffoldOptions{}
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Make a new plugin (Go, Python or Node) with one command and a test, build it, and print its chima.yaml entry",
		Long: `Make a new plugin NAME in DIR (default ./NAME): one command, NAME (in Go it
answers with what it was told; in Python and Node it greets, counting the
greetings in the plugin's state on the host), and a test of it; then build it
(Go) or run its tests (Python, Node) and print the entry to add under
plugins: in chima.yaml. NAME is lowercase letters, digits and dashes, starting with a
letter. DIR must not exist or be empty.

--lang picks the language: ` + strings.Join(languageNames(), ", ") + `. A Go plugin's go.mod
requires ` + sdkModule + ` from the Go module proxy; --sdk DIR (needed offline) builds against a local checkout
of the SDK instead (a replace directive), as inside the Chima repository:
chima plugin new NAME --sdk ./sdk. A Python or Node plugin gets a copy of
the library this chima carries (chima_plugin/, chima-plugin/), which speaks
its protocol version: for Python, the first python3 (on PATH, then
/usr/bin/python3) that can import grpc, google.protobuf and cryptography
runs its tests and becomes its script's first line; for Node, npm install
fetches its dependencies from the npm registry, then node --test runs.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name, o.Out = args[0], cmd.ErrOrStderr()
			if o.Dir == "" {
				o.Dir = o.Name
			}
			return newPlugin(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&o.Lang, "lang", "go", "the plugin's language: "+strings.Join(languageNames(), ", "))
	cmd.Flags().StringVar(&o.Dir, "dir", "", "where to make it (default ./NAME)")
	cmd.Flags().StringVar(&o.SDK, "sdk", "", "a local Go SDK directory to build against (Go only)")
	return cmd
}

// languageNames lists the languages, sorted.
func languageNames() []string { return slices.Sorted(maps.Keys(languages)) }

// newPlugin writes, builds and announces one plugin.
func newPlugin(ctx context.Context, o scaffoldOptions, w io.Writer) error {
	data, err := scaffold(ctx, o)
	if err != nil {
		return err
	}
	lang := languages[o.Lang]
	fmt.Fprintf(w, "Made the %s plugin %s in %s", o.Lang, o.Name, o.Dir)
	if lang.Built != "" {
		fmt.Fprint(w, " and "+lang.Built)
	}
	// The entry alone, without the plugins: key: it is pasted into a config
	// that has one already (examples/config/chima.yaml does).
	fmt.Fprintf(w, ".\nIts tests: cd %s && %s\n"+
		"To use it, add this entry under plugins: in your chima.yaml (for example examples/config/chima.yaml):\n\n"+
		"  - name: %s\n    path: %s\n\n"+
		"then start the bot with that config (chima run --config chima.yaml) and type in its console: chima %s hello\n",
		o.Dir, strings.ReplaceAll(lang.Test, "INTERPRETER", data.Interpreter), o.Name, yamlScalar(data.Exec), o.Name)
	return nil
}

// scaffold writes the plugin's files and library into o.Dir and builds it;
// it returns what the templates saw, the plugin's executable included.
func scaffold(ctx context.Context, o scaffoldOptions) (*templateData, error) {
	if !pluginNameRe.MatchString(o.Name) {
		return nil, fmt.Errorf("plugin name %q: use lowercase letters, digits and dashes, starting with a letter and not ending with a dash, at most 40 characters (it becomes a directory, a binary and a chat command)", o.Name)
	}
	lang, ok := languages[o.Lang]
	if !ok {
		return nil, fmt.Errorf("--lang %q: this chima makes plugins in %s", o.Lang, strings.Join(languageNames(), ", "))
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("--dir %s: %w", o.Dir, err)
	}
	data := templateData{Name: o.Name, SDKModule: sdkModule, Exec: filepath.Join(dir, strings.ReplaceAll(lang.Exec, "NAME", o.Name))}
	if o.SDK != "" {
		if o.Lang != "go" {
			return nil, fmt.Errorf("--sdk is the Go SDK; a %s plugin carries its library with it", o.Lang)
		}
		if data.SDKPath, err = checkSDKDir(o.SDK); err != nil {
			return nil, err
		}
	}
	if lang.Interpreter != nil {
		if data.Interpreter, err = lang.Interpreter(ctx); err != nil {
			return nil, err
		}
	}
	if err := makeEmptyDir(dir); err != nil {
		return nil, err
	}
	if err := writeTree(lang.Templates, dir, &data); err != nil {
		return nil, err
	}
	if lang.Library != nil {
		if err := writeTree(lang.Library, dir, nil); err != nil {
			return nil, err
		}
	}
	// A script is its own entry, made executable before Build starts it; a
	// binary comes out of Build executable.
	if err := os.Chmod(data.Exec, 0o755); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("make %s executable: %w", data.Exec, err)
	}
	if lang.Build != nil {
		if err := lang.Build(ctx, o, &data, dir); err != nil {
			return nil, fmt.Errorf("the files are in %s, but building failed: %w", o.Dir, err)
		}
	}
	return &data, nil
}

// checkSDKDir returns the absolute path of dir, a checkout of the Go SDK.
func checkSDKDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("--sdk %s: %w", dir, err)
	}
	b, err := os.ReadFile(filepath.Join(abs, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("--sdk %s: not the Go SDK's directory: %w", dir, err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if strings.TrimSpace(first) != "module "+sdkModule {
		return "", fmt.Errorf("--sdk %s: its go.mod is not module %s", dir, sdkModule)
	}
	return abs, nil
}

// makeEmptyDir creates dir, or accepts it when it exists and is empty:
// nothing of someone's is ever overwritten.
func makeEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", dir, err)
	case len(entries) > 0:
		return fmt.Errorf("%s already exists and is not empty; choose another --dir, or remove it", dir)
	}
	return nil
}

// writeTree copies every file of src into dir. With data, NAME.tmpl files
// are rendered into NAME, and Go sources are gofmt'ed. A file that starts
// with #! is made executable.
func writeTree(src fs.FS, dir string, data *templateData) error {
	return fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		if name, ok := strings.CutSuffix(dst, ".tmpl"); ok && data != nil {
			if b, err = render(p, b, data); err != nil {
				return err
			}
			dst = name
		}
		// A script with a #! line is runnable as it is (./test_plugin.py).
		mode := os.FileMode(0o644)
		if bytes.HasPrefix(b, []byte("#!")) {
			mode = 0o755
		}
		if err := os.WriteFile(dst, b, mode); err != nil {
			return fmt.Errorf("write %s: %w", dst, err)
		}
		return nil
	})
}

// render fills in one template; a Go source comes out gofmt'ed.
func render(name string, text []byte, data *templateData) ([]byte, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	if path.Ext(strings.TrimSuffix(name, ".tmpl")) != ".go" {
		return buf.Bytes(), nil
	}
	out, err := format.Source(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("template %s: not Go once rendered: %w", name, err)
	}
	return out, nil
}

// yamlScalar writes s as a YAML scalar: plain when that is safe, else in
// double quotes (JSON's escapes are YAML's).
func yamlScalar(s string) string {
	if regexp.MustCompile(`^[A-Za-z0-9/._-]+$`).MatchString(s) {
		return s
	}
	return fmt.Sprintf("%q", s)
}
