package slack

import (
	"context"
	"strconv"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/chimaops/chima/core/chat"
)

// handleEvent turns one Events API event (over HTTP or Socket Mode) into
// what the handler gets: app_mention (Mentioned, the mention removed),
// message.im (Direct), and, where the app also subscribes to
// message.channels / message.groups, a channel message as it was typed
// (the router decides whether it names the bot). A channel message that
// mentions the bot is left to its app_mention, so it is delivered once. The
// bot's own messages, other bots', edits and deletions are dropped. eventID
// is the delivery's event_id: a second delivery of it is dropped too.
func (a *Adapter) handleEvent(eventID string, inner slackevents.EventsAPIInnerEvent) {
	var m *chat.Message
	inChannel := false // a channel message, not a mention
	switch ev := inner.Data.(type) {
	case *slackevents.AppMentionEvent:
		if ev.BotID != "" || ev.Edited != nil {
			return
		}
		m = &chat.Message{Ref: chat.MessageRef{Room: ev.Channel, MessageID: ev.TimeStamp, ThreadID: ev.ThreadTimeStamp},
			User: chat.User{ID: ev.User}, Text: ev.Text, Mentioned: true}
	case *slackevents.MessageEvent:
		if ev.SubType != "" || ev.BotID != "" {
			return // subtypes are edits, deletions, joins, bots
		}
		m = &chat.Message{Ref: chat.MessageRef{Room: ev.Channel, MessageID: ev.TimeStamp, ThreadID: ev.ThreadTimeStamp},
			User: chat.User{ID: ev.User}, Text: ev.Text}
		switch ev.ChannelType {
		case "im":
			m.Direct = true
		case "channel", "group", "mpim":
			inChannel = true
		default:
			return
		}
	default:
		return
	}
	if !a.seen.add(eventID) {
		return
	}
	msg := *m
	a.deliverOrWarn(eventID, func(ctx context.Context, h chat.Handler) {
		self, _ := a.identity()
		if msg.User.ID == "" || msg.User.ID == self {
			return
		}
		if inChannel && strings.Contains(msg.Text, "<@"+self) {
			return // its app_mention delivers it
		}
		msg.Ref.Adapter = a.Name()
		// Slack retries an event to whichever replica, with one event_id.
		msg.DeliveryKey = eventID
		if msg.Ref.ThreadID == msg.Ref.MessageID {
			msg.Ref.ThreadID = "" // a thread's root is not in a thread
		}
		msg.Time = tsTime(msg.Ref.MessageID)
		text, mentioned := stripMention(msg.Text, self)
		if msg.Mentioned || msg.Direct {
			msg.Text, msg.Mentioned = text, msg.Mentioned || mentioned
		}
		msg.Text = a.normalise(ctx, msg.Text)
		msg.User.Name = a.userName(ctx, msg.User.ID)
		h.HandleMessage(ctx, msg)
	})
}

// handleSlash turns a slash command into a message addressed to the bot.
// It has no message in Slack, so its MessageID is synthetic: replies to it
// go to the channel (their first one roots the thread of the others), or to
// the command's response_url where the bot cannot post.
func (a *Adapter) handleSlash(cmd slackgo.SlashCommand) {
	id := a.slash.add(cmd.ChannelID, cmd.ResponseURL)
	a.deliverOrWarn(id, func(ctx context.Context, h chat.Handler) {
		self, _ := a.identity()
		text, _ := stripMention(cmd.Text, self)
		m := chat.Message{
			Ref:       chat.MessageRef{Adapter: a.Name(), Room: cmd.ChannelID, MessageID: id},
			User:      chat.User{ID: cmd.UserID, Name: cmd.UserName},
			Text:      a.normalise(ctx, text),
			Direct:    strings.HasPrefix(cmd.ChannelID, "D") || cmd.ChannelName == "directmessage",
			Mentioned: true, // a slash command is always addressed to the bot
			Time:      time.Now(),
		}
		a.names.putUser(cmd.UserID, cmd.UserName)
		h.HandleMessage(ctx, m)
	})
}

// handleInteraction hands each button click of a block_actions callback to
// the handler, with the action id and value exactly as they were rendered.
func (a *Adapter) handleInteraction(cb slackgo.InteractionCallback) {
	if cb.Type != slackgo.InteractionTypeBlockActions {
		return
	}
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	msgTS := cb.Container.MessageTs
	if msgTS == "" {
		msgTS = cb.Message.Timestamp
	}
	thread := cb.Message.ThreadTimestamp
	if thread == "" {
		thread = cb.Container.ThreadTs
	}
	if thread == msgTS {
		thread = ""
	}
	user := chat.User{ID: cb.User.ID, Name: cb.User.Name}
	if user.Name == "" {
		user.Name = cb.User.Username
	}
	for _, act := range cb.ActionCallback.BlockActions {
		if act == nil || act.Type != slackgo.ActionType("button") {
			continue
		}
		in := chat.Interaction{
			Ref:      chat.MessageRef{Adapter: a.Name(), Room: channel, MessageID: msgTS, ThreadID: thread},
			User:     user,
			ActionID: act.ActionID,
			Value:    act.Value,
			Direct:   strings.HasPrefix(channel, "D") || cb.Channel.IsIM,
			Time:     tsTime(act.ActionTs),
		}
		a.deliverOrWarn(act.ActionID, func(ctx context.Context, h chat.Handler) { h.HandleInteraction(ctx, in) })
	}
}

// deliverOrWarn delivers f and logs what could not be kept while Run was
// not ready.
func (a *Adapter) deliverOrWarn(id string, f func(ctx context.Context, h chat.Handler)) {
	if !a.deliver(f) {
		a.log.Warn("slack: dropped what arrived before the adapter was running: too much is waiting", "id", id, "waiting", maxPending)
	}
}

// stripMention removes the bot's own <@U…> mention from text: the leading
// one with a ':' or ',' after it, or one elsewhere. It reports whether there
// was one.
func stripMention(text, self string) (string, bool) {
	if self == "" {
		return text, false
	}
	t := strings.TrimSpace(text)
	for _, tok := range []string{"<@" + self + ">", "<@" + self + "|"} {
		if !strings.HasPrefix(t, tok) {
			continue
		}
		rest := t[len(tok):]
		if tok[len(tok)-1] == '|' {
			end := strings.IndexByte(rest, '>')
			if end < 0 {
				break
			}
			rest = rest[end+1:]
		}
		rest = strings.TrimLeft(rest, " ")
		rest = strings.TrimPrefix(strings.TrimPrefix(rest, ":"), ",")
		return strings.TrimSpace(rest), true
	}
	if i := strings.Index(t, "<@"+self+">"); i >= 0 {
		joined := strings.TrimSpace(t[:i]) + " " + strings.TrimSpace(t[i+len(self)+3:])
		return strings.TrimSpace(joined), true
	}
	return t, false
}

// normalise turns Slack's message formatting back into what the person
// typed: <http://x|x> is its label, <http://x> the URL, <@U123> @name (from
// the directory, or the id), <#C123|name> #name, <!here> @here, and &amp;,
// &lt;, &gt; the characters.
func (a *Adapter) normalise(ctx context.Context, s string) string {
	if !strings.ContainsAny(s, "<&") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			break
		}
		b.WriteString(unescape(s[:i]))
		b.WriteString(a.token(ctx, s[i+1:i+j]))
		s = s[i+j+1:]
	}
	b.WriteString(unescape(s))
	return b.String()
}

// token renders the inside of one <…> of Slack's formatting.
func (a *Adapter) token(ctx context.Context, t string) string {
	target, label, hasLabel := strings.Cut(t, "|")
	label = unescape(label)
	switch {
	case strings.HasPrefix(target, "@"):
		if hasLabel && label != "" {
			return "@" + strings.TrimPrefix(label, "@")
		}
		id := target[1:]
		if name := a.userName(ctx, id); name != "" {
			return "@" + name
		}
		return "@" + id
	case strings.HasPrefix(target, "#"):
		if hasLabel && label != "" {
			return "#" + label
		}
		id := target[1:]
		if r, err := a.LookupRoom(ctx, id); err == nil && r.Name != "" {
			return "#" + r.Name
		}
		return "#" + id
	case strings.HasPrefix(target, "!"):
		if hasLabel && label != "" {
			return label // <!subteam^S1|@ops>, <!date^…|fallback>
		}
		return "@" + strings.TrimPrefix(target, "!") // <!here>, <!channel>
	default:
		if hasLabel && label != "" {
			return label
		}
		return unescape(target)
	}
}

func unescape(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	return unescaper.Replace(s)
}

var unescaper = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

// userName returns a user's name from the cache or users.info, or "".
func (a *Adapter) userName(ctx context.Context, id string) string {
	if id == "" {
		return ""
	}
	if name, ok := a.names.user(id); ok {
		return name
	}
	u, err := a.LookupUser(ctx, id)
	if err != nil {
		a.log.Debug("slack: no name for user", "user", id, "err", err)
		return ""
	}
	return u.Name
}

// tsTime reads a Slack timestamp ("1712345678.000200"); now when it is not
// one.
func tsTime(ts string) time.Time {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || s <= 0 {
		return time.Now()
	}
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		ns, _ = strconv.ParseInt(frac, 10, 64)
	}
	return time.Unix(s, ns)
}
