package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The Go an author copies from the README, the guide and the templates of
// `chima plugin new` must work with the SDK as it is: its types are plain
// structs, so a protocol-style getter (c.User().GetPerson()) no longer
// compiles.

// docFiles are the documents whose Go an author copies, from the repository
// root.
var docFiles = []string{"README.md", "sdk/GUIDE.md"}

// staleGetter is a protobuf-style getter: the SDK's own types have none.
var staleGetter = regexp.MustCompile(`\.Get[A-Z]\w*\(\)`)

func TestDocsAndTemplatesUseNoProtocolGetters(t *testing.T) {
	files := []string{}
	for _, f := range docFiles {
		files = append(files, filepath.Join("../..", f))
	}
	err := filepath.WalkDir("templates", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := staleGetter.FindString(line); m != "" {
				t.Errorf("%s:%d: %s is a protocol getter; SDK values are plain structs (write the field): %s", f, i+1, m, strings.TrimSpace(line))
			}
		}
	}
}

// snippet is one ```go block of a document.
type snippet struct {
	file string
	line int // of the fence
	code string
}

// goSnippets returns the ```go blocks of the markdown file at path.
func goSnippets(t *testing.T, path, name string) []snippet {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []snippet
	var cur *snippet
	for i, line := range strings.Split(string(b), "\n") {
		fence := strings.TrimSpace(line)
		switch {
		case cur == nil && fence == "```go":
			cur = &snippet{file: name, line: i + 1}
		case cur != nil && fence == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.code += line + "\n"
		}
	}
	return out
}

// snippetPackages are the packages a snippet may name without an import;
// one that names another (the embedding example names core packages, and
// is compiled as examples/embed) is not compiled here.
var snippetPackages = map[string]string{
	"sdk": "github.com/chimaops/chima/sdk", "sdktest": "github.com/chimaops/chima/sdk/sdktest",
	"time": "time", "testing": "testing", "fmt": "fmt", "errors": "errors", "strings": "strings", "context": "context",
}

// snippetLocals are the variables snippets use as x.Name, which are not
// packages: the handler's c, a harness h and its res, a test's t, the
// embedded engine e.
var snippetLocals = map[string]bool{"c": true, "h": true, "res": true, "t": true, "e": true}

var (
	qualified  = regexp.MustCompile(`\b([a-z][a-z0-9]*)\.[A-Z]`)
	fieldFirst = regexp.MustCompile(`^\s*[A-Z]\w*:\s`)
)

// goFile makes snippet s a Go file of package pkg, or says why it cannot:
// a whole file stays as it is; a func is a top-level declaration; a run of
// fields (Actions: …) goes in an sdk.Plugin literal; anything else is the
// body of a func with t *testing.T and c *sdk.Context at hand.
func goFile(s snippet, pkg string) (string, error) {
	code := s.code
	if strings.HasPrefix(strings.TrimSpace(code), "package ") {
		return code, nil
	}
	imports := []string{}
	for name, path := range snippetPackages {
		imports = append(imports, fmt.Sprintf("%s %q", name, path))
	}
	for _, m := range qualified.FindAllStringSubmatch(code, -1) {
		if _, ok := snippetPackages[m[1]]; !ok && !snippetLocals[m[1]] {
			return "", fmt.Errorf("names package %s, which a scratch module of the SDK does not have", m[1])
		}
	}
	var body string
	switch {
	case strings.HasPrefix(strings.TrimSpace(code), "func "):
		body = code
	case fieldFirst.MatchString(code):
		body = "var _ = sdk.Plugin{\n" + code + "}\n"
	default:
		body = "func _(t *testing.T, c *sdk.Context) error {\n" + code + "\treturn nil\n}\n"
	}
	return fmt.Sprintf("package %s\n\nimport (\n\t%s\n)\n\nfunc plugin() *sdk.Plugin { return &sdk.Plugin{} }\n\n// %s:%d\n%s",
		pkg, strings.Join(imports, "\n\t"), s.file, s.line, body), nil
}

// TestDocSnippetsCompileAgainstTheSDK builds every ```go block of the
// README and the guide that names only the SDK and the standard library,
// each in a package of a scratch module that requires ./sdk through a
// replace (GOWORK=off, nothing downloaded), as an author's module would.
// Unused variables and imports are not errors here: a snippet shows a step,
// not a whole program.
func TestDocSnippetsCompileAgainstTheSDK(t *testing.T) {
	sdkDir, err := filepath.Abs("../../sdk")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gomod := fmt.Sprintf("module snippets\n\ngo 1.24\n\nrequire github.com/chimaops/chima/sdk v0.0.0\n\nreplace github.com/chimaops/chima/sdk => %s\n", sdkDir)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(sdkDir, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	where := map[string]snippet{}
	compiled := 0
	for _, f := range docFiles {
		for _, s := range goSnippets(t, filepath.Join("../..", f), f) {
			pkg := fmt.Sprintf("s%d", len(where))
			src, err := goFile(s, pkg)
			if err != nil {
				t.Logf("%s:%d: not compiled: %v", s.file, s.line, err)
				continue
			}
			where[pkg] = s
			if err := writeSnippet(dir, pkg, "snippet.go", src); err != nil {
				t.Fatal(err)
			}
			compiled++
		}
	}
	if compiled < 5 {
		t.Fatalf("only %d snippets to compile; the extraction is broken", compiled)
	}
	// -e: every error of a package, not the first ten.
	cmd := exec.Command("go", "build", "-gcflags=-e", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off")
	out, err := cmd.CombinedOutput()
	if err == nil {
		return
	}
	var real []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "declared and not used") || strings.Contains(line, "imported and not used") ||
			strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		pkg, _, _ := strings.Cut(strings.TrimPrefix(line, "./"), "/")
		if s, ok := where[pkg]; ok {
			line = fmt.Sprintf("%s, the block at line %d: %s", s.file, s.line, line)
		}
		real = append(real, line)
	}
	if len(real) > 0 {
		t.Errorf("doc snippets do not compile against ./sdk:\n%s", strings.Join(real, "\n"))
	}
}

func writeSnippet(dir, pkg, name, src string) error {
	if err := os.MkdirAll(filepath.Join(dir, pkg), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, pkg, name), []byte(src), 0o644)
}
