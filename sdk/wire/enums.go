package wire

import (
	"strings"

	"github.com/chimaops/chima/sdk/pluginv1"
)

// Since protocol minor 8 each field with a fixed set of values travels
// twice: as its old string ("good", "success") and as an enum beside it
// (STATUS_GOOD, OUTCOME_SUCCESS). An enum value's name is its enum's prefix
// and the string in upper case, so one rule maps the two both ways. The
// host and the SDK both convert with these functions, so the pairs are
// written down once: a sender sets both, a receiver prefers the enum and
// falls back to the string (an older peer sends only the string).

// enum maps one protocol enum's values to their strings and back, both
// tables built once, so that converting a reply on the dispatch path costs
// two map lookups and no allocation.
type enum[E ~int32] struct {
	code map[string]E // "good" → STATUS_GOOD; 0 (UNSPECIFIED or DEFAULT) is left out
	name map[E]string // the reverse
}

// newEnum builds the tables of the enum whose generated name table is
// names and whose values are named prefix+upper(string).
func newEnum[E ~int32](names map[int32]string, prefix string) enum[E] {
	e := enum[E]{code: map[string]E{}, name: map[E]string{}}
	for v, n := range names {
		if v == 0 {
			continue
		}
		s := strings.ToLower(strings.TrimPrefix(n, prefix))
		e.code[s], e.name[E(v)] = E(v), s
	}
	return e
}

// codeOf is the value of the string s, in any case, or 0 when the enum has
// none.
func (e enum[E]) codeOf(s string) E {
	if c, ok := e.code[s]; ok || s == "" {
		return c
	}
	return e.code[strings.ToLower(s)]
}

// nameOf is the string of code when code is a known value other than 0,
// else legacy: what an older peer, or a newer one whose value this build
// does not know, sent beside it.
func (e enum[E]) nameOf(code E, legacy string) string {
	if n, ok := e.name[code]; ok {
		return n
	}
	return legacy
}

var (
	statuses        = newEnum[pluginv1.Status](pluginv1.Status_name, "STATUS_")
	buttonStyles    = newEnum[pluginv1.ButtonStyle](pluginv1.ButtonStyle_name, "BUTTON_STYLE_")
	outcomes        = newEnum[pluginv1.Outcome](pluginv1.Outcome_name, "OUTCOME_")
	jobStates       = newEnum[pluginv1.JobState](pluginv1.JobState_name, "JOB_STATE_")
	commandOutcomes = newEnum[pluginv1.CommandOutcome](pluginv1.CommandOutcome_name, "COMMAND_OUTCOME_")
)

// StatusCode is an Output's status hint ("good") as the enum.
func StatusCode(s string) pluginv1.Status {
	return statuses.codeOf(s)
}

// StatusName is the status hint of an Output that carries code and the
// string legacy: code's when code is set and known, else legacy.
func StatusName(code pluginv1.Status, legacy string) string {
	return statuses.nameOf(code, legacy)
}

// ButtonStyleCode is a button's style ("primary") as the enum.
func ButtonStyleCode(s string) pluginv1.ButtonStyle {
	return buttonStyles.codeOf(s)
}

// ButtonStyleName is the style of a button that carries code and legacy,
// preferring code.
func ButtonStyleName(code pluginv1.ButtonStyle, legacy string) string {
	return buttonStyles.nameOf(code, legacy)
}

// OutcomeCode is a call's outcome ("success") as the enum.
func OutcomeCode(s string) pluginv1.Outcome {
	return outcomes.codeOf(s)
}

// OutcomeName is the outcome of a Done that carries code and legacy,
// preferring code.
func OutcomeName(code pluginv1.Outcome, legacy string) string {
	return outcomes.nameOf(code, legacy)
}

// JobStateCode is a job's state ("queued") as the enum.
func JobStateCode(s string) pluginv1.JobState {
	return jobStates.codeOf(s)
}

// JobStateName is the state of a job that carries code and legacy,
// preferring code.
func JobStateName(code pluginv1.JobState, legacy string) string {
	return jobStates.nameOf(code, legacy)
}

// CommandOutcomeCode is the audit outcome of a command run through
// RunCommand ("ok") as the enum.
func CommandOutcomeCode(s string) pluginv1.CommandOutcome {
	return commandOutcomes.codeOf(s)
}

// CommandOutcomeName is the outcome of a RunCommandResponse that carries
// code and legacy, preferring code.
func CommandOutcomeName(code pluginv1.CommandOutcome, legacy string) string {
	return commandOutcomes.nameOf(code, legacy)
}
