package bot

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// MaxRunDepth is how deep commands run by plugins (Host.RunCommand) may
// nest: a command a plugin ran may run another, and so on, this many
// times. A plugin that runs itself forever is refused there, and the
// refusal is audited.
const MaxRunDepth = 4

// RunCommand runs a chat command for the plugin as a person (or account)
// chima.yaml lets it act as (plugins[].run_as), in a room: through the
// router, policy and audit of a typed command, audited with via "plugin
// <name>" and triggered_by the plugin. It returns once the command's
// handler is done, with its request id and outcome.
func (h *hostService) RunCommand(ctx context.Context, r *pluginv1.RunCommandRequest) (*pluginv1.RunCommandResponse, error) {
	return h.b.runForPlugin(ctx, h.plugin, r)
}

func (b *Bot) runForPlugin(ctx context.Context, plugin string, r *pluginv1.RunCommandRequest) (*pluginv1.RunCommandResponse, error) {
	// With or without the bot's name in front, as a button's command.
	text, _ := b.o.Router.Addressed(chat.Message{Text: r.GetText(), Direct: true})
	if strings.TrimSpace(text) == "" {
		return nil, status.Error(codes.InvalidArgument, "run command: the command is empty")
	}
	room := b.withAdapter(refFromProto(r.GetRoom()))
	if room.Room == "" {
		return nil, status.Error(codes.InvalidArgument, "run command: name the room it runs in")
	}
	if b.adapters[room.Adapter] == nil {
		if room.Adapter == "" {
			return nil, status.Errorf(codes.NotFound, "run command: room %q names no chat adapter, and there is no default adapter (bot.default_adapter)", room.Room)
		}
		return nil, status.Errorf(codes.NotFound, "run command: no chat adapter %q", room.Adapter)
	}
	if resolved, err := b.resolveRoom(ctx, room); err == nil {
		room = resolved
	} else {
		return nil, status.Errorf(codes.NotFound, "run command: %v", err)
	}
	trig := &trigger{via: "plugin " + plugin, by: plugin}
	if reason := strings.TrimSpace(r.GetReason()); reason != "" {
		trig.via += ": " + clip(reason, 200)
	}
	user, person, why, code := b.runAs(plugin, r.GetAs(), room.Adapter)
	refuse := func(code codes.Code, why string) error {
		b.audit.record(store.AuditEntry{
			Time: time.Now(), RequestID: b.newRequestID(), Adapter: room.Adapter, Room: room.Room,
			UserID: user.ID, UserName: user.Name, Person: person, Text: clip(text, 500),
			Outcome: "denied", Detail: why, Via: trig.via, TriggeredBy: plugin,
		})
		return status.Errorf(code, "run %q as %s: %s", clip(text, 80), r.GetAs(), why)
	}
	if why != "" {
		return nil, refuse(code, why)
	}
	depth := 1
	if d, ok := b.runDepth.Load(r.GetRequestId()); ok {
		depth = d.(int) + 1
	}
	if depth > MaxRunDepth {
		return nil, refuse(codes.ResourceExhausted, fmt.Sprintf("commands run by plugins nest %d deep at most; is the %s plugin running itself?", MaxRunDepth, plugin))
	}
	m := chat.Message{Ref: room, User: user, Text: text, Time: time.Now()}
	id := b.newRequestID()
	b.runDepth.Store(id, depth)
	defer b.runDepth.Delete(id)
	defer b.pluginRunApprovals.Delete(id)
	b.inflight.Add(1)
	defer b.inflight.Done()
	// Not in the person's turn (dispatch): the plugin's own command, which
	// waits for this one, may hold it.
	outcome, detail := b.process(context.WithoutCancel(ctx), m, text, id, nil, trig, false)
	resp := &pluginv1.RunCommandResponse{RequestId: id, Outcome: outcome, Detail: detail}
	switch outcome {
	case "ok", "denied":
	case "approval":
		if v, ok := b.pluginRunApprovals.Load(id); ok {
			resp.ApprovalId = v.(int64)
		}
	case "rejected":
		resp.Outcome = "unknown"
	default:
		resp.Outcome = "error"
		resp.Detail = outcome
		if detail != "" {
			resp.Detail += ": " + detail
		}
	}
	setCommandOutcome(resp, resp.Outcome)
	return resp, nil
}

// runAs works out whom plugin runs a command as when it asks for as, in a
// room of adapter: a person (their account on that adapter) or an
// account ("adapter:id") chima.yaml lets the plugin act as. why says why
// not, with the gRPC code to answer, when it may not.
func (b *Bot) runAs(plugin, as, adapter string) (user chat.User, person, why string, code codes.Code) {
	allowed := b.o.RunAs[plugin]
	as = strings.TrimSpace(as)
	if as == "" {
		return chat.User{}, "", "name the person or account to run it as", codes.InvalidArgument
	}
	notAllowed := func() string {
		if len(allowed) == 0 {
			return fmt.Sprintf("the %s plugin may not run commands as anyone (chima.yaml: plugins[].run_as of %s is empty)", plugin, plugin)
		}
		return fmt.Sprintf("the %s plugin may not run commands as %s (chima.yaml: plugins[].run_as of %s allows %s)", plugin, as, plugin, strings.Join(allowed, ", "))
	}
	if acctAdapter, id, ok := strings.Cut(as, ":"); ok {
		person = b.o.Policy.Person(acctAdapter, id)
		user = chat.User{ID: id, Name: id}
		if !slices.Contains(allowed, as) && (person == "" || !slices.Contains(allowed, person)) {
			return user, person, notAllowed(), codes.PermissionDenied
		}
		if acctAdapter != adapter {
			return user, person, fmt.Sprintf("%s is an account of %s; the room is on %s", as, acctAdapter, adapter), codes.InvalidArgument
		}
		return user, person, "", codes.OK
	}
	if !b.o.Policy.IsPerson(as) {
		// Not a person: perhaps an id of the room's adapter; never
		// allowed unless listed as such (and then it has a colon).
		return chat.User{ID: as, Name: as}, "", notAllowed(), codes.PermissionDenied
	}
	if !slices.Contains(allowed, as) {
		return chat.User{Name: as}, as, notAllowed(), codes.PermissionDenied
	}
	id, ok := b.o.Policy.Account(as, adapter)
	if !ok {
		return chat.User{Name: as}, as, fmt.Sprintf("%s has no account on %s (people: in chima.yaml)", as, adapter), codes.FailedPrecondition
	}
	return chat.User{ID: id, Name: as}, as, "", codes.OK
}
