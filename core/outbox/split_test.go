package outbox

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/chimaops/chima/core/chat"
)

// fenced strips fence lines and newlines: what a split must keep whole.
func fenced(s string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		if !isFence(line) {
			b.WriteString(line)
		}
	}
	return b.String()
}

func numbered(n int, format string) string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf(format, i)
	}
	return strings.Join(lines, "\n")
}

func TestSplitText(t *testing.T) {
	cases := []struct {
		name string
		text string
		max  int
		// parts is the exact result where it matters; nil checks only
		// the invariants.
		parts []string
	}{
		{name: "a text within the limit stays whole", text: "short\ntext", max: 100, parts: []string{"short\ntext"}},
		{name: "lines are kept whole", text: "aaaa\nbbbb\ncccc", max: 9, parts: []string{"aaaa\nbbbb", "cccc"}},
		{name: "a long line is cut at a space", text: "one two three four five", max: 10, parts: []string{"one two ", "three ", "four five"}},
		{name: "a line without spaces is cut hard", text: strings.Repeat("x", 25), max: 10, parts: []string{strings.Repeat("x", 10), strings.Repeat("x", 10), strings.Repeat("x", 5)}},
		{name: "multibyte runes are never cut", text: strings.Repeat("ü✓日本🚀", 30), max: 7},
		{name: "multibyte lines", text: numbered(50, "zeile %d — ünïcødé 🚀"), max: 64},
		{
			name: "a code block cut in two is closed and reopened with its language",
			text: "before\n```go\nline 1\nline 2\nline 3\n```\nafter", max: 24,
			parts: []string{"before\n```go\nline 1\n```", "```go\nline 2\nline 3\n```", "after"},
		},
		{name: "a long code block over many parts", text: "```\n" + numbered(200, "log line %03d ✓") + "\n```", max: 100},
		{name: "a long line inside a code block", text: "```sh\n" + strings.Repeat("é", 300) + "\n```", max: 50},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parts := splitText(tc.text, tc.max)
			if tc.parts != nil && strings.Join(parts, "¶") != strings.Join(tc.parts, "¶") {
				t.Fatalf("parts = %q\nwant    %q", parts, tc.parts)
			}
			for i, p := range parts {
				if n := runes(p); n > tc.max {
					t.Errorf("part %d has %d runes, limit %d: %q", i, n, tc.max, p)
				}
				if !utf8.ValidString(p) {
					t.Errorf("part %d is cut inside a rune: %q", i, p)
				}
				if openFence(p) != "" {
					t.Errorf("part %d leaves a code block open: %q", i, p)
				}
			}
			if fenced(strings.Join(parts, "\n")) != fenced(tc.text) {
				t.Errorf("the parts lose or add text: %q", parts)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	cases := []struct {
		name      string
		out       chat.Output
		max       int
		want      string // the exact text, where it matters
		untouched bool
	}{
		{name: "an edit within the limit is left as it is", out: chat.Output{Text: "fine"}, max: 100, untouched: true},
		{name: "no limit", out: chat.Output{Text: strings.Repeat("x", 100_000)}, max: 0, untouched: true},
		{
			name: "cut at a line with a marker counting what is left out",
			out:  chat.Output{Text: numbered(20, "line %02d")}, max: 80,
			want: "line 00\nline 01\nline 02\nline 03\nline 04\n… (truncated, 120 more characters)",
		},
		{name: "multibyte text", out: chat.Output{Text: strings.Repeat("日本語🚀", 500)}, max: 100},
		{name: "the code block is closed", out: chat.Output{Title: "Deploying…", Code: numbered(500, "step %d ✓")}, max: 120},
		{name: "title and fields stay", out: chat.Output{Title: "T", Text: strings.Repeat("word ", 100), Fields: []chat.Field{{Title: "app", Value: "demo"}}}, max: 150},
		{name: "a long fallback is cut too", out: chat.Output{Text: "ok", Fallback: strings.Repeat("f", 500)}, max: 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := truncate(tc.out, tc.max)
			if tc.untouched {
				if !sameText(got, tc.out) {
					t.Fatalf("changed: %+v", got)
				}
				return
			}
			if n := size(got); n > tc.max {
				t.Fatalf("%d runes, limit %d: %q", n, tc.max, got.PlainText())
			}
			if n := runes(got.Fallback); n > tc.max {
				t.Fatalf("fallback of %d runes, limit %d", n, tc.max)
			}
			if !utf8.ValidString(got.Text) || openFence(got.Text) != "" {
				t.Fatalf("cut inside a rune or a code block left open: %q", got.Text)
			}
			if tc.want != "" && got.Text != tc.want {
				t.Fatalf("text = %q\nwant   %q", got.Text, tc.want)
			}
			if got.Title != tc.out.Title || len(got.Fields) != len(tc.out.Fields) {
				t.Fatalf("title or fields lost: %+v", got)
			}
			if runes(tc.out.Text)+runes(tc.out.Code) > tc.max && !strings.Contains(got.Text, "… (truncated, ") {
				t.Fatalf("no marker: %q", got.Text)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	buttons := []chat.Button{{Label: "Cancel", Command: "deploy cancel 8"}}
	cases := []struct {
		name string
		out  chat.Output
		max  int
		n    int // parts wanted, 0 for more than one
	}{
		{name: "a message within the limit is one", out: chat.Output{Title: "t", Text: "x", Buttons: buttons}, max: 100, n: 1},
		{name: "text with a title, fields and buttons", out: chat.Output{Title: "Deploy log", Text: numbered(100, "line %d ✓"), Fields: []chat.Field{{Title: "app", Value: "demo"}}, Buttons: buttons, Status: "good"}, max: 200},
		{name: "a code block is folded into the text as a fenced block", out: chat.Output{Text: "output:", Code: numbered(100, "$ step %d")}, max: 150},
		{name: "a huge title is folded into the text", out: chat.Output{Title: strings.Repeat("T", 300), Text: "body"}, max: 100},
		{name: "a tiny limit", out: chat.Output{Text: strings.Repeat("ab ", 50), Buttons: buttons}, max: 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parts := split(tc.out, tc.max)
			if tc.n > 0 && len(parts) != tc.n || tc.n == 0 && len(parts) < 2 {
				t.Fatalf("%d parts", len(parts))
			}
			var all []string
			for i, p := range parts {
				if n := size(p); n > tc.max {
					t.Fatalf("part %d has %d runes, limit %d: %q", i, n, tc.max, p.PlainText())
				}
				if p.Status != tc.out.Status {
					t.Fatalf("part %d lost the status", i)
				}
				if i > 0 && p.Title != "" || i < len(parts)-1 && (len(p.Fields) > 0 || len(p.Buttons) > 0) {
					t.Fatalf("part %d: the title belongs to the first part, fields and buttons to the last: %+v", i, p)
				}
				all = append(all, p.PlainText())
			}
			whole := strings.ReplaceAll(fenced(strings.Join(all, "\n")), " ", "")
			orig := strings.ReplaceAll(fenced(tc.out.PlainText()), " ", "")
			if whole != orig {
				t.Fatalf("the parts do not add up to the message:\n%q\n%q", whole, orig)
			}
		})
	}
}

// Each part of a split keeps the mentions, and no token is cut in two, so
// the adapter pings the person in whichever part their token landed in.
func TestSplitKeepsTheMentionsInEveryPart(t *testing.T) {
	const token = "chimamention0123456789abx1x"
	mentions := []chat.Mention{{Person: "alice", Placeholder: token, User: chat.User{ID: "U1"}}}
	out := chat.Output{Text: numbered(40, "line %d by "+token), Mentions: mentions}
	parts := split(out, 200)
	if len(parts) < 2 {
		t.Fatalf("%d parts, want several", len(parts))
	}
	tokens := 0
	for i, p := range parts {
		if len(p.Mentions) != 1 || p.Mentions[0] != mentions[0] {
			t.Errorf("part %d has mentions %+v, want %+v", i, p.Mentions, mentions)
		}
		tokens += strings.Count(p.Text, token)
	}
	if tokens != 40 {
		t.Errorf("the parts hold %d whole tokens, want 40", tokens)
	}
	if got := truncate(out, 200); len(got.Mentions) != 1 {
		t.Errorf("a truncated output has mentions %+v, want them kept", got.Mentions)
	}
}
