package bot

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/mention"
	"github.com/chimaops/chima/core/outbox"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// replier turns what a plugin streams for one request into chat messages in
// the request's room or thread. It is used by one goroutine at a time.
type replier struct {
	b       *Bot
	adapter chat.Adapter
	caps    chat.Capabilities
	// to is the room (and thread, if the request came from one) replies go.
	to chat.MessageRef
	// origin is the message that asked, for starting a thread.
	origin chat.MessageRef
	// progress is, by key, the progress message that later progress of
	// the key edits: queued, maybe not posted yet.
	progress map[string]*outbox.Ticket
	// queued are the replies handed to the outbox and not yet answered,
	// oldest first (see replyWindow).
	queued []*outbox.Ticket
	// plugin is whose events these are: its buttons are encoded for it
	// (see interactions.go).
	plugin string
	// posted and held are, by progress key, for an adapter that cannot
	// edit: when progress was last posted anew, and the latest progress
	// not posted since (see progressPostEvery).
	posted map[string]time.Time
	held   map[string]chat.Output
	// needed is the plugin's ApprovalNeeded, when it answered the command
	// with one.
	needed *pluginv1.ApprovalNeeded
}

// replyWindow is how many replies of one request may wait in the outbox
// before the replier waits for the oldest. A reply is queued, not waited
// for: a room that waits out a long Retry-After does not hold the command's
// goroutine (nor its slot of Options.MaxConcurrency, nor its conversation's
// turn) for as long. Past the window the request waits, so that a plugin
// that floods a slow room is slowed down instead of filling the outbox.
const replyWindow = 32

// progressPostEvery is how often progress of one key is posted anew where
// the adapter cannot edit: each post is one more message in the thread.
// The latest progress held back is posted when the plugin is done.
const progressPostEvery = 10 * time.Second

func (b *Bot) newReplier(m chat.Message) *replier {
	r := b.replierTo(m.Ref, chat.MessageRef{Adapter: m.Ref.Adapter, Room: m.Ref.Room, ThreadID: m.Ref.ThreadID})
	// Where the service's custom is to answer in a thread (Slack,
	// Mattermost), a room message gets its answers in a thread under it;
	// a direct message is a conversation already.
	if r.caps.ThreadReplies && !m.Direct && r.to.ThreadID == "" && m.Ref.MessageID != "" {
		r.to.ThreadID = m.Ref.MessageID
	}
	return r
}

func (b *Bot) replierTo(origin, to chat.MessageRef) *replier {
	origin, to = b.withAdapter(origin), b.withAdapter(to)
	return &replier{b: b, adapter: b.adapters[to.Adapter], caps: b.caps[to.Adapter], to: to, origin: origin}
}

// event renders one plugin event.
func (r *replier) event(ctx context.Context, ev *pluginv1.Event) {
	switch k := ev.GetKind().(type) {
	case *pluginv1.Event_Reply:
		r.send(ctx, r.b.streamedOutput(r.plugin, k.Reply.GetOutput()), k.Reply.GetInThread())
	case *pluginv1.Event_Progress:
		r.progressUpdate(ctx, k.Progress.GetKey(), r.b.streamedOutput(r.plugin, k.Progress.GetOutput()))
	case *pluginv1.Event_Done:
		r.flushProgress(ctx)
	case *pluginv1.Event_ApprovalNeeded:
		r.needed = k.ApprovalNeeded
	case *pluginv1.Event_Error:
		e := k.Error
		text := "⚠ " + e.GetSummary()
		if e.GetDetail() != "" {
			text += "\n" + e.GetDetail()
		}
		r.send(ctx, chat.Output{Text: text, Status: "warning"}, false)
	}
}

// send queues out for the request's room, or its thread when inThread, and
// returns once it is queued: what the service answers is the outbox's to
// log. nil when nothing was queued (the outbox said why in its log).
func (r *replier) send(ctx context.Context, out chat.Output, inThread bool) *outbox.Ticket {
	to := r.to
	if inThread && to.ThreadID == "" {
		to.ThreadID = r.origin.MessageID
	}
	t, err := r.b.queue(ctx, r.adapter, r.caps, to, out)
	if err != nil {
		return nil
	}
	r.queued = append(r.queued, t)
	r.settle(ctx, replyWindow)
	return t
}

// settle forgets the queued replies that were answered, then waits for the
// oldest until no more than n wait (or ctx ends).
func (r *replier) settle(ctx context.Context, n int) {
	for len(r.queued) > 0 {
		select {
		case <-r.queued[0].Done():
			r.queued = r.queued[1:]
			continue
		default:
		}
		if len(r.queued) <= n {
			return
		}
		if _, err := r.queued[0].Ref(ctx); err != nil && ctx.Err() != nil {
			return
		}
	}
}

// wait waits until every reply queued so far is answered (or ctx ends):
// for callers that promise their replies were delivered when they return
// (Process, a job's end).
func (r *replier) wait(ctx context.Context) { r.settle(ctx, 0) }

// progressUpdate edits the progress message of key where the adapter can
// edit, and posts a new message where it cannot. Progress goes into the
// request's thread.
func (r *replier) progressUpdate(ctx context.Context, key string, out chat.Output) {
	if t, ok := r.progress[key]; ok && r.caps.Edits {
		// The outbox takes the edit, or says at once why not (full,
		// closed), which a new message would not escape; it logs and
		// counts that itself. A progress message not posted yet is
		// posted with the latest progress instead; one that could not be
		// posted is posted anew.
		err := r.b.updateQueued(ctx, r.adapter, t, out)
		if !errors.Is(err, outbox.ErrNotPosted) {
			return
		}
		delete(r.progress, key)
	}
	if !r.caps.Edits {
		// The outbox coalesces edits; new messages are the replier's to
		// space out.
		if at, ok := r.posted[key]; ok && time.Since(at) < progressPostEvery {
			if r.held == nil {
				r.held = map[string]chat.Output{}
			}
			r.held[key] = out
			return
		}
		delete(r.held, key)
		if r.posted == nil {
			r.posted = map[string]time.Time{}
		}
		r.posted[key] = time.Now()
	}
	t := r.send(ctx, out, true)
	if t == nil {
		return
	}
	if r.progress == nil {
		r.progress = map[string]*outbox.Ticket{}
	}
	r.progress[key] = t
}

// flushProgress posts the progress held back for an adapter that cannot
// edit: the plugin is done, and its last progress is the final state.
func (r *replier) flushProgress(ctx context.Context) {
	keys := slices.Sorted(maps.Keys(r.held))
	for _, key := range keys {
		out := r.held[key]
		delete(r.held, key)
		r.send(ctx, out, true)
	}
}

// deliver sends out through adapter a, degrading what a cannot show, and
// waits for the message's reference. The outbox honours a's rate limits,
// splits what is too long, and logs and counts what it cannot deliver.
func (b *Bot) deliver(ctx context.Context, a chat.Adapter, caps chat.Capabilities, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	if a == nil {
		b.log.Error("reply to unknown adapter", "adapter", to.Adapter, "room", to.Room)
		return chat.MessageRef{}, chat.ErrUnknownRoom
	}
	to, out = b.shape(ctx, caps, to, out)
	return b.out.Send(ctx, a, to, out)
}

// queue is deliver without the wait: it returns once the outbox has the
// message.
func (b *Bot) queue(ctx context.Context, a chat.Adapter, caps chat.Capabilities, to chat.MessageRef, out chat.Output) (*outbox.Ticket, error) {
	if a == nil {
		b.log.Error("reply to unknown adapter", "adapter", to.Adapter, "room", to.Room)
		return nil, chat.ErrUnknownRoom
	}
	to, out = b.shape(ctx, caps, to, out)
	return b.out.Queue(ctx, a, to, out)
}

// shape degrades to and out to what an adapter of caps can show (see
// prepare).
func (b *Bot) shape(ctx context.Context, caps chat.Capabilities, to chat.MessageRef, out chat.Output) (chat.MessageRef, chat.Output) {
	if !caps.Threads {
		to.ThreadID = ""
	}
	return to, b.prepare(ctx, to.Adapter, caps, out)
}

// prepare makes out what adapter, of caps, is handed: its mentions
// resolved for adapter, secrets masked, buttons as text where it shows
// none. Every message the bot sends or edits passes here: replies, plugin
// posts, job endings, answers to clicks.
func (b *Bot) prepare(ctx context.Context, adapter string, caps chat.Capabilities, out chat.Output) chat.Output {
	out = b.mentions.Resolve(ctx, adapter, caps.Mentions, b.rooms.users(adapter), out)
	out = b.redactOutput(out)
	if !caps.Buttons && len(out.Buttons) > 0 {
		out = degradeButtons(out)
	}
	return out
}

// updateQueued queues an edit of the message t, posted or not yet.
func (b *Bot) updateQueued(ctx context.Context, a chat.Adapter, t *outbox.Ticket, out chat.Output) error {
	return b.out.UpdateQueued(ctx, t, b.prepare(ctx, a.Name(), b.caps[a.Name()], out))
}

// update queues an edit of the message ref: it returns once the outbox has
// it, which coalesces the edits of one message within the adapter's edit
// interval (progress streams as fast as a plugin likes).
func (b *Bot) update(ctx context.Context, a chat.Adapter, ref chat.MessageRef, out chat.Output) error {
	return b.out.Update(ctx, a, ref, b.prepare(ctx, a.Name(), b.caps[a.Name()], out))
}

// outboxDrain bounds how long a stopping bot waits for the outbox to
// deliver what waits (a rate-limited service may hold it up).
const outboxDrain = 10 * time.Second

func newOutbox(o Options) *outbox.Outbox {
	oo := o.Outbox
	if oo.Logger == nil {
		oo.Logger = o.Logger.With("component", "outbox")
	}
	if oo.Registerer == nil {
		oo.Registerer = o.Metrics.Registry
	}
	return outbox.New(oo)
}

// closeOutbox delivers what waits in the outbox, within outboxDrain; the
// outbox logs and counts what it has to give up.
func (b *Bot) closeOutbox() {
	ctx, cancel := context.WithTimeout(context.Background(), outboxDrain)
	defer cancel()
	if err := b.out.Close(ctx); err != nil {
		b.log.Error("chat outbox not drained", "error", err)
	}
}

// newMentions returns the resolver of the people messages mention, over
// the people of o's policy.
func newMentions(o Options) *mention.Resolver {
	var accounts mention.Accounts
	if o.Policy != nil {
		accounts = o.Policy
	}
	return mention.New(accounts, o.Logger.With("component", "mentions"))
}

// redactOutput masks every configured secret value in out (see prepare).
func (b *Bot) redactOutput(out chat.Output) chat.Output {
	r := b.o.Redactor
	if r == nil {
		return out
	}
	out.Title, out.Text, out.Code, out.Fallback = r.String(out.Title), r.String(out.Text), r.String(out.Code), r.String(out.Fallback)
	// The slices are the caller's: they are copied, and only when they hold
	// a secret, so a clean reply allocates nothing here.
	if slices.ContainsFunc(out.Fields, func(f chat.Field) bool { return r.Contains(f.Title) || r.Contains(f.Value) }) {
		fields := make([]chat.Field, len(out.Fields))
		for i, f := range out.Fields {
			f.Title, f.Value = r.String(f.Title), r.String(f.Value)
			fields[i] = f
		}
		out.Fields = fields
	}
	if slices.ContainsFunc(out.Buttons, func(b chat.Button) bool { return r.Contains(b.Label) || r.Contains(b.Command) }) {
		buttons := make([]chat.Button, len(out.Buttons))
		for i, btn := range out.Buttons {
			btn.Label, btn.Command = r.String(btn.Label), r.String(btn.Command)
			buttons[i] = btn
		}
		out.Buttons = buttons
	}
	return out
}

// degradeButtons turns buttons into "type: <command>" lines for adapters
// that cannot show buttons.
func degradeButtons(out chat.Output) chat.Output {
	text := out.Text
	for _, btn := range out.Buttons {
		if text != "" {
			text += "\n"
		}
		text += btn.AsText()
	}
	out.Text, out.Buttons, out.Fallback = text, nil, ""
	return out
}

func outputFromProto(o *pluginv1.Output) chat.Output {
	out := chat.Output{
		Title: o.GetTitle(), Text: o.GetText(), Code: o.GetCode(),
		Fallback: o.GetFallback(), Status: outputStatus(o),
	}
	for _, f := range o.GetFields() {
		out.Fields = append(out.Fields, chat.Field{Title: f.GetTitle(), Value: f.GetValue(), Short: f.GetShort()})
	}
	for _, btn := range o.GetButtons() {
		out.Buttons = append(out.Buttons, chat.Button{Label: btn.GetLabel(), Command: btn.GetCommand(), Style: buttonStyle(btn)})
	}
	for _, m := range o.GetMentions() {
		if m.GetPlaceholder() != "" && m.GetPerson() != "" {
			out.Mentions = append(out.Mentions, chat.Mention{Person: m.GetPerson(), Placeholder: m.GetPlaceholder()})
		}
	}
	return out
}
