package mattermost

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/chimaops/chima/core/chat"
)

// Attachment colours by Output.Status, Slack's and Mattermost's usual ones.
var statusColors = map[string]string{
	"good":    "#2eb886",
	"warning": "#daa038",
	"danger":  "#a30200",
	"info":    "#439fe0",
}

// Keys of a button's integration context.
const (
	ctxActionID = "action_id"
	ctxValue    = "value"
	ctxSig      = "sig"
)

// render turns out into a post (without channel or root): the text as
// Mattermost Markdown in the message, code as a fenced block after it, and
// title, fields, status colour and buttons as one message attachment.
//
// The people out mentions are written as @username (MentionText) before it
// is rendered: Mattermost Markdown takes them as they are.
func (a *Adapter) render(out chat.Output) *model.Post {
	out = out.ReplaceMentions(a.MentionText)
	var msg strings.Builder
	msg.WriteString(Markdown(out.Text))
	if out.Code != "" {
		if msg.Len() > 0 {
			msg.WriteString("\n")
		}
		msg.WriteString(fence(out.Code))
	}
	buttons := out.Buttons
	if !a.SupportsButtons() && len(buttons) > 0 {
		// No way for a click to come back: show the commands to type.
		for _, b := range buttons {
			if msg.Len() > 0 {
				msg.WriteString("\n")
			}
			msg.WriteString(b.AsText())
		}
		buttons = nil
	}
	post := &model.Post{}
	post.AddProp("from_bot", "true")
	hasAttachment := out.Title != "" || len(out.Fields) > 0 || len(buttons) > 0 || statusColors[out.Status] != ""
	if msg.Len() == 0 && !hasAttachment {
		msg.WriteString(out.PlainText())
	}
	post.Message = truncate(msg.String(), MaxPostRunes)
	if hasAttachment {
		att := &model.SlackAttachment{
			Fallback: out.PlainText(),
			Color:    statusColors[out.Status],
			Title:    out.Title,
		}
		for _, f := range out.Fields {
			att.Fields = append(att.Fields, &model.SlackAttachmentField{
				Title: f.Title, Value: Markdown(f.Value), Short: model.SlackCompatibleBool(f.Short),
			})
		}
		for _, b := range buttons {
			att.Actions = append(att.Actions, a.action(b))
		}
		post.AddProp("attachments", []*model.SlackAttachment{att})
	}
	return post
}

// MentionText is Mattermost's mention of a user, which pings them:
// @username (chat.Mentioner). Without the username (the directory did not
// answer) there is none: a user id does not ping.
func (a *Adapter) MentionText(u chat.User) string {
	if u.Name == "" {
		return ""
	}
	return "@" + u.Name
}

// action renders a button as an integration action whose context carries
// the button's ActionID and Value and a signature over both.
func (a *Adapter) action(b chat.Button) *model.PostAction {
	style := b.Style
	if style == "" {
		style = "default"
	}
	return &model.PostAction{
		Type:  model.PostActionTypeButton,
		Name:  b.Label,
		Style: style,
		Integration: &model.PostActionIntegration{
			URL: a.opts.ActionsURL + "/" + a.name + "/actions",
			Context: map[string]any{
				ctxActionID: b.ActionID,
				ctxValue:    b.Value,
				ctxSig:      a.sign(b.ActionID, b.Value),
			},
		},
	}
}

// sign is the HMAC-SHA256 of an action id and value under the adapter's
// key, as unpadded base64url.
func (a *Adapter) sign(actionID, value string) string {
	m := hmac.New(sha256.New, a.opts.ActionKey)
	m.Write([]byte("chima-mattermost-action\x00"))
	m.Write([]byte(strconv.Itoa(len(actionID))))
	m.Write([]byte{0})
	m.Write([]byte(actionID))
	m.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Markdown renders Chima's text markup (chat.ParseMarkup) as Mattermost
// Markdown. Chima's markup is a subset of Mattermost's, so plain text is
// written as it came: what the parser left as characters is what the
// author wrote, and escaping it would show backslashes where Mattermost
// shows the same thing without them.
func Markdown(s string) string {
	blocks := chat.ParseMarkup(s)
	var b strings.Builder
	for i, bl := range blocks {
		if i > 0 {
			prevList := blocks[i-1].Kind == chat.ListItem || blocks[i-1].Kind == chat.OrderedItem
			list := bl.Kind == chat.ListItem || bl.Kind == chat.OrderedItem
			if prevList && list {
				b.WriteString("\n")
			} else {
				b.WriteString("\n\n")
			}
		}
		switch bl.Kind {
		case chat.CodeBlock:
			b.WriteString(fence(bl.Code))
		case chat.ListItem:
			b.WriteString("- ")
			spans(&b, bl.Spans)
		case chat.OrderedItem:
			b.WriteString(strconv.Itoa(bl.Number) + ". ")
			spans(&b, bl.Spans)
		default:
			spans(&b, bl.Spans)
		}
	}
	return b.String()
}

func spans(b *strings.Builder, ss []chat.Span) {
	for _, s := range ss {
		if s.URL != "" {
			if s.Text == "" || s.Text == s.URL {
				b.WriteString(s.URL)
			} else {
				b.WriteString("[" + s.Text + "](" + strings.ReplaceAll(s.URL, ")", "%29") + ")")
			}
			continue
		}
		if s.Style&chat.Code != 0 {
			tick := "`"
			if strings.Contains(s.Text, "`") {
				tick = "`` "
			}
			b.WriteString(tick + s.Text + reverse(tick))
			continue
		}
		open, closing := "", ""
		if s.Style&chat.Bold != 0 {
			open, closing = "**", "**"
		}
		if s.Style&chat.Italic != 0 {
			open, closing = open+"_", "_"+closing
		}
		t := s.Text
		if open != "" {
			// Markers must hug the text: keep surrounding spaces outside.
			lead := t[:len(t)-len(strings.TrimLeft(t, " "))]
			trail := t[len(strings.TrimRight(t, " ")):]
			core := strings.TrimSpace(t)
			if core == "" {
				b.WriteString(t)
				continue
			}
			b.WriteString(lead + open + core + closing + trail)
			continue
		}
		b.WriteString(t)
	}
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// fence renders code as a fenced block that its content cannot close.
func fence(code string) string {
	f := "```"
	for strings.Contains(code, f) {
		f += "`"
	}
	return f + "\n" + strings.TrimRight(code, "\n") + "\n" + f
}

// truncate cuts s to n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// mentionMatcher finds and removes "@botname" in a post.
type mentionMatcher struct{ at string }

func newMentionMatcher(username string) *mentionMatcher {
	return &mentionMatcher{at: "@" + strings.ToLower(username)}
}

// isNameRune reports whether r can be part of a Mattermost username.
func isNameRune(r byte) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}

// strip removes every mention of the bot (with a following ':' or ',') and
// reports whether there was one.
func (m *mentionMatcher) strip(text string) (string, bool) {
	lower := strings.ToLower(text)
	found := false
	var b strings.Builder
	i := 0
	for {
		j := strings.Index(lower[i:], m.at)
		if j < 0 {
			break
		}
		j += i
		end := j + len(m.at)
		before := j == 0 || !isNameRune(lower[j-1])
		// A trailing '.' ends a sentence, not the name.
		after := end == len(lower) || !isNameRune(lower[end]) || (lower[end] == '.' && (end+1 == len(lower) || !isNameRune(lower[end+1])))
		if !before || !after {
			b.WriteString(text[i:end])
			i = end
			continue
		}
		found = true
		b.WriteString(text[i:j])
		if end < len(text) && (text[end] == ':' || text[end] == ',') {
			end++
		}
		i = end
	}
	if !found {
		return text, false
	}
	b.WriteString(text[i:])
	out := strings.TrimSpace(b.String())
	for strings.Contains(out, "  ") {
		out = strings.ReplaceAll(out, "  ", " ")
	}
	return out, true
}
