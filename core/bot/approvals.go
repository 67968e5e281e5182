package bot

// Approvals in chat.
//
// A command waits for approval when its policy says so (Decision.Approval),
// before its plugin hears of it, or when its plugin answers it with
// ApprovalNeeded (sdk.NeedApproval, sdk.NeedConfirmation). Either way the
// exact parsed command is stored as an approval request (core/approvals),
// and the room is asked, with Approve and Deny buttons (core-owned: their
// ActionID is "chima.approval:approve" or "chima.approval:deny", their
// Value the request's id) and the text to type where there are no buttons:
// `chima approve 12`, `chima deny 12 <reason>`. Approvers are asked by
// direct message too, on every adapter that has them.
//
// Once the request's count of approvals is reached, the approval that
// reached it claims the run (an atomic move from approved to done in the
// store) and runs the command as stored, as the requester, in the
// request's room and thread, with CommandRequest.approval set. A request
// approved while the bot stopped before the claim is run at the next start.
//
// The audit records the request (the command's entry, outcome "approval",
// detail "approval 12 …"), each vote (command approve or deny, detail
// "approval 12: …"), an expiry (command approval, outcome expired) and the
// run (Via "approval 12: asked by … approved by …").

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/chimaops/chima/core/approvals"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/policy"
	"github.com/chimaops/chima/core/router"
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// ActionIDApprovalPrefix starts the ActionID of the core's own approval
// buttons: "chima.approval:approve" and "chima.approval:deny", whose Value
// is the request's id.
const ActionIDApprovalPrefix = "chima.approval:"

// asking is a command that is about to wait for approval.
type asking struct {
	m         chat.Message
	roomName  string
	res       router.Result
	shown     string // the command text with secrets masked
	requestID string
	out       *replier
	via       *click
}

// ask stores the command of a as an approval request and asks for it; it
// returns the audit outcome ("approval") and detail.
func (b *Bot) ask(ctx context.Context, a asking, approvers []string, count int, ttl time.Duration, reason string, confirm bool) (string, string) {
	if b.o.Approvals == nil {
		a.out.send(ctx, chat.Output{Text: "Sorry, `" + a.shown + "` needs approval, and this bot keeps no approvals (it has no store).", Status: "warning"}, false)
		return "refused", "needs approval; no approvals without a store"
	}
	req := store.ApprovalRequest{
		Plugin: a.res.Plugin, Command: a.res.Command.GetName(), Args: a.res.Args, Text: a.shown,
		RequesterAdapter: a.m.Ref.Adapter, RequesterUser: a.m.User.ID, RequesterName: a.m.User.Name,
		Adapter: a.m.Ref.Adapter, Room: a.m.Ref.Room, RoomName: a.roomName, ThreadID: a.m.Ref.ThreadID,
		MessageID: a.m.Ref.MessageID, Direct: a.m.Direct,
		Approvers: approvers, Count: count, Reason: reason, Confirm: confirm, RequestID: a.requestID,
	}
	r, err := b.o.Approvals.Request(ctx, req, ttl)
	if err != nil {
		b.log.Error("store an approval request", "command", req.Command, "error", err)
		text := "⚠ `" + a.shown + "` needs approval, and I could not ask for it; the bot's log says why."
		if errors.Is(err, approvals.ErrUnknownApprover) || errors.Is(err, approvals.ErrNoApprovers) {
			text = "⚠ `" + a.shown + "` needs approval, and I cannot ask for it: " + err.Error() + ". Ask an operator to fix the approvers in chima.yaml or the plugin's settings."
		}
		a.out.send(ctx, chat.Output{Text: text, Status: "danger"}, false)
		return "error", err.Error()
	}
	a.out.send(ctx, b.askOutput(r), false)
	if _, byPlugin := b.runDepth.Load(a.requestID); byPlugin {
		b.pluginRunApprovals.Store(a.requestID, r.ID) // for RunCommand's answer
	}
	if !confirm {
		b.askByDirectMessage(ctx, r)
	}
	detail := fmt.Sprintf("approval %d requested", r.ID)
	if confirm {
		detail += "; the requester must confirm"
	} else {
		detail += "; approvers: " + strings.Join(r.Approvers, ", ")
	}
	if reason != "" {
		detail += "; " + reason
	}
	return "approval", detail
}

// askFromPlugin asks for the approval a plugin's ApprovalNeeded wants: its
// approvers, else those of the command's policy.
func (b *Bot) askFromPlugin(ctx context.Context, a asking, need *pluginv1.ApprovalNeeded) (string, string) {
	approvers, count := need.GetApprovers(), int(need.GetCount())
	ttl := time.Duration(need.GetTtlSeconds()) * time.Second
	if len(approvers) == 0 && !need.GetConfirm() {
		if p := b.o.Policy.ApprovalFor(a.res.Plugin, a.res.Command.GetName()); p != nil {
			approvers = p.Approvers
			if count == 0 {
				count = p.Count
			}
			if ttl == 0 {
				ttl = p.TTL
			}
		}
	}
	reason := need.GetReason()
	if reason == "" {
		reason = "the " + a.res.Plugin + " plugin asks for it"
	}
	return b.ask(ctx, a, approvers, count, ttl, reason, need.GetConfirm())
}

// askOutput is the message that asks for approval of r.
func (b *Bot) askOutput(r store.ApprovalRequest) chat.Output {
	id := strconv.FormatInt(r.ID, 10)
	approve, deny := b.o.Name+" approve "+id, b.o.Name+" deny "+id+" <reason>"
	out := chat.Output{Status: "warning"}
	expires := r.ExpiresAt.UTC().Format("15:04 MST")
	if r.Confirm {
		out.Title = "Please confirm (request " + id + ")"
		out.Text = fmt.Sprintf("%s, do you want to run `%s`? %s.\nIt expires at %s.", r.RequesterName, r.Text, strings.TrimSuffix(r.Reason, "."), expires)
		out.Buttons = []chat.Button{
			{Label: "Confirm", Command: approve, Style: "primary", ActionID: ActionIDApprovalPrefix + "approve", Value: id},
			{Label: "Cancel", Command: deny, Style: "danger", ActionID: ActionIDApprovalPrefix + "deny", Value: id},
		}
		out.Fallback = fmt.Sprintf("%s\n%s\nType `%s` to confirm, or `%s` to cancel.", out.Title, out.Text, approve, deny)
		return out
	}
	out.Title = "Approval needed (request " + id + ")"
	need := "one approval"
	if r.Count > 1 {
		need = strconv.Itoa(r.Count) + " approvals"
	}
	out.Text = fmt.Sprintf("%s asks to run `%s`: %s.\nWho may approve: %s (%s needed, not the requester's). It expires at %s.",
		who(r.Requester, r.RequesterName), r.Text, strings.TrimSuffix(r.Reason, "."), strings.Join(r.Approvers, ", "), need, expires)
	out.Buttons = []chat.Button{
		{Label: "Approve", Command: approve, Style: "primary", ActionID: ActionIDApprovalPrefix + "approve", Value: id},
		{Label: "Deny", Command: deny, Style: "danger", ActionID: ActionIDApprovalPrefix + "deny", Value: id},
	}
	out.Fallback = fmt.Sprintf("%s\n%s\nType `%s` or `%s`.", out.Title, out.Text, approve, deny)
	return out
}

// who names a requester or voter for people: the person, or the account's
// name.
func who(identity, name string) string {
	if strings.Contains(identity, ":") && name != "" {
		return name
	}
	return identity
}

// askByDirectMessage sends the ask to each approver's accounts on the
// adapters that have direct messages, but not to the requester's.
func (b *Bot) askByDirectMessage(ctx context.Context, r store.ApprovalRequest) {
	out := b.askOutput(r)
	out.Text += fmt.Sprintf("\nAsked in %s.", roomLabel(r.Adapter, r.Room, r.RoomName))
	out.Fallback = ""
	for _, acct := range b.o.Policy.ApproverAccounts(r.Approvers) {
		adapter, user, ok := strings.Cut(acct, ":")
		a := b.adapters[adapter]
		dm, can := a.(chat.DirectMessenger)
		if !ok || a == nil || !can || b.o.Approvals.Identity(adapter, user) == r.Requester {
			continue
		}
		to, err := dm.OpenDirect(ctx, user)
		if err != nil {
			b.log.Warn("ask an approver by direct message", "adapter", adapter, "user", user, "approval", r.ID, "error", err)
			continue
		}
		if _, err := b.deliver(ctx, a, b.caps[adapter], to, out); err != nil {
			b.log.Warn("ask an approver by direct message", "adapter", adapter, "user", user, "approval", r.ID, "error", err)
		}
	}
}

func roomLabel(adapter, room, name string) string {
	if name != "" {
		room = name
	}
	return adapter + ":" + room
}

// voteFrom is where a vote came from: a typed approve/deny (m) or a click
// (via), with the replier that answers there.
type voteFrom struct {
	m   chat.Message
	out *replier
	via *click
}

// tell answers the voter where they voted (only them, for a click where
// the adapter can).
func (b *Bot) tellVoter(ctx context.Context, f voteFrom, o chat.Output) {
	if f.via != nil {
		b.tellClicker(ctx, f.via.in, f.out, o)
		return
	}
	f.out.send(ctx, o, false)
}

// vote records an approval or a denial of request id by the author of f,
// tells the request's room, runs the command once approved, and returns the
// vote's audit outcome and detail.
//
// The run, when the vote approves, takes the vote's requestID: its jobs are
// the vote's (chima send waits for them).
func (b *Bot) vote(ctx context.Context, f voteFrom, id int64, approve bool, reason, requestID string) (string, string) {
	if b.o.Approvals == nil {
		b.tellVoter(ctx, f, chat.Output{Text: "Sorry, this bot keeps no approvals.", Status: "warning"})
		return "rejected", "no approvals without a store"
	}
	v := approvals.Voter{Adapter: f.m.Ref.Adapter, UserID: f.m.User.ID, UserName: f.m.User.Name}
	var r store.ApprovalRequest
	var err error
	if approve {
		r, err = b.o.Approvals.Approve(ctx, id, v, reason)
	} else {
		r, err = b.o.Approvals.Deny(ctx, id, v, reason)
	}
	verb := map[bool]string{true: "approve", false: "deny"}[approve]
	if err != nil {
		if sentence := approvals.Refusal(err); sentence != "" {
			b.tellVoter(ctx, f, chat.Output{Text: fmt.Sprintf("Sorry, I cannot let you %s request %d: %s", verb, id, sentence), Status: "warning"})
			return "refused", fmt.Sprintf("approval %d: %s", id, err.Error())
		}
		b.log.Error("record a vote on an approval request", "approval", id, "error", err)
		b.tellVoter(ctx, f, chat.Output{Text: "⚠ I could not record that; the bot's log says why.", Status: "danger"})
		return "error", fmt.Sprintf("approval %d: %s", id, err.Error())
	}
	voter := who(b.o.Approvals.Identity(v.Adapter, v.UserID), v.UserName)
	var text string
	switch {
	case r.State == store.ApprovalDenied && b.o.Approvals.Identity(v.Adapter, v.UserID) == r.Requester:
		text = fmt.Sprintf("%s withdrew request %d (`%s`)", voter, id, r.Text)
	case r.State == store.ApprovalDenied:
		text = fmt.Sprintf("%s denied request %d (`%s`)", voter, id, r.Text)
	case r.Confirm:
		text = fmt.Sprintf("%s confirmed request %d; running `%s`.", voter, id, r.Text)
	case r.State == store.ApprovalApproved:
		text = fmt.Sprintf("%s approved request %d; running `%s` for %s.", voter, id, r.Text, who(r.Requester, r.RequesterName))
	default:
		text = fmt.Sprintf("%s approved request %d (%d of %d approvals).", voter, id, len(r.Approvals()), r.Count)
	}
	if r.State == store.ApprovalDenied && reason != "" {
		text += ": " + reason
	}
	status := "good"
	if r.State == store.ApprovalDenied {
		status = "warning"
	}
	room := b.requestReplier(r)
	room.send(ctx, chat.Output{Text: text, Status: status}, false)
	if f.m.Ref.Adapter != r.Adapter || f.m.Ref.Room != r.Room {
		b.tellVoter(ctx, f, chat.Output{Text: fmt.Sprintf("Noted: you %sd request %d. I said so in %s.", verb, id, roomLabel(r.Adapter, r.Room, r.RoomName))})
	}
	detail := fmt.Sprintf("approval %d: %sd by %s", id, verb, b.o.Approvals.Identity(v.Adapter, v.UserID))
	if reason != "" {
		detail += ": " + reason
	}
	if r.State == store.ApprovalApproved {
		b.runApproval(ctx, r, requestID)
	}
	return "ok", detail
}

// requestReplier answers in r's room and thread, as its command would.
func (b *Bot) requestReplier(r store.ApprovalRequest) *replier {
	return b.newReplier(chat.Message{
		Ref:    chat.MessageRef{Adapter: r.Adapter, Room: r.Room, MessageID: r.MessageID, ThreadID: r.ThreadID},
		User:   chat.User{ID: r.RequesterUser, Name: r.RequesterName},
		Direct: r.Direct,
	})
}

// runApproval claims the run of the approved request r and, when this
// call won it, runs its command: as stored, as the requester, in its room
// and thread, with CommandRequest.approval set, audited with Via "approval
// <id>: …", under requestID ("" for a new one).
func (b *Bot) runApproval(ctx context.Context, r store.ApprovalRequest, requestID string) {
	won, err := b.o.Approvals.Claim(ctx, r.ID)
	if err != nil {
		b.log.Error("claim the run of an approved request", "approval", r.ID, "error", err)
		return
	}
	if !won {
		return // another approval, or another process, runs it
	}
	b.inflight.Add(1)
	defer b.inflight.Done()
	start := time.Now()
	b.o.Metrics.InFlight.Inc()
	defer b.o.Metrics.InFlight.Dec()
	if requestID == "" {
		requestID = b.newRequestID()
	}
	out := b.requestReplier(r)
	entry := store.AuditEntry{
		Time: start, RequestID: requestID, Adapter: r.Adapter, Room: r.Room,
		UserID: r.RequesterUser, UserName: r.RequesterName, Text: r.Text,
		Plugin: r.Plugin, Command: r.Command, Via: approvalVia(r),
	}
	entry.Outcome, entry.Detail = b.runApproved(ctx, r, requestID, out, &entry)
	entry.Duration = time.Since(start)
	b.o.Metrics.Commands.WithLabelValues(r.Plugin, entry.Outcome).Inc()
	b.o.Metrics.Dispatch.WithLabelValues(r.Plugin).Observe(entry.Duration.Seconds())
	b.auditEnd(entry)
}

// approvalVia is the run's AuditEntry.Via: the request, its requester and
// approvers, with times.
func approvalVia(r store.ApprovalRequest) string {
	const t = "2006-01-02T15:04:05Z"
	var by []string
	for _, v := range r.Approvals() {
		by = append(by, v.Voter+" at "+v.At.UTC().Format(t))
	}
	verb := "approved by "
	if r.Confirm {
		verb = "confirmed by "
	}
	return fmt.Sprintf("approval %d: asked by %s at %s, %s%s", r.ID, r.Requester, r.CreatedAt.UTC().Format(t), verb, strings.Join(by, ", "))
}

// runApproved checks the requester against the policy again (their role
// may be gone) and calls the plugin; it returns the audit outcome.
func (b *Bot) runApproved(ctx context.Context, r store.ApprovalRequest, requestID string, out *replier, entry *store.AuditEntry) (string, string) {
	cmd := b.commandSpec(r.Plugin, r.Command)
	if cmd == nil {
		out.send(ctx, chat.Output{Text: fmt.Sprintf("⚠ Request %d was approved, but `%s` cannot run now: the %s plugin has no %s command (is it running?).", r.ID, r.Text, r.Plugin, r.Command), Status: "danger"}, false)
		return "unavailable", "no command " + r.Plugin + "/" + r.Command
	}
	ref := chat.MessageRef{Adapter: r.Adapter, Room: r.Room, MessageID: r.MessageID, ThreadID: r.ThreadID}
	dec := b.o.Policy.Check(policy.Request{
		Adapter: r.RequesterAdapter, Room: r.Room, RoomName: r.RoomName, UserID: r.RequesterUser,
		Plugin: r.Plugin, Command: r.Command, Permission: cmd.GetPermission(), Direct: r.Direct, Args: r.Args,
	})
	if !dec.Allowed {
		out.send(ctx, chat.Output{Text: fmt.Sprintf("Sorry, request %d was approved, but %s", r.ID, dec.Reason), Status: "warning"}, false)
		return "denied", dec.Reason
	}
	if !b.decide(ctx, entry, func(o chat.Output) { out.send(ctx, o, false) }) {
		return "error", errAuditDown
	}
	out.plugin = r.Plugin
	grant := &pluginv1.Approval{Id: r.ID, Requester: r.Requester, RequestedUnix: r.CreatedAt.Unix(), Confirmation: r.Confirm}
	for _, v := range r.Approvals() {
		grant.Approvers = append(grant.Approvers, v.Voter)
		grant.ApprovedUnix = v.At.Unix()
	}
	call := &pluginv1.Call{Kind: &pluginv1.Call_Command{Command: &pluginv1.CommandRequest{
		RequestId: requestID,
		Command:   cmd.GetName(),
		Args:      r.Args,
		User:      &pluginv1.User{Id: r.RequesterUser, Name: r.RequesterName, Roles: dec.Roles, Person: dec.Person},
		Message:   refToProtoNamed(ref, r.RoomName),
		Text:      r.Text,
		Direct:    r.Direct,
		Approval:  grant,
	}}}
	outcome, detail := b.callPlugin(ctx, r.Plugin, cmd.GetName(), call, "`"+r.Text+"`", requestID, out)
	if out.needed != nil && outcome == "ok" {
		// Approved, and the plugin asks again: never a loop of requests.
		b.log.Error("plugin asked for approval of an approved command", "plugin", r.Plugin, "command", r.Command, "approval", r.ID)
		out.send(ctx, chat.Output{Text: fmt.Sprintf("⚠ The %s plugin asked for approval of `%s` again, though request %d approved it; nothing more runs.", r.Plugin, r.Text, r.ID), Status: "danger"}, false)
		return "error", "the plugin asked for approval of an approved command"
	}
	return outcome, detail
}

// commandSpec is plugin's declaration of command, or nil.
func (b *Bot) commandSpec(plugin, command string) *pluginv1.CommandSpec {
	for _, c := range b.o.Plugins.Manifest(plugin).GetCommands() {
		if strings.EqualFold(c.GetName(), command) {
			return c
		}
	}
	return nil
}

// processApprovalClick handles a click on an approval button and audits it.
func (b *Bot) processApprovalClick(ctx context.Context, in chat.Interaction, requestID string) string {
	start := time.Now()
	c := &click{in: in}
	verb := strings.TrimPrefix(in.ActionID, ActionIDApprovalPrefix)
	entry := store.AuditEntry{
		Time: start, RequestID: requestID, Adapter: in.Ref.Adapter, Room: in.Ref.Room,
		UserID: in.User.ID, UserName: in.User.Name, Text: clip(in.Value, MaxButtonValueBytes),
		Command: verb, Via: c.audit(),
	}
	m := chat.Message{Ref: in.Ref, User: in.User, Direct: in.Direct, Time: in.Time}
	out := b.newReplier(m)
	id, err := strconv.ParseInt(in.Value, 10, 64)
	switch {
	case err != nil || (verb != "approve" && verb != "deny"):
		entry.Outcome, entry.Detail = b.answerStale(ctx, in, out, fmt.Sprintf("approval button %q with value %q", clip(in.ActionID, 80), clip(in.Value, 80)))
	default:
		reason := ""
		if verb == "deny" {
			reason = "denied with the button"
		}
		entry.Outcome, entry.Detail = b.vote(ctx, voteFrom{m: m, out: out, via: c}, id, verb == "approve", reason, requestID)
	}
	entry.Duration = time.Since(start)
	b.o.Metrics.Commands.WithLabelValues("core", entry.Outcome).Inc()
	b.audit.record(entry)
	return entry.Outcome
}

// listApprovals answers the built-in approvals command.
func (b *Bot) listApprovals(ctx context.Context) chat.Output {
	if b.o.Approvals == nil {
		return chat.Output{Text: "This bot keeps no approvals."}
	}
	list, err := b.o.Approvals.Pending(ctx)
	if err != nil {
		b.log.Error("list approval requests", "error", err)
		return chat.Output{Text: "⚠ I could not list the approval requests; the bot's log says why.", Status: "danger"}
	}
	if len(list) == 0 {
		return chat.Output{Text: "No command is waiting for approval."}
	}
	var s strings.Builder
	for _, r := range list {
		fmt.Fprintf(&s, "#%d `%s` asked by %s in %s", r.ID, r.Text, who(r.Requester, r.RequesterName), roomLabel(r.Adapter, r.Room, r.RoomName))
		if r.Confirm {
			s.WriteString(", waiting for their confirmation")
		} else {
			fmt.Fprintf(&s, ", %d of %d approvals from %s", len(r.Approvals()), r.Count, strings.Join(r.Approvers, ", "))
		}
		fmt.Fprintf(&s, ", expires %s\n", r.ExpiresAt.UTC().Format("15:04 MST"))
	}
	fmt.Fprintf(&s, "Say `%s approve <id>` or `%s deny <id> <reason>`.", b.o.Name, b.o.Name)
	return chat.Output{Title: "Waiting for approval", Text: s.String()}
}

// runApprovals runs, until ctx ends, what approvals need beside the
// adapters: first the requests approved whose run the last process did not
// claim, then the sweeper of expired requests.
func (b *Bot) runApprovals(ctx context.Context) {
	approved, err := b.o.Approvals.Approved(ctx)
	if err != nil {
		b.log.Error("list approved requests not yet run", "error", err)
	}
	for _, r := range approved {
		b.log.Warn("running an approved request the last process did not run", "approval", r.ID)
		b.runApproval(ctx, r, "")
	}
	b.o.Approvals.Sweep(ctx, b.o.ApprovalSweep, b.log, b.approvalExpired)
}

// approvalExpired tells r's room that it expired, and audits it.
func (b *Bot) approvalExpired(ctx context.Context, r store.ApprovalRequest) {
	out := b.requestReplier(r)
	out.send(ctx, chat.Output{Text: fmt.Sprintf("Request %d (`%s`, asked by %s) expired without approval; nothing ran.",
		r.ID, r.Text, who(r.Requester, r.RequesterName)), Status: "warning"}, false)
	b.audit.record(store.AuditEntry{
		Time: time.Now(), RequestID: r.RequestID, Adapter: r.Adapter, Room: r.Room,
		UserID: r.RequesterUser, UserName: r.RequesterName, Text: r.Text, Plugin: r.Plugin, Command: "approval",
		Outcome: "expired", Detail: fmt.Sprintf("approval %d expired at %s", r.ID, r.ExpiresAt.UTC().Format(time.RFC3339)),
		Via: fmt.Sprintf("approval %d", r.ID),
	})
}
