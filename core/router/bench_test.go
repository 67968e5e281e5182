package router

import (
	"fmt"
	"testing"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// newBenchRouter is the test router plus 20 more plugins of three commands
// each, one with a pattern, so lookups and the pattern scan are realistic.
func newBenchRouter(b *testing.B) *Router {
	r := newTestRouter(b)
	for i := range 20 {
		name := fmt.Sprintf("extra%d", i)
		err := r.SetPlugin(name, &pluginv1.Manifest{Commands: []*pluginv1.CommandSpec{
			{Name: name, Args: []*pluginv1.ArgSpec{{Name: "a", Required: true}}},
			{Name: name + ":list", Args: []*pluginv1.ArgSpec{{Name: "n", Type: tInt, Default: "10"}}},
			{Name: name + ":ask", Pattern: name + ` (?:what|who) is (?P<q>.+)`, Args: []*pluginv1.ArgSpec{{Name: "q", Required: true}}},
		}})
		if err != nil {
			b.Fatal(err)
		}
	}
	return r
}

func benchParse(b *testing.B, text string) {
	r := newBenchRouter(b)
	if res := r.Parse(text); res.Kind != Matched {
		b.Fatalf("Parse(%q) = %+v", text, res)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Parse(text)
	}
}

func BenchmarkParsePositional(b *testing.B) { benchParse(b, "ci-status project-x feature-1") }

func BenchmarkParsePositionalTyped(b *testing.B) { benchParse(b, "scale web 3 90s yes large") }

func BenchmarkParsePattern(b *testing.B) { benchParse(b, "deploy project-x/feature-1 to edge") }

func BenchmarkParseUnknown(b *testing.B) {
	r := newBenchRouter(b)
	b.ReportAllocs()
	for b.Loop() {
		r.Parse("deplyo project-x to edge")
	}
}

func BenchmarkAddressed(b *testing.B) {
	r := New(Options{Name: "chima", Prefix: "!"})
	m := chat.Message{Text: "Chima: deploy project-x/feature-1 to edge"}
	if _, ok := r.Addressed(m); !ok {
		b.Fatal("not addressed")
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Addressed(m)
	}
}
