package chattest

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chimaops/chima/core/chat"
)

// update makes the golden-render test rewrite the golden files instead of
// comparing with them: go test ./adapters/slack/... -args -chattest.update
var update = flag.Bool("chattest.update", false, "rewrite the golden renders of chattest.RunConformance")

// GoldenCase is one output of the golden-render test.
type GoldenCase struct {
	// Name names the case's file, <Harness.Golden>/<Name>.golden.
	Name string
	Out  chat.Output
}

// GoldenCases returns the outputs the golden-render test sends, in order:
// what each adapter's rendering is pinned by.
func GoldenCases() []GoldenCase {
	var list strings.Builder
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&list, "%d. item %02d of a long list\n", i, i)
	}
	return []GoldenCase{
		{"title-and-markup", chat.Output{
			Title:  "Deploy finished",
			Text:   "**project-x** is live on _edge_: see [the log](https://ci.example.com/build/1) or https://edge.example.com, tag `v1.2.3`\n\n- first item\n- second *item*",
			Status: "good",
		}},
		{"fields", chat.Output{
			Text: "Deploy status",
			Fields: []chat.Field{
				{Title: "Environment", Value: "edge", Short: true},
				{Title: "Duration", Value: "42s", Short: true},
				{Title: "Commit", Value: "`abc1234` **fix** the thing"},
			},
		}},
		{"code", chat.Output{
			Text: "Output of the last step:",
			Code: "step 1 ok\nstep 2 <ok> & \"done\"\n",
		}},
		{"buttons", chat.Output{
			Text: "Roll back project-x on edge?",
			Buttons: []chat.Button{
				{Label: "Roll back", Style: "danger", Command: "chima rollback project-x edge", ActionID: "chima.cmd:1", Value: "tok-rollback"},
				{Label: "Keep", Style: "primary", ActionID: "chima.plugin:deploy:keep", Value: `{"env":"edge"}`},
				{Label: "Details", ActionID: "chima.plugin:deploy:details", Value: "v3"},
			},
		}},
		{"status-warning", chat.Output{Title: "Disk almost full", Text: "92% used on edge-1", Status: "warning"}},
		{"status-danger", chat.Output{Title: "Deploy failed", Text: "step 2 exited with 1", Status: "danger"}},
		{"status-info", chat.Output{Title: "Deploy started", Text: "project-x to edge", Status: "info"}},
		{"fallback-only", chat.Output{Fallback: "only the fallback"}},
		{"special-characters", chat.Output{Text: "a < b & c > d, 100% \"quoted\" 'single' <@U123> <!here> ü ✓"}},
		{"long-list", chat.Output{Title: "Thirty things", Text: strings.TrimSuffix(list.String(), "\n")}},
	}
}

func testGolden(t *testing.T, s *session) {
	if s.h.Golden == "" {
		t.Skip("the harness names no Golden directory")
	}
	gp, ok := s.p.(GoldenPeer)
	if !ok {
		t.Fatal("the harness names a Golden directory but the peer is not a chattest.GoldenPeer")
	}
	for _, c := range GoldenCases() {
		t.Run(c.Name, func(t *testing.T) {
			s.send(t, s.to(t, room), c.Out)
			got := gp.Raw(t, s.p.Said(t))
			file := filepath.Join(s.h.Golden, c.Name+".golden")
			if *update {
				if err := os.MkdirAll(s.h.Golden, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (go test -args -chattest.update writes the golden files)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("the service received a render that differs from %s (if the change is right, rerun with -args -chattest.update):\n--- got\n%s\n--- want\n%s", file, got, want)
			}
		})
	}
}
