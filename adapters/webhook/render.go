package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"unicode/utf8"

	"github.com/chimaops/chima/core/chat"
)

// TemplateData is what a notifier's template gets.
type TemplateData struct {
	// Bot is the bot's name, Adapter the adapter's.
	Bot, Adapter string
	// Room is the notifier's name (or the hook's room); Thread the thread
	// a reply belongs in; ReplyTo the id of the inbound message it answers.
	Room, Thread, ReplyTo string
	// ID is the post's message id.
	ID string
	// Title, Code, Status and Fallback are the Output's; Text is its text
	// as plain text (markers dropped), Markup as written (Markdown).
	Title, Text, Markup, Code, Status, Fallback string
	// Plain is the whole Output as plain text: title, text, fields, code.
	Plain string
	// Color is Status as a hex colour ("#2eb886"), or "".
	Color  string
	Fields []chat.Field
	// Output is the Output itself.
	Output chat.Output
}

// templateFuncs are the functions a notifier's template may call:
//
//	json    a value as JSON: {{json .Text}} is a quoted, escaped string
//	plain   marked-up text as plain text
//	mrkdwn  marked-up text as Slack mrkdwn
//	markdown marked-up text as CommonMark
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := marshal(v)
		return string(b), err
	},
	"plain":    chat.PlainMarkup,
	"mrkdwn":   mrkdwn,
	"markdown": markdown,
}

var statusColors = map[string]string{
	"good": "#2eb886", "warning": "#daa038", "danger": "#a30200", "info": "#439fe0",
}

func (a *Adapter) templateData(ref chat.MessageRef, out chat.Output, replyTo string) TemplateData {
	return TemplateData{
		Bot: a.bot, Adapter: a.name, Room: ref.Room, Thread: ref.ThreadID, ReplyTo: replyTo, ID: ref.MessageID,
		Title: out.Title, Text: chat.PlainMarkup(out.Text), Markup: out.Text, Code: out.Code, Status: out.Status,
		Fallback: out.Fallback, Plain: plainOutput(out), Color: statusColors[out.Status], Fields: out.Fields, Output: out,
	}
}

// plainOutput is out as plain text, its markup rendered plain.
func plainOutput(out chat.Output) string {
	if out.Fallback != "" && out.Title == "" && out.Text == "" && len(out.Fields) == 0 && out.Code == "" {
		return out.Fallback
	}
	out.Fallback = ""
	out.Text = chat.PlainMarkup(out.Text)
	fields := make([]chat.Field, len(out.Fields))
	for i, f := range out.Fields {
		fields[i] = chat.Field{Title: f.Title, Value: chat.PlainMarkup(f.Value), Short: f.Short}
	}
	out.Fields = fields
	return out.PlainText()
}

// marshal is json.Marshal without HTML escaping: receivers show "<" and
// "&" as written.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// presets build a notifier's body for the services that take incoming
// webhooks.
var presets = map[string]func(TemplateData) ([]byte, error){
	"json":       jsonBody,
	"slack":      slackBody,
	"mattermost": mattermostBody,
	"discord":    discordBody,
	"teams":      teamsBody,
	"flowdock":   flowdockBody,
	"campfire":   campfireBody,
}

func presetNames() string {
	var names []string
	for n := range presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// jsonBody is the adapter's own shape, for receivers of your own.
func jsonBody(d TemplateData) ([]byte, error) {
	type field struct {
		Title string `json:"title"`
		Value string `json:"value"`
		Short bool   `json:"short,omitempty"`
	}
	fields := make([]field, len(d.Fields))
	for i, f := range d.Fields {
		fields[i] = field{f.Title, chat.PlainMarkup(f.Value), f.Short}
	}
	return marshal(struct {
		ID       string  `json:"id"`
		Bot      string  `json:"bot"`
		Room     string  `json:"room"`
		Thread   string  `json:"thread,omitempty"`
		ReplyTo  string  `json:"reply_to,omitempty"`
		Title    string  `json:"title,omitempty"`
		Text     string  `json:"text"`
		Markdown string  `json:"markdown,omitempty"`
		Fields   []field `json:"fields,omitempty"`
		Code     string  `json:"code,omitempty"`
		Status   string  `json:"status,omitempty"`
	}{d.ID, d.Bot, d.Room, d.Thread, d.ReplyTo, d.Title, d.Plain, d.Markup, fields, d.Code, d.Status})
}

// slackAttachment is a Slack (and Mattermost) message attachment.
type slackAttachment struct {
	Fallback string       `json:"fallback"`
	Color    string       `json:"color,omitempty"`
	Fields   []slackField `json:"fields,omitempty"`
	MrkdwnIn []string     `json:"mrkdwn_in,omitempty"`
}

type slackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// slackBody is a Slack incoming webhook's {"text", "attachments"}: the text
// in mrkdwn, fields and the status colour in one attachment.
// https://api.slack.com/messaging/webhooks
func slackBody(d TemplateData) ([]byte, error) {
	return marshal(slackShaped(d, mrkdwn, func(s string) string { return "*" + escapeSlack(s) + "*" }, true))
}

// mattermostBody is a Mattermost incoming webhook's {"text", "username",
// "attachments"}: Markdown text, Slack-style attachments.
// https://developers.mattermost.com/integrate/webhooks/incoming/
func mattermostBody(d TemplateData) ([]byte, error) {
	type body struct {
		Text        string            `json:"text"`
		Username    string            `json:"username,omitempty"`
		Attachments []slackAttachment `json:"attachments,omitempty"`
	}
	s := slackShaped(d, markdown, func(s string) string { return "#### " + escapeMarkdown(s) }, false)
	return marshal(body{Text: s.Text, Username: d.Bot, Attachments: s.Attachments})
}

type slackMessage struct {
	Text        string            `json:"text"`
	Attachments []slackAttachment `json:"attachments,omitempty"`
}

func slackShaped(d TemplateData, render func(string) string, title func(string) string, mrkdwnIn bool) slackMessage {
	var parts []string
	if d.Title != "" {
		parts = append(parts, title(d.Title))
	}
	if d.Markup != "" {
		parts = append(parts, render(d.Markup))
	}
	if d.Code != "" {
		parts = append(parts, "```\n"+strings.TrimRight(d.Code, "\n")+"\n```")
	}
	if len(parts) == 0 {
		parts = append(parts, render(d.Fallback))
	}
	m := slackMessage{Text: strings.Join(parts, "\n")}
	if len(d.Fields) > 0 || d.Color != "" {
		at := slackAttachment{Fallback: d.Plain, Color: d.Color}
		for _, f := range d.Fields {
			at.Fields = append(at.Fields, slackField{Title: f.Title, Value: render(f.Value), Short: f.Short})
		}
		if mrkdwnIn && len(at.Fields) > 0 {
			at.MrkdwnIn = []string{"fields"}
		}
		m.Attachments = []slackAttachment{at}
	}
	return m
}

// discordBody is a Discord webhook's {"content", "embeds"}: Markdown
// content of at most 2,000 characters, fields in an embed, and no pings.
// https://discord.com/developers/docs/resources/webhook#execute-webhook
func discordBody(d TemplateData) ([]byte, error) {
	type embedField struct {
		Name   string `json:"name"`
		Value  string `json:"value"`
		Inline bool   `json:"inline,omitempty"`
	}
	type embed struct {
		Title  string       `json:"title,omitempty"`
		Color  int          `json:"color,omitempty"`
		Fields []embedField `json:"fields,omitempty"`
	}
	var parts []string
	if d.Markup != "" {
		parts = append(parts, markdown(d.Markup))
	}
	if d.Code != "" {
		parts = append(parts, "```\n"+strings.TrimRight(d.Code, "\n")+"\n```")
	}
	if len(parts) == 0 && d.Title == "" {
		parts = append(parts, escapeMarkdown(d.Fallback))
	}
	body := struct {
		Content         string  `json:"content,omitempty"`
		Username        string  `json:"username,omitempty"`
		Embeds          []embed `json:"embeds,omitempty"`
		AllowedMentions struct {
			Parse []string `json:"parse"`
		} `json:"allowed_mentions"`
	}{Content: truncate(strings.Join(parts, "\n"), 2000), Username: d.Bot}
	body.AllowedMentions.Parse = []string{}
	if d.Title != "" || len(d.Fields) > 0 {
		e := embed{Title: truncate(d.Title, 256), Color: colorInt(d.Color)}
		for i, f := range d.Fields {
			if i == 25 {
				break
			}
			// Discord refuses empty names and values.
			name, value := f.Title, markdown(f.Value)
			if name == "" {
				name = "\u200b"
			}
			if value == "" {
				value = "\u200b"
			}
			e.Fields = append(e.Fields, embedField{Name: truncate(name, 256), Value: truncate(value, 1024), Inline: f.Short})
		}
		body.Embeds = []embed{e}
	}
	return marshal(body)
}

// teamsBody is what a Microsoft Teams incoming webhook (a Workflows "post
// to a channel when a webhook request is received" flow, or a legacy
// connector) takes: a message with one Adaptive Card attachment.
// https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
func teamsBody(d TemplateData) ([]byte, error) {
	type fact struct {
		Title string `json:"title"`
		Value string `json:"value"`
	}
	type element struct {
		Type     string `json:"type"`
		Text     string `json:"text,omitempty"`
		Weight   string `json:"weight,omitempty"`
		Size     string `json:"size,omitempty"`
		Color    string `json:"color,omitempty"`
		FontType string `json:"fontType,omitempty"`
		Wrap     bool   `json:"wrap,omitempty"`
		Facts    []fact `json:"facts,omitempty"`
	}
	colors := map[string]string{"good": "Good", "warning": "Warning", "danger": "Attention", "info": "Accent"}
	var els []element
	if d.Title != "" {
		els = append(els, element{Type: "TextBlock", Text: d.Title, Weight: "Bolder", Size: "Medium", Color: colors[d.Status], Wrap: true})
	}
	if d.Markup != "" {
		els = append(els, element{Type: "TextBlock", Text: teamsMarkdown(d.Markup), Wrap: true})
	}
	if len(d.Fields) > 0 {
		fs := element{Type: "FactSet"}
		for _, f := range d.Fields {
			fs.Facts = append(fs.Facts, fact{Title: f.Title, Value: chat.PlainMarkup(f.Value)})
		}
		els = append(els, fs)
	}
	if d.Code != "" {
		els = append(els, element{Type: "TextBlock", Text: strings.TrimRight(d.Code, "\n"), FontType: "Monospace", Wrap: true})
	}
	if len(els) == 0 {
		els = append(els, element{Type: "TextBlock", Text: d.Fallback, Wrap: true})
	}
	type card struct {
		Type    string    `json:"type"`
		Schema  string    `json:"$schema"`
		Version string    `json:"version"`
		Body    []element `json:"body"`
	}
	type attachment struct {
		ContentType string  `json:"contentType"`
		ContentURL  *string `json:"contentUrl"`
		Content     card    `json:"content"`
	}
	return marshal(struct {
		Type        string       `json:"type"`
		Summary     string       `json:"summary,omitempty"`
		Attachments []attachment `json:"attachments"`
	}{
		Type:    "message",
		Summary: truncate(firstLine(d.Plain), 150),
		Attachments: []attachment{{
			ContentType: "application/vnd.microsoft.card.adaptive",
			Content:     card{Type: "AdaptiveCard", Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Version: "1.4", Body: els},
		}},
	})
}

// flowdockBody is a Flowdock chat message ({"event": "message", "content",
// "external_user_name"}), the shape of Flowdock's messages API.
func flowdockBody(d TemplateData) ([]byte, error) {
	return marshal(struct {
		Event            string   `json:"event"`
		Content          string   `json:"content"`
		ExternalUserName string   `json:"external_user_name"`
		Tags             []string `json:"tags,omitempty"`
	}{"message", d.Plain, d.Bot, tags(d.Status)})
}

// campfireBody is a Campfire message ({"message": {"type", "body"}}): a
// PasteMessage keeps a code block's layout.
func campfireBody(d TemplateData) ([]byte, error) {
	kind := "TextMessage"
	if d.Code != "" || strings.Contains(d.Plain, "\n") {
		kind = "PasteMessage"
	}
	type message struct {
		Type string `json:"type"`
		Body string `json:"body"`
	}
	return marshal(struct {
		Message message `json:"message"`
	}{message{kind, d.Plain}})
}

func tags(status string) []string {
	if status == "" {
		return nil
	}
	return []string{status}
}

func colorInt(hex string) int {
	if hex == "" {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimPrefix(hex, "#"), 16, 32)
	return int(n)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// truncate cuts s to n characters, ending with "…" when it cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// mrkdwn renders marked-up text as Slack mrkdwn.
func mrkdwn(s string) string {
	return renderBlocks(chat.ParseMarkup(s), "• ", func(sp chat.Span) string {
		t := escapeSlack(sp.Text)
		if sp.URL != "" {
			if sp.Text == sp.URL {
				return "<" + escapeSlack(sp.URL) + ">"
			}
			t = "<" + escapeSlack(sp.URL) + "|" + strings.ReplaceAll(t, "|", "¦") + ">"
		}
		if sp.Style&chat.Code != 0 {
			t = "`" + t + "`"
		}
		if sp.Style&chat.Italic != 0 {
			t = "_" + t + "_"
		}
		if sp.Style&chat.Bold != 0 {
			t = "*" + t + "*"
		}
		return t
	})
}

func escapeSlack(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// markdown renders marked-up text as CommonMark (Mattermost, Discord),
// escaping what was literal so that it stays literal there.
func markdown(s string) string {
	return renderBlocks(chat.ParseMarkup(s), "- ", markdownSpan(true))
}

// teamsMarkdown is markdown for an Adaptive Card TextBlock, which has no
// code spans.
func teamsMarkdown(s string) string {
	return renderBlocks(chat.ParseMarkup(s), "- ", markdownSpan(false))
}

func markdownSpan(codeSpans bool) func(chat.Span) string {
	return func(sp chat.Span) string {
		var t string
		switch {
		case sp.Style&chat.Code != 0 && codeSpans:
			t = codeSpan(sp.Text)
		case sp.URL != "" && sp.Text == sp.URL:
			return sp.URL
		default:
			t = escapeMarkdown(sp.Text)
		}
		if sp.URL != "" {
			t = "[" + t + "](" + sp.URL + ")"
		}
		if sp.Style&chat.Italic != 0 {
			t = "_" + t + "_"
		}
		if sp.Style&chat.Bold != 0 {
			t = "**" + t + "**"
		}
		return t
	}
}

func codeSpan(s string) string {
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

func escapeMarkdown(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`).Replace(s)
}

// renderBlocks renders blocks with span, list items with bullet.
func renderBlocks(blocks []chat.Block, bullet string, span func(chat.Span) string) string {
	var b strings.Builder
	for i, bl := range blocks {
		if i > 0 {
			if bl.Kind == chat.Paragraph && blocks[i-1].Kind == chat.Paragraph {
				b.WriteString("\n\n")
			} else {
				b.WriteString("\n")
			}
		}
		spans := func() string {
			var s strings.Builder
			for _, sp := range bl.Spans {
				s.WriteString(span(sp))
			}
			return s.String()
		}
		switch bl.Kind {
		case chat.Paragraph:
			b.WriteString(spans())
		case chat.ListItem:
			b.WriteString(bullet + strings.ReplaceAll(spans(), "\n", "\n  "))
		case chat.OrderedItem:
			fmt.Fprintf(&b, "%d. %s", bl.Number, strings.ReplaceAll(spans(), "\n", "\n   "))
		case chat.CodeBlock:
			b.WriteString("```" + bl.Lang + "\n")
			if bl.Code != "" {
				b.WriteString(bl.Code + "\n")
			}
			b.WriteString("```")
		}
	}
	return b.String()
}
