package bot

import (
	"testing"

	"github.com/chimaops/chima/core/redact"
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// A plugin of protocol minor 8 may send only the enums (a future SDK that
// dropped the strings), one older than minor 8 sends only the strings; the
// host understands both, and prefers the enum when the two disagree.
func TestTheHostReadsAPluginsEnumsAndFallsBackToItsStrings(t *testing.T) {
	type read struct{ outcome, status, style string }
	tests := []struct {
		name string
		done *pluginv1.Done
		out  *pluginv1.Output
		want read
	}{
		{"a plugin sending only the enums",
			&pluginv1.Done{OutcomeCode: pluginv1.Outcome_OUTCOME_ERROR},
			&pluginv1.Output{StatusCode: pluginv1.Status_STATUS_DANGER, Buttons: []*pluginv1.Button{{Label: "Go", Command: "go", StyleCode: pluginv1.ButtonStyle_BUTTON_STYLE_PRIMARY}}},
			read{"error", "danger", "primary"}},
		{"an older plugin sending only the strings",
			&pluginv1.Done{Outcome: "cancelled"},
			&pluginv1.Output{Status: "warning", Buttons: []*pluginv1.Button{{Label: "Go", Command: "go", Style: "danger"}}},
			read{"cancelled", "warning", "danger"}},
		{"a plugin sending both, which disagree: the enum wins",
			&pluginv1.Done{Outcome: "failure", OutcomeCode: pluginv1.Outcome_OUTCOME_SUCCESS},
			&pluginv1.Output{Status: "info", StatusCode: pluginv1.Status_STATUS_GOOD, Buttons: []*pluginv1.Button{{Label: "Go", Command: "go", Style: "danger", StyleCode: pluginv1.ButtonStyle_BUTTON_STYLE_PRIMARY}}},
			read{"success", "good", "primary"}},
		{"an enum value newer than this host: the string beside it",
			&pluginv1.Done{Outcome: "failure", OutcomeCode: pluginv1.Outcome(42)},
			&pluginv1.Output{Status: "info", StatusCode: pluginv1.Status(42), Buttons: []*pluginv1.Button{{Label: "Go", Command: "go", Style: "danger", StyleCode: pluginv1.ButtonStyle(42)}}},
			read{"failure", "info", "danger"}},
		{"a command's call that went well: nothing at all",
			&pluginv1.Done{},
			&pluginv1.Output{Buttons: []*pluginv1.Button{{Label: "Go", Command: "go"}}},
			read{"", "", ""}},
	}
	b := New(Options{Redactor: redact.New()})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			streamed := b.streamedOutput("", tt.out)
			posted, err := b.pluginOutput("", tt.out)
			if err != nil {
				t.Fatalf("post: %v", err)
			}
			got := read{doneOutcome(tt.done), streamed.Status, streamed.Buttons[0].Style}
			if got != tt.want {
				t.Errorf("read %+v, want %+v", got, tt.want)
			}
			if posted.Status != tt.want.status || posted.Buttons[0].Style != tt.want.style {
				t.Errorf("posted output read as status %q, style %q; want %q, %q", posted.Status, posted.Buttons[0].Style, tt.want.status, tt.want.style)
			}
		})
	}
}

// What the host sends a plugin carries each value twice: an older plugin
// reads the string, a newer one the enum.
func TestTheHostSendsBothTheEnumAndTheString(t *testing.T) {
	tests := []struct {
		outcome string
		want    pluginv1.CommandOutcome
	}{
		{"ok", pluginv1.CommandOutcome_COMMAND_OUTCOME_OK},
		{"denied", pluginv1.CommandOutcome_COMMAND_OUTCOME_DENIED},
		{"error", pluginv1.CommandOutcome_COMMAND_OUTCOME_ERROR},
		{"unknown", pluginv1.CommandOutcome_COMMAND_OUTCOME_UNKNOWN},
		{"approval", pluginv1.CommandOutcome_COMMAND_OUTCOME_APPROVAL},
	}
	for _, tt := range tests {
		t.Run(tt.outcome, func(t *testing.T) {
			r := &pluginv1.RunCommandResponse{}
			setCommandOutcome(r, tt.outcome)
			if r.GetOutcome() != tt.outcome || r.GetOutcomeCode() != tt.want {
				t.Errorf("RunCommand's outcome %q sent as %q and %v; want both", tt.outcome, r.GetOutcome(), r.GetOutcomeCode())
			}
		})
	}
	states := []struct {
		state string
		want  pluginv1.JobState
	}{
		{"queued", pluginv1.JobState_JOB_STATE_QUEUED},
		{"interrupted", pluginv1.JobState_JOB_STATE_INTERRUPTED},
	}
	for _, st := range states {
		if got := jobStateCode(store.JobState(st.state)); got != st.want {
			t.Errorf("job state %q sent as %v, want %v", st.state, got, st.want)
		}
		if got := jobStateName(st.want); got != st.state {
			t.Errorf("job state %v read as %q, want %q", st.want, got, st.state)
		}
	}
}
