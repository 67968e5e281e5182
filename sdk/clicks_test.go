package sdk_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/sdktest"
)

// clicky offers a command that posts both kinds of button, and an action
// that says what it was handed.
func clicky() *sdk.Plugin {
	return &sdk.Plugin{
		Name: "clicky",
		Commands: []sdk.Command{
			{Name: "offer", Run: func(c *sdk.Context) error {
				return c.ReplyOutput(&sdk.Output{Text: "pick", Buttons: []*sdk.Button{
					sdk.ActionButton("Stop", "stop", "job-7", "danger"),
					sdk.CommandButton("Again", "offer"),
				}})
			}},
			{Name: "who", Run: func(c *sdk.Context) error {
				if cl := c.Click(); cl != nil {
					return c.Reply("clicked by %s on %s", c.User().ID, cl.Message.MessageID)
				}
				return c.Reply("typed by %s", c.User().ID)
			}},
			{Name: "post-undeclared", Run: func(c *sdk.Context) error {
				_, err := c.Post(c.Source(), &sdk.Output{Text: "x", Buttons: []*sdk.Button{sdk.ActionButton("Nope", "nope", "", "")}})
				return err
			}},
		},
		Actions: []sdk.Action{
			{Name: "stop", Help: "stops a job", Command: "offer", Run: func(c *sdk.Context) error {
				cl := c.Click()
				return c.Reply("stop %s by %s on %s in %s", c.ButtonValue(), c.User().ID, cl.Message.MessageID, c.Source().Room)
			}},
			{Name: "refuse", Permission: "admin", Run: func(c *sdk.Context) error {
				return sdk.Errorf("Job %s already finished.", c.ButtonValue())
			}},
		},
	}
}

func TestManifestDeclaresActions(t *testing.T) {
	h := sdktest.New(t, clicky())
	var got []string
	for _, a := range h.Manifest.GetActions() {
		got = append(got, a.GetName()+"|"+a.GetHelp()+"|"+a.GetCommand()+"|"+a.GetPermission())
	}
	want := []string{"stop|stops a job|offer|", "refuse|||admin"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("manifest actions = %q, want %q", got, want)
	}
}

func TestButtonConstructorsMakeTheTwoKindsOfButton(t *testing.T) {
	tests := []struct {
		name string
		got  *sdk.Button
		want *sdk.Button
	}{
		{"an action button carries its action, value and style", sdk.ActionButton("Cancel", "cancel", "42", sdk.ButtonDanger),
			&sdk.Button{Label: "Cancel", Action: "cancel", Value: "42", Style: sdk.ButtonDanger}},
		{"a command button carries only its command", sdk.CommandButton("Status", "deploy:status 42"),
			&sdk.Button{Label: "Status", Command: "deploy:status 42"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if *tt.got != *tt.want {
				t.Errorf("button = %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestClickReachesTheActionWithValueUserAndMessage(t *testing.T) {
	h := sdktest.New(t, clicky())
	h.User = &sdk.User{ID: "bob", Name: "Bob"}
	offer := h.Command("offer", nil)
	res := h.Click(offer.Button("Stop"), &sdk.MessageRef{Adapter: "test", Room: "ops", MessageID: "b9"})
	if got, want := res.Text(), "stop job-7 by bob on b9 in ops"; got != want {
		t.Errorf("click = %q, want %q", got, want)
	}
	if res.Done.Outcome != "" {
		t.Errorf("click ended %q, want a command's empty outcome", res.Done.Outcome)
	}
}

func TestActionUserErrorReachesTheClicker(t *testing.T) {
	h := sdktest.New(t, clicky())
	res := h.Click(sdk.ActionButton("Refuse", "refuse", "7", ""), nil)
	if len(res.Errors) != 1 || res.Errors[0].Summary != "Job 7 already finished." {
		t.Errorf("errors = %v, want the action's user error", res.Errors)
	}
}

func TestClickMarkIsSetOnlyForClicks(t *testing.T) {
	tests := []struct {
		name string
		run  func(h *sdktest.Harness) sdktest.Result
		want string
	}{
		{"a typed command has no click", func(h *sdktest.Harness) sdktest.Result { return h.Command("who", nil) }, "typed by tester"},
		{"a command button's command has the click and its message", func(h *sdktest.Harness) sdktest.Result {
			return h.ClickCommand("who", nil, &sdk.MessageRef{Room: "test", MessageID: "b3"})
		}, "clicked by tester on b3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := sdktest.New(t, clicky())
			if got := tt.run(h).Text(); got != tt.want {
				t.Errorf("who = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUnknownActionOverTheWireEndsWithError(t *testing.T) {
	cl := dialPlugin(t, clicky())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := cl.HandleInteraction(ctx, &pluginv1.InteractionRequest{RequestId: "r1", Action: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	var last *pluginv1.Event
	for {
		ev, err := stream.Recv()
		if err != nil {
			break
		}
		last = ev
	}
	if last.GetDone().GetOutcome() != "error" {
		t.Errorf("last event = %v, want Done error", last)
	}
}

func TestInteractionRunsOverTheMultiplexStream(t *testing.T) {
	cl := dialPlugin(t, clicky())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := cl.Multiplex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pluginv1.Call{Id: 5, Kind: &pluginv1.Call_Interaction{Interaction: &pluginv1.InteractionRequest{
		RequestId: "r5", Action: "stop", Value: "v", User: &pluginv1.User{Id: "ann"},
		Message: &pluginv1.MessageRef{Room: "r", MessageId: "m"},
	}}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		ce, err := stream.Recv()
		if err != nil {
			t.Fatalf("recv: %v (so far %v)", err, got)
		}
		got = append(got, describe(ce.GetEvent()))
		if ce.GetEvent().GetDone() != nil {
			break
		}
	}
	if want := []string{"reply:stop v by ann on m in r", "done:"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events = %q, want %q", got, want)
	}
}

func TestFakeHostRefusesButtonsTheHostWouldRefuse(t *testing.T) {
	h := sdktest.New(t, clicky())
	res := h.Command("post-undeclared", nil)
	if res.Done.Outcome != "error" || !strings.Contains(res.Done.Detail, `declares no action "nope"`) {
		t.Errorf("done = %v, want the post refused for an undeclared action", res.Done)
	}
	if n := len(h.Host.Posts()); n != 0 {
		t.Errorf("%d posts recorded, want none", n)
	}
}
