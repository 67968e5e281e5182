package chat

import (
	"reflect"
	"strings"
	"testing"
	"unicode"
)

func TestParseMarkup(t *testing.T) {
	para := func(spans ...Span) Block { return Block{Kind: Paragraph, Spans: spans} }
	text := func(s string) Span { return Span{Text: s} }
	tests := []struct {
		name string
		in   string
		want []Block
	}{
		{"empty text has no blocks", "", nil},
		{"plain text is one paragraph", "hello world", []Block{para(text("hello world"))}},
		{"bold", "a **b** c", []Block{para(text("a "), Span{Text: "b", Style: Bold}, text(" c"))}},
		{"italic with underscores", "_b_", []Block{para(Span{Text: "b", Style: Italic})}},
		{"italic with stars", "x *b* y", []Block{para(text("x "), Span{Text: "b", Style: Italic}, text(" y"))}},
		{"bold and italic combine", "***b***", []Block{para(Span{Text: "b", Style: Bold | Italic})}},
		{"italic inside bold", "**a _b_ c**", []Block{para(Span{Text: "a ", Style: Bold}, Span{Text: "b", Style: Bold | Italic}, Span{Text: " c", Style: Bold})}},
		{"stars between digits stay literal", "2*3*4", []Block{para(text("2*3*4"))}},
		{"underscores inside a word stay literal", "snake_case_names", []Block{para(text("snake_case_names"))}},
		{"an unclosed marker stays literal", "**bold", []Block{para(text("**bold"))}},
		{"a marker before a space does not open", "a * b * c", []Block{para(text("a * b * c"))}},
		{"leftover markers stay literal", "***a*", []Block{para(text("**"), Span{Text: "a", Style: Italic})}},
		{"code span", "run `make test` now", []Block{para(text("run "), Span{Text: "make test", Style: Code}, text(" now"))}},
		{"code spans take no markup", "`**x** _y_ [a](https://b)`", []Block{para(Span{Text: "**x** _y_ [a](https://b)", Style: Code})}},
		{"double backticks hold a backtick", "`` a`b ``", []Block{para(Span{Text: "a`b", Style: Code})}},
		{"an unclosed backtick stays literal", "a ` b", []Block{para(text("a ` b"))}},
		{"code inside bold", "**`x`**", []Block{para(Span{Text: "x", Style: Bold | Code})}},
		{"link", "see [the log](https://ci.example.com/1) now", []Block{para(text("see "), Span{Text: "the log", URL: "https://ci.example.com/1"}, text(" now"))}},
		{"link text markup is flattened", "[**log**](https://x.io)", []Block{para(Span{Text: "log", URL: "https://x.io"})}},
		{"bold link", "**[log](https://x.io)**", []Block{para(Span{Text: "log", URL: "https://x.io", Style: Bold})}},
		{"link with parentheses in the URL", "[w](https://en.wikipedia.org/wiki/Go_(language))", []Block{para(Span{Text: "w", URL: "https://en.wikipedia.org/wiki/Go_(language)"})}},
		{"a link without a web URL stays literal", "[a](javascript:alert(1))", []Block{para(text("[a](javascript:alert(1))"))}},
		{"brackets without a URL stay literal", "[WIP] fix", []Block{para(text("[WIP] fix"))}},
		{"bare URL keeps its underscores", "at https://x.io/a_b_c/d?e_f=1.", []Block{para(text("at "), Span{Text: "https://x.io/a_b_c/d?e_f=1", URL: "https://x.io/a_b_c/d?e_f=1"}, text("."))}},
		{"bare URL in parentheses", "(https://x.io/a)", []Block{para(text("("), Span{Text: "https://x.io/a", URL: "https://x.io/a"}, text(")"))}},
		{"italic bare URL", "_https://x.io/a_b_", []Block{para(Span{Text: "https://x.io/a_b", URL: "https://x.io/a_b", Style: Italic})}},
		{"a scheme alone is text", "https:// and xhttps://a", []Block{para(text("https:// and xhttps://a"))}},
		{"escaped markers are literal", `\*not\* \_it\_ \` + "`x`", []Block{para(text("*not* _it_ `x`"))}},
		{"a backslash before a letter stays", `C:\temp`, []Block{para(text(`C:\temp`))}},
		{"paragraphs keep line breaks", "one\ntwo\n\nthree", []Block{para(text("one\ntwo")), para(text("three"))}},
		{"emphasis spans lines", "_a\nb_", []Block{para(Span{Text: "a\nb", Style: Italic})}},
		{"list items", "Hosts:\n- web-1\n* **web-2**", []Block{
			para(text("Hosts:")),
			{Kind: ListItem, Spans: []Span{text("web-1")}},
			{Kind: ListItem, Spans: []Span{{Text: "web-2", Style: Bold}}},
		}},
		{"a list item continues on indented lines", "- one\n  more\nnext", []Block{
			{Kind: ListItem, Spans: []Span{text("one\nmore")}},
			para(text("next")),
		}},
		{"ordered items keep their numbers", "1. build\n2. test\n10. ship", []Block{
			{Kind: OrderedItem, Number: 1, Spans: []Span{text("build")}},
			{Kind: OrderedItem, Number: 2, Spans: []Span{text("test")}},
			{Kind: OrderedItem, Number: 10, Spans: []Span{text("ship")}},
		}},
		{"a number without a space after the dot is text", "3.14 is pi", []Block{para(text("3.14 is pi"))}},
		{"a star without a space is not a list", "*a*", []Block{para(Span{Text: "a", Style: Italic})}},
		{"code block", "Log:\n```\n$ make **x**\nok\n```\nafter", []Block{
			para(text("Log:")),
			{Kind: CodeBlock, Code: "$ make **x**\nok"},
			para(text("after")),
		}},
		{"code block with an info string", "```go\nx := 1\n```", []Block{{Kind: CodeBlock, Lang: "go", Code: "x := 1"}}},
		{"a longer fence holds a shorter one", "````\n```\n````", []Block{{Kind: CodeBlock, Code: "```"}}},
		{"an unclosed fence is text", "```\n- a", []Block{para(text("```")), {Kind: ListItem, Spans: []Span{text("a")}}}},
		{"fences on one line are a code span", "```x```", []Block{para(Span{Text: "x", Style: Code})}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseMarkup(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseMarkup(%q)\n got %#v\nwant %#v", tc.in, got, tc.want)
			}
		})
	}
}

func TestPlainMarkup(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain text is unchanged", "hello\nworld", "hello\nworld"},
		{"markers are dropped", "**Deploy** of `x` is _done_", "Deploy of x is done"},
		{"literal markers stay", "2*3*4 snake_case **open", "2*3*4 snake_case **open"},
		{"a link shows text and URL", "[log](https://ci.io/1)", "log (https://ci.io/1)"},
		{"a link whose text is its URL shows the URL once", "[https://ci.io](https://ci.io)", "https://ci.io"},
		{"a bare URL is unchanged", "see https://ci.io/a_b_c", "see https://ci.io/a_b_c"},
		{"list items", "Hosts:\n* a\n- b\n  c", "Hosts:\n- a\n- b\n  c"},
		{"ordered items", "1. a\n2. _b_", "1. a\n2. b"},
		{"code blocks stay fenced", "x\n```sh\n$ **make**\n```", "x\n```sh\n$ **make**\n```"},
		{"paragraphs stay apart", "a\n\n\nb", "a\n\nb"},
		{"escapes are resolved", `\*a\*`, "*a*"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := PlainMarkup(tc.in); got != tc.want {
				t.Errorf("PlainMarkup(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestEscapeMarkupKeepsTextLiteral(t *testing.T) {
	for _, s := range []string{
		"feature/**wild**_card_",
		"- not a list\n1. not ordered\n  - nor this",
		"`tick` [a](https://b) \\ back",
		"```\nnot code\n```",
		"snake_case and 2*3",
	} {
		t.Run(s, func(t *testing.T) {
			got := ParseMarkup(EscapeMarkup(s))
			var b strings.Builder
			for i, bl := range got {
				if bl.Kind != Paragraph {
					t.Fatalf("block %d of %q is a %v, want only paragraphs", i, s, bl.Kind)
				}
				for _, sp := range bl.Spans {
					// A bare URL stays a link, which shows as itself.
					if sp.Style != 0 || (sp.URL != "" && sp.URL != sp.Text) {
						t.Fatalf("escaped %q parsed with a styled span %#v", s, sp)
					}
					b.WriteString(sp.Text)
				}
			}
			want := strings.Join(strings.Fields(s), " ")
			if g := strings.Join(strings.Fields(b.String()), " "); g != want {
				t.Errorf("escaped %q reads back as %q", s, g)
			}
		})
	}
}

// FuzzParseMarkup checks that parsing never panics and that PlainMarkup keeps
// every letter and digit of the text, in order: only markers are dropped.
func FuzzParseMarkup(f *testing.F) {
	for _, s := range []string{
		"**bold** _it_ *it* `code` [t](https://u) https://x.io/a_b",
		"- a\n* b\n1. c\n```go\nx\n```", "2*3*4", "***a*", "``a`", "[a](https://x(y)", "\\*\\_",
		"_a **b_ c**", "*a _b* c_", "````\n```\n````", "01. x", "[[a](https://b)](https://c)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		blocks := ParseMarkup(s)
		for _, b := range blocks {
			for _, sp := range b.Spans {
				if sp.Text == "" && sp.URL == "" {
					t.Fatalf("empty span in %#v", blocks)
				}
			}
		}
		out := RenderPlain(blocks)
		if !subsequence(wordRunes(s), wordRunes(out)) {
			t.Fatalf("PlainMarkup(%q) = %q lost letters or digits", s, out)
		}
	})
}

func wordRunes(s string) []rune {
	var rs []rune
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			rs = append(rs, r)
		}
	}
	return rs
}

// subsequence reports whether a appears in b in order (a link shown once for
// "[url](url)" drops the copy).
func subsequence(a, b []rune) bool {
	j := 0
	for _, r := range b {
		if j < len(a) && a[j] == r {
			j++
		}
	}
	return j == len(a)
}
