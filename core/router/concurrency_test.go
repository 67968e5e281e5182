package router

import (
	"fmt"
	"sync"
	"testing"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// TestConcurrentSetPluginAndParse registers, replaces and removes plugins
// while other goroutines parse, render help and list commands. Run with
// -race. Every result must be one a consistent table could give.
func TestConcurrentSetPluginAndParse(t *testing.T) {
	r := newTestRouter(t)
	const writers, readers, rounds = 2, 6, 300
	var wg sync.WaitGroup
	errs := make(chan error, writers+readers)

	for w := range writers {
		wg.Go(func() {
			name := fmt.Sprintf("dyn%d", w)
			for i := range rounds {
				m := &pluginv1.Manifest{Commands: []*pluginv1.CommandSpec{
					{Name: name, Args: []*pluginv1.ArgSpec{{Name: "n", Type: tInt, Required: true}}},
					{Name: name + ":pat", Pattern: name + `:pat (?P<v>\d+)`, Args: []*pluginv1.ArgSpec{{Name: "v", Type: tInt}}},
				}}
				if err := r.SetPlugin(name, m); err != nil {
					errs <- err
					return
				}
				if i%3 == 0 {
					r.RemovePlugin(name)
				}
				// Replacing deploy with itself must never expose a table
				// without it.
				if err := r.SetPlugin("deploy", deployManifest()); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for g := range readers {
		wg.Go(func() {
			for i := range rounds {
				text, _ := r.Addressed(chat.Message{Text: "chima deploy project-x/main to edge"})
				if res := r.Parse(text); res.Kind != Matched || res.Args["app"] != "project-x" {
					errs <- fmt.Errorf("reader %d: deploy parsed as %+v", g, res)
					return
				}
				for _, text := range []string{fmt.Sprintf("dyn%d %d", i%writers, i), fmt.Sprintf("dyn%d:pat %d", i%writers, i)} {
					switch res := r.Parse(text); res.Kind {
					case Matched:
						if res.Plugin != fmt.Sprintf("dyn%d", i%writers) {
							errs <- fmt.Errorf("%q matched plugin %q", text, res.Plugin)
							return
						}
					case Unknown, Malformed: // removed at that moment
					default:
						errs <- fmt.Errorf("%q parsed as %v", text, res.Kind)
						return
					}
				}
				_ = r.Help("", nil)
				_ = r.Help("dyn0", nil)
				_ = r.Commands()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
