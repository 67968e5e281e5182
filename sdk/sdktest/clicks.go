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
func checkButtons(o *pluginv1.Output, declared func(action string) bool) error {
	for i, b := range o.GetButtons() {
		var why string
		switch cmd, action := strings.TrimSpace(b.GetCommand()), b.GetAction(); {
		case cmd != "" && action == "" && b.GetValue() != "":
			why = "a value is for action buttons"
		case cmd == "" && action == "":
			why = "it needs a command or an action"
		case action != "" && !declared(action):
			why = fmt.Sprintf("the plugin declares no action %q (Plugin.Actions)", action)
		case len(b.GetValue()) > sdk.MaxButtonValue:
			why = fmt.Sprintf("its value is %d bytes; at most %d fit", len(b.GetValue()), sdk.MaxButtonValue)
		case len(cmd) > sdk.MaxButtonValue:
			why = fmt.Sprintf("its command is %d bytes; at most %d fit", len(cmd), sdk.MaxButtonValue)
		}
		if why != "" {
			return fmt.Errorf("%w: button %d (%q): %s", errButton, i+1, b.GetLabel(), why)
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
func (r Result) Button(label string) *pluginv1.Button {
	outs := append([]*pluginv1.Output(nil), r.Replies...)
	for _, p := range r.Progress {
		outs = append(outs, p.GetOutput())
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
func ButtonOf(o *pluginv1.Output, label string) *pluginv1.Button {
	for _, b := range o.GetButtons() {
		if b.GetLabel() == label {
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
func (h *Harness) Click(btn *pluginv1.Button, on *pluginv1.MessageRef) Result {
	h.t.Helper()
	switch {
	case btn == nil:
		h.t.Fatalf("click: no button (Result.Button found none with that label?)")
	case btn.GetAction() == "" && btn.GetCommand() != "":
		h.t.Fatalf("click %q: a command button runs its command through the host's parser; use ClickCommand with its parsed arguments", btn.GetLabel())
	case !h.declares(btn.GetAction()):
		h.t.Fatalf("click %q: the plugin declares no action %q, so the host would never deliver this click", btn.GetLabel(), btn.GetAction())
	}
	h.seq++
	if on == nil {
		on = &pluginv1.MessageRef{Adapter: "test", Room: h.Room, MessageId: "clicked-" + itoa(h.seq)}
	}
	stream, err := h.conn.Plugin.HandleInteraction(h.ctx(), &pluginv1.InteractionRequest{
		RequestId: h.requestID(), Action: btn.GetAction(), Value: btn.GetValue(),
		User: h.User, Message: on, ClickedUnix: time.Now().Unix(),
	})
	return h.collect(stream, err)
}

// ClickCommand runs command with args as Command does, but as the host runs
// a click on a command button (sdk.CommandButton) on the message on (nil for
// a message in the harness's Room): the handler's Context.Click is set.
func (h *Harness) ClickCommand(command string, args Args, on *pluginv1.MessageRef) Result {
	h.t.Helper()
	h.seq++
	if on == nil {
		on = &pluginv1.MessageRef{Adapter: "test", Room: h.Room, MessageId: "clicked-" + itoa(h.seq)}
	}
	req := &pluginv1.CommandRequest{
		RequestId: h.requestID(), Command: command, Args: args, User: h.User, Message: on,
		Button: &pluginv1.ButtonClick{Message: on, ClickedUnix: time.Now().Unix()},
	}
	stream, err := h.conn.Plugin.Handle(h.ctx(), req)
	return h.collect(stream, err)
}
