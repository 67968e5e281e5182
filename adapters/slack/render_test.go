package slack

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	slackgo "github.com/slack-go/slack"

	"github.com/chimaops/chima/core/chat"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden/render")

// TestRenderGolden compares the chat.postMessage payload (text and blocks)
// of each output with testdata/golden/render/<case>.json.
func TestRenderGolden(t *testing.T) {
	long := strings.Repeat("All work and no play makes Jack a dull boy. ", 150) // ~6,600 characters
	cases := []struct {
		name string
		out  chat.Output
	}{
		{"plain-text", chat.Text("hello & welcome <everyone>")},
		{"fallback-only", chat.Output{Fallback: "only the fallback"}},
		{"status-text", chat.Output{Text: "deployed", Status: "good"}},
		{"deploy-finished", chat.Output{
			Title:  "Deploy finished",
			Text:   "project-x/main is live on edge",
			Status: "good",
			Fields: []chat.Field{{Title: "Environment", Value: "edge", Short: true}, {Title: "Duration", Value: "42s", Short: true}},
			Code:   "step 1 ok\nstep 2 ok\n",
			Buttons: []chat.Button{
				{Label: "Roll back", Command: "chima rollback project-x", Style: "danger", ActionID: "chima:b:1", Value: "rollback project-x"},
				{Label: "Open log", ActionID: "chima:b:2", Value: "log 7", Style: "primary"},
			},
		}},
		{"long-text-split", chat.Output{Title: "Log", Text: long}},
		{"many-fields", chat.Output{Title: "Status", Fields: manyFields(12)}},
		{"long-field", chat.Output{Title: "Error", Fields: []chat.Field{{Title: "Message", Value: "disk full"}, {Title: "Host", Value: "db1", Short: true}}}},
		{"danger-title", chat.Output{Title: "Deploy failed", Status: "danger", Text: "see deploy.log on host db1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := render(tc.out)
			got := indentJSON(t, r)
			path := filepath.Join("testdata", "golden", "render", tc.name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestRenderGolden -update to write it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("render differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
			}
			checkLimits(t, r)
		})
	}
}

// indentJSON renders v as indented JSON, with &, < and > left as they are
// so that Slack's own escaping reads plainly.
func indentJSON(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func manyFields(n int) []chat.Field {
	var fs []chat.Field
	for i := range n {
		fs = append(fs, chat.Field{Title: "host " + string(rune('a'+i)), Value: "ok", Short: true})
	}
	return fs
}

// checkLimits fails when a render breaks one of Block Kit's limits.
func checkLimits(t *testing.T, r rendered) {
	t.Helper()
	if n := utf8.RuneCountInString(r.Text); n > MaxText {
		t.Errorf("text has %d characters, over %d", n, MaxText)
	}
	if len(r.Blocks) > maxBlocks {
		t.Errorf("%d blocks, over %d", len(r.Blocks), maxBlocks)
	}
	for i, b := range r.Blocks {
		switch b := b.(type) {
		case *slackgo.SectionBlock:
			if b.Text != nil && utf8.RuneCountInString(b.Text.Text) > maxSectionText {
				t.Errorf("block %d: section text of %d characters, over %d", i, utf8.RuneCountInString(b.Text.Text), maxSectionText)
			}
			if len(b.Fields) > maxFields {
				t.Errorf("block %d: %d fields, over %d", i, len(b.Fields), maxFields)
			}
		case *slackgo.HeaderBlock:
			if utf8.RuneCountInString(b.Text.Text) > maxHeaderText {
				t.Errorf("block %d: header over %d characters", i, maxHeaderText)
			}
		}
	}
}

func TestRenderKeepsEveryCharacterOfLongText(t *testing.T) {
	for _, n := range []int{2999, 3000, 3001, 9000, 39000} {
		text := strings.Repeat("x", n/2) + " " + strings.Repeat("y", n-n/2-1)
		r := render(chat.Output{Title: "t", Text: text})
		checkLimits(t, r)
		var joined []string
		for _, b := range r.Blocks[1:] {
			s := b.(*slackgo.SectionBlock)
			if utf8.RuneCountInString(s.Text.Text) > maxSectionText {
				t.Errorf("%d: a section has %d characters", n, utf8.RuneCountInString(s.Text.Text))
			}
			joined = append(joined, s.Text.Text)
		}
		// Cuts fall on spaces where there are any; only those spaces go.
		if got, want := strings.ReplaceAll(strings.Join(joined, ""), " ", ""), strings.ReplaceAll(text, " ", ""); got != want {
			t.Errorf("%d characters: the sections do not add up to the text (%d characters, want %d)", n, len(got), len(want))
		}
	}
}

func TestRenderSplitsLongCodeIntoFencedSections(t *testing.T) {
	var lines []string
	for range 400 {
		lines = append(lines, "step ok: <done> & logged")
	}
	r := render(chat.Output{Title: "log", Code: strings.Join(lines, "\n")})
	checkLimits(t, r)
	var n int
	for _, b := range r.Blocks[1:] {
		s := b.(*slackgo.SectionBlock).Text.Text
		if !strings.HasPrefix(s, "```\n") || !strings.HasSuffix(s, "\n```") {
			t.Fatalf("a code section is not fenced: %.40q…", s)
		}
		body := strings.TrimSuffix(strings.TrimPrefix(s, "```\n"), "\n```")
		n += len(strings.Split(body, "\n"))
		if strings.Contains(body, "<done>") {
			t.Fatal("code is not escaped")
		}
	}
	if n != 400 {
		t.Errorf("code sections hold %d lines, want 400", n)
	}
}

func TestSplitNeverCutsAnEntityOrALink(t *testing.T) {
	s := strings.Repeat("a", 2995) + "&amp;<https://example.com|x>"
	for _, part := range split(s, 3000) {
		if strings.Count(part, "<") != strings.Count(part, ">") {
			t.Errorf("a part cuts a link: …%q", part[max(0, len(part)-20):])
		}
		if i := strings.LastIndexByte(part, '&'); i >= 0 && !strings.Contains(part[i:], ";") {
			t.Errorf("a part cuts an entity: …%q", part[max(0, len(part)-20):])
		}
	}
}

// TestMrkdwnFromMarkup renders the markup AST, whatever the parser makes of
// the text, as Slack mrkdwn.
func TestMrkdwnFromMarkup(t *testing.T) {
	cases := []struct {
		name   string
		blocks []chat.Block
		want   string
	}{
		{"bold, italic and code", []chat.Block{{Kind: chat.Paragraph, Spans: []chat.Span{
			{Text: "deploy "}, {Text: "main", Style: chat.Bold}, {Text: " to "}, {Text: "edge", Style: chat.Italic},
			{Text: " with "}, {Text: "a<b", Style: chat.Code}}}},
			"deploy *main* to _edge_ with `a&lt;b`"},
		{"markers hug the words", []chat.Block{{Kind: chat.Paragraph, Spans: []chat.Span{{Text: " bold ", Style: chat.Bold | chat.Italic}}}},
			" *_bold_* "},
		{"links", []chat.Block{{Kind: chat.Paragraph, Spans: []chat.Span{
			{Text: "the log", URL: "https://ci.example.com/1?a=1&b=2"}, {Text: " or "}, {Text: "https://x.example", URL: "https://x.example"},
			{Text: " pipe", URL: "https://x.example/a|b"}}}},
			"<https://ci.example.com/1?a=1&amp;b=2|the log> or <https://x.example><https://x.example/a%7Cb| pipe>"},
		{"lists and paragraphs", []chat.Block{
			{Kind: chat.Paragraph, Spans: []chat.Span{{Text: "Steps:"}}},
			{Kind: chat.ListItem, Spans: []chat.Span{{Text: "build"}}},
			{Kind: chat.ListItem, Spans: []chat.Span{{Text: "test"}}},
			{Kind: chat.OrderedItem, Number: 3, Spans: []chat.Span{{Text: "ship"}}},
			{Kind: chat.Paragraph, Spans: []chat.Span{{Text: "one"}}},
			{Kind: chat.Paragraph, Spans: []chat.Span{{Text: "two"}}},
			{Kind: chat.CodeBlock, Code: "x > 1\n"},
		}, "Steps:\n• build\n• test\n3. ship\none\n\ntwo\n```\nx &gt; 1\n```"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			renderBlocks(&b, tc.blocks)
			if got := b.String(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
