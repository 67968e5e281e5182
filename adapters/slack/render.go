package slack

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	slackgo "github.com/slack-go/slack"

	"github.com/chimaops/chima/core/chat"
)

// Block Kit's limits (https://docs.slack.dev/reference/block-kit/blocks).
const (
	maxSectionText = 3000 // characters of a section's text
	maxFieldText   = 2000 // characters of one section field
	maxFields      = 10   // fields of one section
	maxHeaderText  = 150  // characters of a header
	maxButtonText  = 75   // characters of a button's label
	maxActions     = 25   // elements of one actions block
	maxBlocks      = 50   // blocks of one message
)

// statusEmoji prefixes the title (or the text) of an Output with a status.
var statusEmoji = map[string]string{
	"good":    ":white_check_mark:",
	"warning": ":warning:",
	"danger":  ":x:",
	"info":    ":information_source:",
}

// rendered is an Output as chat.postMessage / chat.update take it: the text
// (the whole message when there are no blocks, the notification fallback
// otherwise) and the Block Kit blocks.
type rendered struct {
	Text   string          `json:"text"`
	Blocks []slackgo.Block `json:"blocks,omitempty"`
}

// options returns the MsgOptions that post r.
func (r rendered) options() []slackgo.MsgOption {
	opts := []slackgo.MsgOption{slackgo.MsgOptionText(r.Text, false)}
	if len(r.Blocks) > 0 {
		opts = append(opts, slackgo.MsgOptionBlocks(r.Blocks...))
	}
	return opts
}

// editOptions returns the MsgOptions that replace a message with r. Blocks
// are always given, empty when there are none, so that an edit of a rich
// message to plain text clears the old blocks (chat.update keeps them
// otherwise).
func (r rendered) editOptions() []slackgo.MsgOption {
	return []slackgo.MsgOption{slackgo.MsgOptionText(r.Text, false), slackgo.MsgOptionBlocks(r.Blocks...)}
}

// render turns an Output into Slack's text and Block Kit blocks. An output
// with nothing but text (or a fallback) is sent as mrkdwn text alone, as a
// person's message would be; one with a title, fields, code or buttons as
// blocks: a header, text sections of at most 3,000 characters, field
// sections of at most 10 fields, the code in ``` sections and an actions
// block of buttons.
//
// The people o mentions are written as Slack's <@U…> after the rest is
// rendered and escaped (mentionText).
func render(o chat.Output) rendered {
	r := renderOutput(o)
	if len(o.Mentions) > 0 {
		r.mention(o.MentionReplacer(mentionText))
	}
	return r
}

// MentionText is Slack's mention of a member, which pings them: <@U024BE7LH>
// (chat.Mentioner).
func (a *Adapter) MentionText(u chat.User) string { return mentionText(u) }

func mentionText(u chat.User) string {
	if u.ID == "" {
		return ""
	}
	return "<@" + u.ID + ">"
}

// mention replaces the mentions' tokens in r's text and its blocks' mrkdwn
// with replace's mentions.
func (r *rendered) mention(replace func(string) string) {
	r.Text = replace(r.Text)
	text := func(t *slackgo.TextBlockObject) {
		if t != nil && t.Type == slackgo.MarkdownType {
			t.Text = replace(t.Text)
		}
	}
	for _, b := range r.Blocks {
		switch b := b.(type) {
		case *slackgo.SectionBlock:
			text(b.Text)
			for _, f := range b.Fields {
				text(f)
			}
		case *slackgo.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if t, ok := e.(*slackgo.TextBlockObject); ok {
					text(t)
				}
			}
		}
	}
}

// renderOutput is render before the mentions are written.
func renderOutput(o chat.Output) rendered {
	emoji := statusEmoji[o.Status]
	if o.Title == "" && len(o.Fields) == 0 && o.Code == "" && len(o.Buttons) == 0 {
		var text string
		switch {
		case o.Text != "":
			text = mrkdwn(o.Text)
		default:
			text = escape(o.PlainText())
		}
		if emoji != "" && text != "" {
			text = emoji + " " + text
		}
		return rendered{Text: truncate(text, MaxText)}
	}

	var blocks []slackgo.Block
	if o.Title != "" {
		title := o.Title
		if emoji != "" {
			title = emoji + " " + title
		}
		blocks = append(blocks, slackgo.NewHeaderBlock(plain(truncate(title, maxHeaderText))))
	}
	if o.Text != "" {
		text := mrkdwn(o.Text)
		if emoji != "" && o.Title == "" {
			text = emoji + " " + text
		}
		for _, part := range split(text, maxSectionText) {
			blocks = append(blocks, section(part))
		}
	}
	blocks = append(blocks, fieldBlocks(o.Fields)...)
	if o.Code != "" {
		blocks = append(blocks, codeBlocks(o.Code)...)
	}
	for i := 0; i < len(o.Buttons); i += maxActions {
		var elems []slackgo.BlockElement
		for _, b := range o.Buttons[i:min(i+maxActions, len(o.Buttons))] {
			btn := slackgo.NewButtonBlockElement(b.ActionID, b.Value, plain(truncate(b.Label, maxButtonText)))
			switch b.Style {
			case "primary":
				btn.Style = slackgo.StylePrimary
			case "danger":
				btn.Style = slackgo.StyleDanger
			}
			elems = append(elems, btn)
		}
		blocks = append(blocks, slackgo.NewActionBlock("", elems...))
	}
	if len(blocks) > maxBlocks {
		blocks = append(blocks[:maxBlocks-1], slackgo.NewContextBlock("",
			slackgo.NewTextBlockObject(slackgo.MarkdownType, "_(message cut: too many parts)_", false, false)))
	}
	return rendered{Text: truncate(escape(fallback(o)), MaxText), Blocks: blocks}
}

// fallback is the notification text of a message with blocks: its title or
// its text in plain words.
func fallback(o chat.Output) string {
	if o.Fallback != "" {
		return o.Fallback
	}
	p := o
	p.Text = chat.PlainMarkup(o.Text)
	p.Buttons = nil // their labels are in the blocks; commands would be noise
	return p.PlainText()
}

func plain(s string) *slackgo.TextBlockObject {
	return slackgo.NewTextBlockObject(slackgo.PlainTextType, s, true, false)
}

func section(text string) *slackgo.SectionBlock {
	return slackgo.NewSectionBlock(slackgo.NewTextBlockObject(slackgo.MarkdownType, text, false, false), nil, nil)
}

// fieldBlocks renders short fields as section fields, ten to a section, and
// a long field as a section of its own.
func fieldBlocks(fields []chat.Field) []slackgo.Block {
	var blocks []slackgo.Block
	var short []*slackgo.TextBlockObject
	flush := func() {
		if len(short) > 0 {
			blocks = append(blocks, slackgo.NewSectionBlock(nil, short, nil))
			short = nil
		}
	}
	for _, f := range fields {
		text := "*" + escape(f.Title) + "*\n" + mrkdwn(f.Value)
		if !f.Short {
			flush()
			for _, part := range split(text, maxSectionText) {
				blocks = append(blocks, section(part))
			}
			continue
		}
		short = append(short, slackgo.NewTextBlockObject(slackgo.MarkdownType, truncate(text, maxFieldText), false, false))
		if len(short) == maxFields {
			flush()
		}
	}
	flush()
	return blocks
}

// codeBlocks renders code as ``` sections, split at line ends so that each
// stays within a section's limit.
func codeBlocks(code string) []slackgo.Block {
	const fences = len("```\n\n```")
	var blocks []slackgo.Block
	for _, part := range split(escape(strings.TrimRight(code, "\n")), maxSectionText-fences) {
		blocks = append(blocks, section("```\n"+part+"\n```"))
	}
	return blocks
}

// mrkdwn renders marked-up text (core/chat's Markdown subset) as Slack
// mrkdwn, escaping &, < and > in the text.
func mrkdwn(s string) string {
	var b strings.Builder
	renderBlocks(&b, chat.ParseMarkup(s))
	return b.String()
}

// renderBlocks writes parsed markup as mrkdwn: paragraphs apart by a blank
// line, list items as "• " and "3. ", code blocks fenced.
func renderBlocks(b *strings.Builder, blocks []chat.Block) {
	for i, blk := range blocks {
		if i > 0 {
			b.WriteByte('\n')
			if blk.Kind == chat.Paragraph && blocks[i-1].Kind == chat.Paragraph {
				b.WriteByte('\n')
			}
		}
		switch blk.Kind {
		case chat.CodeBlock:
			b.WriteString("```\n" + escape(strings.TrimRight(blk.Code, "\n")) + "\n```")
		case chat.ListItem:
			b.WriteString("• ")
			writeSpans(b, blk.Spans)
		case chat.OrderedItem:
			b.WriteString(strconv.Itoa(blk.Number) + ". ")
			writeSpans(b, blk.Spans)
		default:
			writeSpans(b, blk.Spans)
		}
	}
}

func writeSpans(b *strings.Builder, spans []chat.Span) {
	for _, sp := range spans {
		text := sp.Text
		if sp.URL != "" {
			u := escapeURL(sp.URL)
			if text == "" || text == sp.URL {
				text = "<" + u + ">"
			} else {
				text = "<" + u + "|" + escape(text) + ">"
			}
		} else if sp.Style&chat.Code != 0 {
			text = "`" + escape(text) + "`"
		} else {
			text = escape(text)
		}
		var open, closing string
		if sp.Style&chat.Code == 0 || sp.URL != "" {
			if sp.Style&chat.Bold != 0 {
				open, closing = open+"*", "*"+closing
			}
			if sp.Style&chat.Italic != 0 {
				open, closing = open+"_", "_"+closing
			}
		}
		if open == "" {
			b.WriteString(text)
			continue
		}
		// Slack only reads *bold* whose markers touch the words.
		core := strings.TrimFunc(text, unicode.IsSpace)
		if core == "" {
			b.WriteString(text)
			continue
		}
		lead := text[:strings.Index(text, core)]
		trail := text[len(lead)+len(core):]
		b.WriteString(lead + open + core + closing + trail)
	}
}

// escape escapes the three characters Slack reads as markup.
func escape(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	return escaper.Replace(s)
}

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// escapeURL escapes a URL for <url|text>: entities, and the '|' that would
// end it.
func escapeURL(u string) string {
	return strings.ReplaceAll(escape(u), "|", "%7C")
}

// truncate cuts s to at most n characters, ending in "…" when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimRightFunc(string(r[:n-1]), unicode.IsSpace) + "…"
}

// split cuts rendered mrkdwn into parts of at most n characters, preferring
// paragraph ends, then line ends, then spaces, and never cutting an entity
// (&amp;) or a link (<…>) in two.
func split(s string, n int) []string {
	var parts []string
	for utf8.RuneCountInString(s) > n {
		limit := byteOffset(s, n)
		cut := -1
		for _, sep := range []string{"\n\n", "\n", " "} {
			if i := strings.LastIndex(s[:limit], sep); i > 0 {
				cut = i
				break
			}
		}
		if cut < 0 {
			cut = safeCut(s, limit)
		}
		parts = append(parts, strings.TrimRight(s[:cut], " \n"))
		s = strings.TrimLeft(s[cut:], " \n")
	}
	if s != "" || len(parts) == 0 {
		parts = append(parts, s)
	}
	return parts
}

// byteOffset is the byte offset of the n-th character of s.
func byteOffset(s string, n int) int {
	i := 0
	for k := range s {
		if i == n {
			return k
		}
		i++
	}
	return len(s)
}

// safeCut moves a cut at limit back before an entity or a link it would
// split; it never returns 0.
func safeCut(s string, limit int) int {
	head := s[:limit]
	if i := strings.LastIndexByte(head, '<'); i > 0 && !strings.Contains(head[i:], ">") {
		return i
	}
	if i := strings.LastIndexByte(head, '&'); i > 0 && !strings.Contains(head[i:], ";") && limit-i < 8 {
		return i
	}
	return limit
}
