package sdktest

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// errButton marks a button the host would refuse (Post, Update) or leave
// out (replies, progress).
var errButton = errors.New("the host would refuse this button")

// checkButtons checks o's buttons as the host does before it shows them:
// each runs a command or one of the plugin's declared actions, and an
// action's value fits in a chat service's button.
func checkButtons(o *sdk.Output, declared func(action string) bool) error {
	if o == nil {
		return nil
	}
	for i, b := range o.Buttons {
		if b == nil {
			continue
		}
		var why string
		switch cmd, action := strings.TrimSpace(b.Command), b.Action; {
		case cmd != "" && action == "" && b.Value != "":
			why = "a value is for action buttons"
		case cmd == "" && action == "":
			why = "it needs a command or an action"
		case action != "" && !declared(action):
			why = fmt.Sprintf("the plugin declares no action %q (Plugin.Actions)", action)
		case len(b.Value) > sdk.MaxButtonValue:
			why = fmt.Sprintf("its value is %d bytes; at most %d fit", len(b.Value), sdk.MaxButtonValue)
		case len(cmd) > sdk.MaxButtonValue:
			why = fmt.Sprintf("its command is %d bytes; at most %d fit", len(cmd), sdk.MaxButtonValue)
		}
		if why != "" {
			return fmt.Errorf("%w: button %d (%q): %s", errButton, i+1, b.Label, why)
		}
	}
	return nil
}

// declares reports whether the plugin's manifest declares action.
func (h *Harness) declares(action string) bool {
	for _, a := range h.Manifest.GetActions() {
		if a.GetName() == action {
			return true
		}
	}
	return false
}

// Button returns the first button labelled label in the call's replies and
// progress, newest progress last, or nil.
func (r Result) Button(label string) *sdk.Button {
	outs := append([]*sdk.Output(nil), r.Replies...)
	for _, p := range r.Progress {
		outs = append(outs, p.Output)
	}
	for _, o := range outs {
		if b := ButtonOf(o, label); b != nil {
			return b
		}
	}
	return nil
}

// ButtonOf returns the button labelled label of o (a reply, or what the
// plugin posted: Host.Posts()[i].Output), or nil.
func ButtonOf(o *sdk.Output, label string) *sdk.Button {
	if o == nil {
		return nil
	}
	for _, b := range o.Buttons {
		if b != nil && b.Label == label {
			return b
		}
	}
	return nil
}

// Click clicks btn, one of the plugin's action buttons (sdk.ActionButton),
// as the harness's User on the message on (as Post returned it; nil for a
// message in the harness's Room), and returns what the plugin's Action said.
// It fails the test for a button the host would never deliver a click on:
// a command button (use ClickCommand), or an action the plugin does not
// declare.
func (h *Harness) Click(btn *sdk.Button, on *sdk.MessageRef) Result {
	h.t.Helper()
	switch {
	case btn == nil:
		h.t.Fatalf("click: no button (Result.Button found none with that label?)")
		return Result{}
	case btn.Action == "" && btn.Command != "":
		h.t.Fatalf("click %q: a command button runs its command through the host's parser; use ClickCommand with its parsed arguments", btn.Label)
	case !h.declares(btn.Action):
		h.t.Fatalf("click %q: the plugin declares no action %q, so the host would never deliver this click", btn.Label, btn.Action)
	}
	h.seq++
	if on == nil {
		on = &sdk.MessageRef{Adapter: "test", Room: h.Room, MessageID: "clicked-" + itoa(h.seq)}
	}
	stream, err := h.conn.Plugin.HandleInteraction(h.ctx(), &pluginv1.InteractionRequest{
		RequestId: h.requestID(), Action: btn.Action, Value: btn.Value,
		User: userToProto(h.User), Message: refToProto(on), ClickedUnix: time.Now().Unix(),
	})
	return h.collect(stream, err)
}

// ClickCommand runs command with args as Command does, but as the host runs
// a click on a command button (sdk.CommandButton) on the message on (nil for
// a message in the harness's Room): the handler's Context.Click is set.
func (h *Harness) ClickCommand(command string, args Args, on *sdk.MessageRef) Result {
	h.t.Helper()
	h.seq++
	if on == nil {
		on = &sdk.MessageRef{Adapter: "test", Room: h.Room, MessageID: "clicked-" + itoa(h.seq)}
	}
	req := &pluginv1.CommandRequest{
		RequestId: h.requestID(), Command: command, Args: args, User: userToProto(h.User), Message: refToProto(on),
		Button: clickToProto(&sdk.ButtonClick{Message: on, ClickedAt: time.Now()}),
	}
	stream, err := h.conn.Plugin.Handle(h.ctx(), req)
	return h.collect(stream, err)
}
