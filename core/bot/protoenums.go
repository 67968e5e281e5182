package bot

import (
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

// The host's one place for the protocol's fields that carry a fixed set of
// values, since minor 8 sent twice: as an enum and as the string it
// supersedes. What a plugin sends is read from the enum when it is set and
// known, else from the string (a plugin older than minor 8 sends only the
// string); what the host sends carries both (a plugin older than minor 8
// reads only the string). The pairs are sdk/wire's, which the Go SDK uses
// too.

// doneOutcome is how a plugin says its call ended ("success", "error"; ""
// for a command that went as it should).
func doneOutcome(d *pluginv1.Done) string {
	return wire.OutcomeName(d.GetOutcomeCode(), d.GetOutcome())
}

// outputStatus is the status hint of an output a plugin sent ("good").
func outputStatus(o *pluginv1.Output) string {
	return wire.StatusName(o.GetStatusCode(), o.GetStatus())
}

// buttonStyle is the style of a button a plugin sent ("primary").
func buttonStyle(b *pluginv1.Button) string {
	return wire.ButtonStyleName(b.GetStyleCode(), b.GetStyle())
}

// setCommandOutcome sets the audit outcome of a command run for a plugin
// (RunCommand), as the string and as the enum.
func setCommandOutcome(r *pluginv1.RunCommandResponse, outcome string) {
	r.Outcome, r.OutcomeCode = outcome, wire.CommandOutcomeCode(outcome)
}

// jobStateCode is a job state as the protocol's enum, which the host sets
// beside the name.
func jobStateCode(st store.JobState) pluginv1.JobState {
	return wire.JobStateCode(string(st))
}

// jobStateName is the state name of a protocol enum, "" for none or for a
// value this build does not know.
func jobStateName(c pluginv1.JobState) string {
	return wire.JobStateName(c, "")
}
