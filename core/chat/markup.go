package chat

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Output.Text (and Field values) are written in a small Markdown subset,
// which each adapter renders its own way: Slack mrkdwn and Block Kit,
// Mattermost Markdown, plain text for the console and webhooks.
//
//	**bold**            bold
//	_italic_ *italic*   italic
//	`code`              inline code
//	[text](https://…)   link; a bare https:// URL is a link too
//	- item  * item      list item
//	1. item             ordered list item
//	```…```             code block (on lines of their own)
//	\*                  a literal marker (EscapeMarkup writes these)
//
// Anything else is text. ParseMarkup never fails: markup it cannot read
// stays as the characters that were written. Emphasis follows CommonMark's
// flanking rules, a little stricter: a marker inside a word is literal, for
// '*' as well as '_', so "2*3*4" and snake_case_names stay as written. Code
// spans and URLs take no markup inside.

// SpanStyle is the inline style of a Span; styles combine.
type SpanStyle uint8

// Inline styles.
const (
	Bold SpanStyle = 1 << iota
	Italic
	Code
)

// Span is a run of text with one style, or a link.
type Span struct {
	Text  string
	Style SpanStyle
	// URL is set for a link; Text is then the link's text. A bare URL in the
	// text is a link whose Text is the URL.
	URL string
}

// BlockKind says what a Block is.
type BlockKind uint8

// Block kinds.
const (
	Paragraph BlockKind = iota
	ListItem
	OrderedItem
	CodeBlock
)

// Block is one paragraph, list item or code block of marked-up text.
type Block struct {
	Kind BlockKind
	// Spans are the inline content of a paragraph or list item. A paragraph
	// keeps its line breaks as "\n" in span text, and so does a list item
	// continued on indented lines.
	Spans []Span
	// Number is an OrderedItem's number.
	Number int
	// Code is a CodeBlock's content, without the fences.
	Code string
	// Lang is a CodeBlock's info string ("go" after ```go), or "".
	Lang string
}

// ParseMarkup parses marked-up text into blocks. Blank lines separate
// paragraphs; a list item or a code fence ends a paragraph.
func ParseMarkup(s string) []Block {
	if s == "" {
		return nil
	}
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	var blocks []Block
	var para []string
	flush := func() {
		if len(para) > 0 {
			blocks = append(blocks, Block{Kind: Paragraph, Spans: parseInline(strings.Join(para, "\n"))})
			para = nil
		}
	}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if n, lang, ok := openFence(l); ok {
			if end := closeFence(lines[i+1:], n); end >= 0 {
				flush()
				blocks = append(blocks, Block{Kind: CodeBlock, Lang: lang, Code: strings.Join(lines[i+1:i+1+end], "\n")})
				i += end + 1
				continue
			}
			// An unclosed fence is text.
		}
		if kind, num, rest, ok := listItem(l); ok {
			flush()
			item := []string{rest}
			for i+1 < len(lines) && continues(lines[i+1]) {
				i++
				item = append(item, strings.TrimLeft(lines[i], " \t"))
			}
			blocks = append(blocks, Block{Kind: kind, Number: num, Spans: parseInline(strings.Join(item, "\n"))})
			continue
		}
		if strings.TrimSpace(l) == "" {
			flush()
			continue
		}
		para = append(para, l)
	}
	flush()
	return blocks
}

// openFence reports whether l opens a code block: up to three spaces, three
// or more backticks, and an info string without backticks.
func openFence(l string) (n int, lang string, ok bool) {
	t := strings.TrimLeft(l, " ")
	if len(l)-len(t) > 3 {
		return 0, "", false
	}
	for n < len(t) && t[n] == '`' {
		n++
	}
	if n < 3 || strings.Contains(t[n:], "`") {
		return 0, "", false
	}
	return n, strings.TrimSpace(t[n:]), true
}

// closeFence returns the index in lines of the fence that closes one of n
// backticks, or -1.
func closeFence(lines []string, n int) int {
	for i, l := range lines {
		t := strings.TrimLeft(l, " ")
		if len(l)-len(t) > 3 {
			continue
		}
		m := run(t, 0, '`')
		if m >= n && strings.TrimRight(t[m:], " \t") == "" {
			return i
		}
	}
	return -1
}

// listItem reports whether l is a list item: up to three spaces, then "- ",
// "* " or a number of at most nine digits followed by ". ".
func listItem(l string) (kind BlockKind, num int, rest string, ok bool) {
	t := strings.TrimLeft(l, " ")
	if len(l)-len(t) > 3 || t == "" {
		return 0, 0, "", false
	}
	if (t[0] == '-' || t[0] == '*') && (len(t) == 1 || t[1] == ' ' || t[1] == '\t') {
		if len(t) == 1 {
			return ListItem, 0, "", true
		}
		return ListItem, 0, strings.TrimLeft(t[2:], " \t"), true
	}
	d := 0
	for d < len(t) && d < 10 && t[d] >= '0' && t[d] <= '9' {
		d++
	}
	// No leading zeros, so that the number renders as it was written.
	if d == 0 || d > 9 || (d > 1 && t[0] == '0') || d >= len(t) || t[d] != '.' {
		return 0, 0, "", false
	}
	if d+1 < len(t) && t[d+1] != ' ' && t[d+1] != '\t' {
		return 0, 0, "", false
	}
	num, _ = strconv.Atoi(t[:d])
	if d+1 >= len(t) {
		return OrderedItem, num, "", true
	}
	return OrderedItem, num, strings.TrimLeft(t[d+2:], " \t"), true
}

// continues reports whether l continues the list item above it: an indented
// line that is neither blank, nor a list item, nor a fence.
func continues(l string) bool {
	if !strings.HasPrefix(l, "  ") && !strings.HasPrefix(l, "\t") {
		return false
	}
	if strings.TrimSpace(l) == "" {
		return false
	}
	if _, _, _, ok := listItem(l); ok {
		return false
	}
	_, _, ok := openFence(l)
	return !ok
}

// escapable are the characters a backslash makes literal.
const escapable = "\\`*_[]()-.!#"

// EscapeMarkup escapes s so that ParseMarkup reads it as the literal text
// it is: for user data (branch names, log lines) put into Output.Text.
func EscapeMarkup(s string) string {
	var b strings.Builder
	lineStart := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case strings.IndexByte("\\`*_[]", c) >= 0:
			b.WriteByte('\\')
		case lineStart && c == '-':
			b.WriteByte('\\')
		case lineStart && c >= '0' && c <= '9':
			// "1. " at a line's start would be a list item: escape its dot.
			j := i
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j < len(s) && s[j] == '.' {
				b.WriteString(s[i:j])
				b.WriteString("\\.")
				i = j
				lineStart = false
				continue
			}
		}
		b.WriteByte(c)
		lineStart = c == '\n' || (lineStart && c == ' ')
	}
	return b.String()
}

// token is one piece of a paragraph's inline content.
type token struct {
	kind tokenKind
	text string // text, code or link text
	url  string // links
	// Emphasis delimiter runs.
	delim              byte
	count, rem         int
	canOpen, canClose  bool
	openBold, openItal int // pairs this run opens
	closeBold, closeIt int // pairs this run closes
}

type tokenKind uint8

const (
	tokText tokenKind = iota
	tokCode
	tokLink
	tokDelim
)

// parseInline parses the inline content of one block.
func parseInline(s string) []Span {
	toks := tokenize(s)
	matchEmphasis(toks)
	var spans []Span
	var bold, ital int
	style := func() SpanStyle {
		var st SpanStyle
		if bold > 0 {
			st |= Bold
		}
		if ital > 0 {
			st |= Italic
		}
		return st
	}
	add := func(sp Span) {
		if sp.Text == "" {
			return
		}
		if n := len(spans); n > 0 && sp.URL == "" && spans[n-1].URL == "" && spans[n-1].Style == sp.Style {
			spans[n-1].Text += sp.Text
			return
		}
		spans = append(spans, sp)
	}
	for i := range toks {
		t := &toks[i]
		switch t.kind {
		case tokText:
			add(Span{Text: t.text, Style: style()})
		case tokCode:
			add(Span{Text: t.text, Style: style() | Code})
		case tokLink:
			add(Span{Text: t.text, URL: t.url, Style: style()})
		case tokDelim:
			bold -= t.closeBold
			ital -= t.closeIt
			add(Span{Text: strings.Repeat(string(t.delim), t.rem), Style: style()})
			bold += t.openBold
			ital += t.openItal
		}
	}
	return spans
}

// tokenize splits s into text, code spans, links and emphasis delimiter
// runs.
func tokenize(s string) []token {
	var toks []token
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			toks = append(toks, token{kind: tokText, text: text.String()})
			text.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && strings.IndexByte(escapable, s[i+1]) >= 0:
			text.WriteByte(s[i+1])
			i += 2
		case c == '`':
			n := run(s, i, '`')
			if end := closingTicks(s, i+n, n); end >= 0 {
				flush()
				toks = append(toks, token{kind: tokCode, text: trimCode(s[i+n : end])})
				i = end + n
				continue
			}
			text.WriteString(s[i : i+n])
			i += n
		case c == '*' || c == '_':
			n := run(s, i, c)
			open, closer := flanking(s, i, i+n)
			if !open && !closer {
				text.WriteString(s[i : i+n])
			} else {
				flush()
				toks = append(toks, token{kind: tokDelim, delim: c, count: n, rem: n, canOpen: open, canClose: closer})
			}
			i += n
		case c == '[':
			if label, url, end, ok := link(s, i); ok {
				flush()
				toks = append(toks, token{kind: tokLink, text: label, url: url})
				i = end
				continue
			}
			text.WriteByte(c)
			i++
		case c == 'h' && (i == 0 || !isWordByte(s, i)):
			if end := bareURL(s, i); end > i {
				flush()
				toks = append(toks, token{kind: tokLink, text: s[i:end], url: s[i:end]})
				i = end
				continue
			}
			text.WriteByte(c)
			i++
		default:
			text.WriteByte(c)
			i++
		}
	}
	flush()
	return toks
}

// run counts the bytes c starting at s[i].
func run(s string, i int, c byte) int {
	n := 0
	for i+n < len(s) && s[i+n] == c {
		n++
	}
	return n
}

// closingTicks returns where a run of exactly n backticks starts at or after
// from, or -1.
func closingTicks(s string, from, n int) int {
	for i := from; i < len(s); {
		if s[i] != '`' {
			i++
			continue
		}
		m := run(s, i, '`')
		if m == n {
			return i
		}
		i += m
	}
	return -1
}

// trimCode strips one space from both ends of a code span's content when it
// has one at both ends and is not all spaces, as CommonMark does, so that a
// code span in double backticks can start or end with a backtick.
func trimCode(s string) string {
	if len(s) >= 2 && s[0] == ' ' && s[len(s)-1] == ' ' && strings.Trim(s, " ") != "" {
		return s[1 : len(s)-1]
	}
	return s
}

// flanking says whether the delimiter run s[i:j] can open and close
// emphasis. It follows CommonMark's rules for '_' for both markers: a run
// inside a word (flanking on both sides) opens only after punctuation and
// closes only before it.
func flanking(s string, i, j int) (canOpen, canClose bool) {
	prev, next := ' ', ' '
	if i > 0 {
		prev, _ = utf8.DecodeLastRuneInString(s[:i])
	}
	if j < len(s) {
		next, _ = utf8.DecodeRuneInString(s[j:])
	}
	left := !unicode.IsSpace(next) && (!isPunct(next) || unicode.IsSpace(prev) || isPunct(prev))
	right := !unicode.IsSpace(prev) && (!isPunct(prev) || unicode.IsSpace(next) || isPunct(next))
	return left && (!right || isPunct(prev)), right && (!left || isPunct(next))
}

func isPunct(r rune) bool { return unicode.IsPunct(r) || unicode.IsSymbol(r) }

// isWordByte reports whether the character before s[i] is a letter or digit.
func isWordByte(s string, i int) bool {
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// link reads "[text](url)" at s[i]: the text has no brackets, the URL is
// http(s) or mailto, without white space, with balanced parentheses.
func link(s string, i int) (label, url string, end int, ok bool) {
	j := i + 1
	for j < len(s) && s[j] != ']' && s[j] != '[' {
		if s[j] == '\\' && j+1 < len(s) {
			j++
		}
		j++
	}
	if j >= len(s) || s[j] != ']' || j == i+1 || j+1 >= len(s) || s[j+1] != '(' {
		return "", "", 0, false
	}
	k, depth := j+2, 0
	for ; k < len(s); k++ {
		c := s[k]
		if c == ' ' || c == '\t' || c == '\n' || c == '<' || c == '>' {
			return "", "", 0, false
		}
		if c == '(' {
			depth++
		}
		if c == ')' {
			if depth == 0 {
				break
			}
			depth--
		}
	}
	if k >= len(s) {
		return "", "", 0, false
	}
	url = s[j+2 : k]
	if !hasScheme(url) {
		return "", "", 0, false
	}
	// The link text is inline markup of its own, flattened: a link is one
	// span.
	var b strings.Builder
	for _, sp := range parseInline(s[i+1 : j]) {
		b.WriteString(sp.Text)
	}
	return b.String(), url, k + 1, true
}

func hasScheme(u string) bool {
	for _, p := range []string{"https://", "http://", "mailto:"} {
		if len(u) > len(p) && strings.EqualFold(u[:len(p)], p) {
			return true
		}
	}
	return false
}

// bareURL returns the end of an http(s) URL starting at s[i], or i. Like
// GitHub's autolinks, trailing punctuation and an unbalanced closing
// parenthesis are not part of it.
func bareURL(s string, i int) int {
	var p int
	switch {
	case strings.HasPrefix(s[i:], "https://"):
		p = 8
	case strings.HasPrefix(s[i:], "http://"):
		p = 7
	default:
		return i
	}
	j := i + p
	for j < len(s) {
		c := s[j]
		if c <= ' ' || c == '<' || c == '>' || c == '"' || c == '`' || c == '\\' || c == 0x7f {
			break
		}
		j++
	}
	for j > i+p {
		c := s[j-1]
		if strings.IndexByte(".,:;!?'*_~", c) >= 0 {
			j--
			continue
		}
		if c == ')' && strings.Count(s[i:j], "(") < strings.Count(s[i:j], ")") {
			j--
			continue
		}
		break
	}
	if j == i+p {
		return i
	}
	return j
}

// matchEmphasis pairs delimiter runs into bold and italic, as CommonMark's
// "process emphasis" does: each closer takes the nearest opener of its
// character, bold when both have two to give, and openers in between are
// dropped.
func matchEmphasis(toks []token) {
	var stack []int // indices of delimiter runs that may still open
	// bottom bounds the search per (character, closer can open, count%3), so
	// that many unmatched closers do not search the stack again and again.
	var bottom [2][2][3]int
	for i := range toks {
		c := &toks[i]
		if c.kind != tokDelim {
			continue
		}
		if c.canClose {
			ci, oi, mi := 0, 0, c.count%3
			if c.delim == '_' {
				ci = 1
			}
			if c.canOpen {
				oi = 1
			}
			for c.rem > 0 {
				b := min(bottom[ci][oi][mi], len(stack))
				found := -1
				for k := len(stack) - 1; k >= b; k-- {
					o := &toks[stack[k]]
					if o.delim != c.delim || o.rem == 0 {
						continue
					}
					// CommonMark's rule of three.
					if (o.canClose || c.canOpen) && (o.count+c.count)%3 == 0 && !(o.count%3 == 0 && c.count%3 == 0) {
						continue
					}
					found = k
					break
				}
				if found < 0 {
					bottom[ci][oi][mi] = len(stack)
					break
				}
				o := &toks[stack[found]]
				if o.rem >= 2 && c.rem >= 2 {
					o.openBold++
					c.closeBold++
					o.rem -= 2
					c.rem -= 2
				} else {
					o.openItal++
					c.closeIt++
					o.rem--
					c.rem--
				}
				stack = stack[:found+1]
				if o.rem == 0 {
					stack = stack[:found]
				}
			}
		}
		if c.canOpen && c.rem > 0 {
			stack = append(stack, i)
		}
	}
}

// PlainMarkup renders marked-up text as plain text, for services that show
// nothing else: markers are dropped, links become "text (url)" (just the
// URL when the text is the URL), list items "- item" and "1. item", and code
// blocks stay fenced.
func PlainMarkup(s string) string {
	return RenderPlain(ParseMarkup(s))
}

// RenderPlain renders parsed blocks as PlainMarkup does.
func RenderPlain(blocks []Block) string {
	var b strings.Builder
	for i, bl := range blocks {
		if i > 0 {
			// Paragraphs were apart; list items and code blocks were on lines
			// of their own.
			if bl.Kind == Paragraph && blocks[i-1].Kind == Paragraph {
				b.WriteString("\n\n")
			} else {
				b.WriteString("\n")
			}
		}
		switch bl.Kind {
		case Paragraph:
			b.WriteString(PlainSpans(bl.Spans))
		case ListItem:
			b.WriteString("- ")
			b.WriteString(strings.ReplaceAll(PlainSpans(bl.Spans), "\n", "\n  "))
		case OrderedItem:
			n := strconv.Itoa(bl.Number) + ". "
			b.WriteString(n)
			b.WriteString(strings.ReplaceAll(PlainSpans(bl.Spans), "\n", "\n"+strings.Repeat(" ", len(n))))
		case CodeBlock:
			b.WriteString("```")
			b.WriteString(bl.Lang)
			b.WriteString("\n")
			if bl.Code != "" {
				b.WriteString(bl.Code)
				b.WriteString("\n")
			}
			b.WriteString("```")
		}
	}
	return b.String()
}

// PlainSpans renders inline spans as plain text.
func PlainSpans(spans []Span) string {
	var b strings.Builder
	for _, sp := range spans {
		switch {
		case sp.URL == "":
			b.WriteString(sp.Text)
		case sp.Text == sp.URL || sp.Text == "":
			b.WriteString(sp.URL)
		default:
			b.WriteString(sp.Text)
			b.WriteString(" (")
			b.WriteString(sp.URL)
			b.WriteString(")")
		}
	}
	return b.String()
}
