package bot

// Button clicks.
//
// A plugin's button either runs a command (Button.command) or is one of the
// plugin's own actions (Button.action, declared in Manifest.actions). Before
// an output reaches an adapter, the core encodes what the button does into
// chat.Button.ActionID and Value, which the adapter renders into the
// service's button and hands back unchanged in a chat.Interaction:
//
//   - a command button: ActionID "chima.cmd", Value the command text;
//   - an action button: ActionID "chima.act:<plugin>:<action>", Value the
//     plugin's value.
//
// HandleInteraction decodes them. A command click runs through the router
// and the policy as the same command typed by the person who clicked, in the
// clicked message's room and thread, but marked as a click: its audit entry
// has Via "button <ref>" and the plugin's CommandRequest.button is set, which
// no typed message can produce. An action click is checked against the
// policy as the command the action stands for (ActionSpec.command) and handed
// to the plugin that posted the button as an InteractionRequest; its audit
// entry has Via "action <ref>". Anything else (an id the core never made, an
// action its plugin no longer declares) runs nothing: the clicker is told
// "That button no longer works", and it is logged and audited as rejected.
//
// Clicks take the same turns (one person in one room, in order) and count
// against the same MaxConcurrency as typed commands.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/policy"
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
)

const (
	// ActionIDCommand is the ActionID of a command button; its Value is the
	// command.
	ActionIDCommand = "chima.cmd"
	// ActionIDPluginPrefix starts the ActionID of a plugin's action button:
	// "chima.act:<plugin>:<action>".
	ActionIDPluginPrefix = "chima.act:"
	// MaxActionIDBytes bounds an encoded ActionID: Slack's action_id limit.
	MaxActionIDBytes = 255
	// MaxButtonValueBytes bounds a button's Value: Slack's value limit.
	MaxButtonValueBytes = 2000
)

// staleButton is the answer to a click the core cannot route.
const staleButton = "That button no longer works."

// errButton marks a button the core refuses to post.
var errButton = errors.New("bad button")

// click is where a request made by a click came from.
type click struct {
	in chat.Interaction
	// action is set for a plugin's action button, clear for a command
	// button.
	action bool
}

// audit is the click's AuditEntry.Via, "" for no click.
func (c *click) audit() string {
	if c == nil {
		return ""
	}
	if c.action {
		return "action " + c.in.Ref.String()
	}
	return "button " + c.in.Ref.String()
}

// proto is the click as the plugin sees it, nil for no click.
func (c *click) proto() *pluginv1.ButtonClick {
	if c == nil {
		return nil
	}
	return &pluginv1.ButtonClick{Message: refToProto(c.in.Ref), ClickedUnix: unixOrZero(c.in.Time)}
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// pluginOutput converts an output a plugin posts (Host.Post, Host.Update)
// and encodes its buttons for plugin. A button the core cannot encode is an
// error for the plugin, which asked for something that cannot work.
func (b *Bot) pluginOutput(plugin string, o *pluginv1.Output) (chat.Output, error) {
	out := outputFromProto(o)
	for i, pb := range o.GetButtons() {
		btn, err := b.encodeButton(plugin, pb)
		if err != nil {
			return chat.Output{}, fmt.Errorf("button %d (%q): %w", i+1, pb.GetLabel(), err)
		}
		out.Buttons[i] = btn
	}
	return out, nil
}

// streamedOutput converts an output a plugin streams (a reply or progress)
// and encodes its buttons for plugin. A stream has nobody to return an error
// to: a button the core cannot encode is left out, and logged for the
// plugin's author.
func (b *Bot) streamedOutput(plugin string, o *pluginv1.Output) chat.Output {
	out := outputFromProto(o)
	if len(out.Buttons) == 0 {
		return out
	}
	kept := out.Buttons[:0]
	for i, pb := range o.GetButtons() {
		btn, err := b.encodeButton(plugin, pb)
		if err != nil {
			b.log.Error("plugin button left out", "plugin", plugin, "button", i+1, "label", pb.GetLabel(), "error", err)
			continue
		}
		kept = append(kept, btn)
	}
	out.Buttons = kept
	if len(kept) == 0 {
		out.Buttons = nil
	}
	return out
}

// encodeButton sets ActionID and Value of one of plugin's buttons. Values
// are masked like every other text the bot sends: a click on a command
// that held a configured secret then fails to parse rather than leak it.
func (b *Bot) encodeButton(plugin string, pb *pluginv1.Button) (chat.Button, error) {
	btn := chat.Button{Label: pb.GetLabel(), Command: pb.GetCommand(), Style: buttonStyle(pb)}
	red := b.o.Redactor
	switch cmd, action := strings.TrimSpace(pb.GetCommand()), pb.GetAction(); {
	case cmd != "" && action == "" && pb.GetValue() != "":
		return btn, fmt.Errorf("%w: a value is for action buttons; a command button carries its command", errButton)
	case action == "" && cmd != "":
		btn.ActionID, btn.Value = ActionIDCommand, red.String(cmd)
	case action != "":
		// A command beside an action is only the text to type where
		// buttons cannot be shown (Button.AsText); a click goes to the
		// action.
		if len(cmd) > MaxButtonValueBytes {
			return btn, fmt.Errorf("%w: its command is %d bytes; at most %d fit in a button", errButton, len(cmd), MaxButtonValueBytes)
		}
		btn.Command = red.String(cmd)
		if plugin == "" {
			return btn, fmt.Errorf("%w: action %q has no plugin to go back to", errButton, action)
		}
		if !isActionName(action) {
			return btn, fmt.Errorf("%w: action %q: names of actions are letters, digits and -_.: only", errButton, clip(action, 80))
		}
		if b.actionSpec(plugin, action) == nil {
			return btn, fmt.Errorf("%w: plugin %s declares no action %q (Plugin.Actions in the SDK, Manifest.actions in the protocol)", errButton, plugin, action)
		}
		btn.ActionID, btn.Value = ActionIDPluginPrefix+plugin+":"+action, red.String(pb.GetValue())
	default:
		return btn, fmt.Errorf("%w: it needs a command or an action", errButton)
	}
	if len(btn.ActionID) > MaxActionIDBytes {
		return btn, fmt.Errorf("%w: plugin and action names of %d bytes; together they must stay under %d", errButton, len(btn.ActionID)-len(ActionIDPluginPrefix)-1, MaxActionIDBytes-len(ActionIDPluginPrefix))
	}
	if len(btn.Value) > MaxButtonValueBytes {
		what := "value"
		if btn.ActionID == ActionIDCommand {
			what = "command"
		}
		return btn, fmt.Errorf("%w: its %s is %d bytes; at most %d fit in a button", errButton, what, len(btn.Value), MaxButtonValueBytes)
	}
	return btn, nil
}

func isActionName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:", r)) {
			return false
		}
	}
	return s != ""
}

// actionSpec returns plugin's declaration of action, or nil.
func (b *Bot) actionSpec(plugin, action string) *pluginv1.ActionSpec {
	for _, a := range b.o.Plugins.Manifest(plugin).GetActions() {
		if a.GetName() == action {
			return a
		}
	}
	return nil
}

// HandleInteraction implements chat.Handler: it handles a click on a button
// the bot posted. Clicks are queued like messages: one person's clicks and
// commands in one room are handled in the order they arrived, and it blocks
// while MaxConcurrency requests are in flight.
func (b *Bot) HandleInteraction(ctx context.Context, in chat.Interaction) {
	b.dispatch(ctx, conversation{adapter: in.Ref.Adapter, room: in.Ref.Room, user: in.User.ID}, func(ctx context.Context, id string) {
		b.interact(ctx, in, id)
	})
}

// ProcessInteraction handles one click synchronously, for tests.
func (b *Bot) ProcessInteraction(ctx context.Context, in chat.Interaction) Result {
	b.inflight.Add(1)
	defer b.inflight.Done()
	id := b.newRequestID()
	return Result{RequestID: id, Outcome: b.interact(ctx, in, id)}
}

// interact decodes a click and runs what it stands for; it returns the
// audit outcome.
func (b *Bot) interact(ctx context.Context, in chat.Interaction, requestID string) string {
	if b.adapters[in.Ref.Adapter] == nil {
		b.log.Error("click from unknown adapter", "adapter", in.Ref.Adapter, "room", in.Ref.Room)
		return "rejected"
	}
	switch {
	case in.ActionID == ActionIDCommand:
		c := &click{in: in}
		// The command as the button holds it, with or without the bot's
		// name in front.
		text, _ := b.o.Router.Addressed(chat.Message{Text: in.Value, Direct: true})
		if text == "" {
			return b.refuseClick(ctx, in, requestID, "empty command")
		}
		m := chat.Message{Ref: in.Ref, User: in.User, Text: in.Value, Direct: in.Direct, Time: in.Time}
		outcome, _ := b.process(ctx, m, text, requestID, c, nil, false)
		return outcome
	case strings.HasPrefix(in.ActionID, ActionIDApprovalPrefix):
		return b.processApprovalClick(ctx, in, requestID)
	case strings.HasPrefix(in.ActionID, ActionIDPluginPrefix):
		plugin, action, ok := strings.Cut(in.ActionID[len(ActionIDPluginPrefix):], ":")
		if ok && plugin != "" && action != "" {
			return b.processAction(ctx, in, plugin, action, requestID)
		}
	}
	return b.refuseClick(ctx, in, requestID, fmt.Sprintf("unknown button action id %q", clip(in.ActionID, 80)))
}

// processAction runs a click on a plugin's action button and audits it.
func (b *Bot) processAction(ctx context.Context, in chat.Interaction, plugin, action, requestID string) string {
	start := time.Now()
	b.o.Metrics.InFlight.Inc()
	defer b.o.Metrics.InFlight.Dec()
	c := &click{in: in, action: true}
	entry := store.AuditEntry{
		Time: start, RequestID: requestID, Adapter: in.Ref.Adapter, Room: in.Ref.Room,
		UserID: in.User.ID, UserName: in.User.Name, Text: clip(in.Value, MaxButtonValueBytes),
		Plugin: plugin, Command: action, Via: c.audit(), Person: b.o.Policy.Person(in.Ref.Adapter, in.User.ID),
	}
	entry.Outcome, entry.Detail = b.action(ctx, c, plugin, action, requestID, &entry)
	entry.Duration = time.Since(start)
	b.o.Metrics.Commands.WithLabelValues(plugin, entry.Outcome).Inc()
	b.o.Metrics.Dispatch.WithLabelValues(plugin).Observe(entry.Duration.Seconds())
	b.auditEnd(entry)
	return entry.Outcome
}

// action checks a click on plugin's action against the policy and hands it
// to the plugin; it returns the audit outcome and detail. Once allowed, the
// decision is recorded in entry (see decide) before the plugin hears of it.
func (b *Bot) action(ctx context.Context, c *click, plugin, action, requestID string, entry *store.AuditEntry) (string, string) {
	in := c.in
	out := b.newReplier(chat.Message{Ref: in.Ref, User: in.User, Direct: in.Direct, Time: in.Time})
	m := b.o.Plugins.Manifest(plugin)
	if m == nil {
		for _, p := range b.o.Plugins.Plugins() {
			if p == plugin {
				st := b.o.Plugins.State(plugin)
				b.tellClicker(ctx, in, out, chat.Output{Text: b.downMessage(plugin), Status: "danger"})
				return "unavailable", "plugin " + string(st)
			}
		}
		return b.answerStale(ctx, in, out, fmt.Sprintf("no plugin %q", plugin))
	}
	spec := b.actionSpec(plugin, action)
	if spec == nil {
		return b.answerStale(ctx, in, out, fmt.Sprintf("plugin %s declares no action %q", plugin, clip(action, 80)))
	}
	// Checked as the command the action stands for, so that a button
	// grants nothing its command would not.
	command, permission := spec.GetName(), spec.GetPermission()
	if name := spec.GetCommand(); name != "" {
		var cs *pluginv1.CommandSpec
		for _, x := range m.GetCommands() {
			if strings.EqualFold(x.GetName(), name) {
				cs = x
			}
		}
		if cs == nil {
			b.log.Error("plugin action stands for a command the plugin does not have", "plugin", plugin, "action", action, "command", name)
			return b.answerStale(ctx, in, out, fmt.Sprintf("action %q stands for unknown command %q", action, name))
		}
		command, permission = cs.GetName(), cs.GetPermission()
	}
	dec := b.o.Policy.Check(policy.Request{
		Adapter: in.Ref.Adapter, Room: in.Ref.Room, UserID: in.User.ID,
		Plugin: plugin, Command: command, Permission: permission, Direct: in.Direct,
	})
	if !dec.Allowed {
		b.tellClicker(ctx, in, out, chat.Output{Text: "Sorry, " + dec.Reason, Status: "warning"})
		return "denied", dec.Reason
	}
	if !b.decide(ctx, entry, func(o chat.Output) { b.tellClicker(ctx, in, out, o) }) {
		return "error", errAuditDown
	}
	out.plugin = plugin
	call := &pluginv1.Call{Kind: &pluginv1.Call_Interaction{Interaction: &pluginv1.InteractionRequest{
		RequestId:   requestID,
		Action:      action,
		Value:       in.Value,
		User:        &pluginv1.User{Id: in.User.ID, Name: in.User.Name, Roles: dec.Roles, Person: dec.Person},
		Message:     refToProto(in.Ref),
		Direct:      in.Direct,
		ClickedUnix: unixOrZero(in.Time),
	}}}
	return b.callPlugin(ctx, plugin, action, call, "the click on `"+action+"`", requestID, out)
}

// refuseClick answers and audits a click that runs nothing.
func (b *Bot) refuseClick(ctx context.Context, in chat.Interaction, requestID, why string) string {
	start := time.Now()
	out := b.newReplier(chat.Message{Ref: in.Ref, User: in.User, Direct: in.Direct, Time: in.Time})
	entry := store.AuditEntry{
		Time: start, RequestID: requestID, Adapter: in.Ref.Adapter, Room: in.Ref.Room,
		UserID: in.User.ID, UserName: in.User.Name, Text: clip(in.Value, MaxButtonValueBytes),
		Via: (&click{in: in}).audit(), Person: b.o.Policy.Person(in.Ref.Adapter, in.User.ID),
	}
	entry.Outcome, entry.Detail = b.answerStale(ctx, in, out, why)
	entry.Duration = time.Since(start)
	b.o.Metrics.Commands.WithLabelValues("core", entry.Outcome).Inc()
	b.audit.record(entry)
	return entry.Outcome
}

// answerStale tells the clicker their button no longer works, logs why,
// and returns the audit outcome and detail.
func (b *Bot) answerStale(ctx context.Context, in chat.Interaction, out *replier, why string) (string, string) {
	b.log.Warn("click on a button that does nothing", "adapter", in.Ref.Adapter, "room", in.Ref.Room,
		"message", in.Ref.MessageID, "user", in.User.ID, "why", why)
	b.tellClicker(ctx, in, out, chat.Output{Text: staleButton, Status: "warning"})
	return "rejected", why
}

// tellClicker answers the person who clicked: only them where the service
// has ephemeral messages, else in the clicked message's thread.
func (b *Bot) tellClicker(ctx context.Context, in chat.Interaction, out *replier, o chat.Output) {
	if b.caps[in.Ref.Adapter].Ephemeral && in.User.ID != "" {
		if e, ok := b.adapters[in.Ref.Adapter].(chat.EphemeralSender); ok {
			err := e.SendEphemeral(ctx, out.to, in.User.ID, b.prepare(ctx, in.Ref.Adapter, b.caps[in.Ref.Adapter], o))
			if err == nil {
				return
			}
			b.log.Warn("ephemeral answer to a click failed; answering in the thread", "adapter", in.Ref.Adapter, "room", in.Ref.Room, "error", err)
		}
	}
	out.send(ctx, o, true)
}

// clip shortens s to at most n bytes, for logs and the audit log.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
