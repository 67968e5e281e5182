package chat

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
//
// Anything else is text. ParseMarkup never fails: markup it cannot read
// stays as the characters that were written.

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
	// URL is set for a link; Text is then the link's text.
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
	// keeps its line breaks as "\n" in span text.
	Spans []Span
	// Number is an OrderedItem's number.
	Number int
	// Code is a CodeBlock's content, without the fences.
	Code string
}

// ParseMarkup parses marked-up text into blocks.
func ParseMarkup(s string) []Block {
	// Placeholder until the parser lands: one plain paragraph.
	if s == "" {
		return nil
	}
	return []Block{{Kind: Paragraph, Spans: []Span{{Text: s}}}}
}

// PlainMarkup renders marked-up text as plain text, for services that show
// nothing else: markers are dropped, links become "text (url)".
func PlainMarkup(s string) string { return s }
