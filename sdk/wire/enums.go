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

// enumCode is the enum value named prefix+upper(name), or 0 (UNSPECIFIED,
// or DEFAULT) when the enum has none.
func enumCode(values map[string]int32, prefix, name string) int32 {
	if name == "" {
		return 0
	}
	return values[prefix+strings.ToUpper(name)]
}

// enumName is the string of code when code is a known value other than 0,
// else legacy: what an older peer, or a newer one whose value this build
// does not know, sent beside it.
func enumName(names map[int32]string, prefix string, code int32, legacy string) string {
	if code == 0 {
		return legacy
	}
	n, ok := names[code]
	if !ok {
		return legacy
	}
	return strings.ToLower(strings.TrimPrefix(n, prefix))
}

// StatusCode is an Output's status hint ("good") as the enum.
func StatusCode(s string) pluginv1.Status {
	return pluginv1.Status(enumCode(pluginv1.Status_value, "STATUS_", s))
}

// StatusName is the status hint of an Output that carries code and the
// string legacy: code's when code is set and known, else legacy.
func StatusName(code pluginv1.Status, legacy string) string {
	return enumName(pluginv1.Status_name, "STATUS_", int32(code), legacy)
}

// ButtonStyleCode is a button's style ("primary") as the enum.
func ButtonStyleCode(s string) pluginv1.ButtonStyle {
	return pluginv1.ButtonStyle(enumCode(pluginv1.ButtonStyle_value, "BUTTON_STYLE_", s))
}

// ButtonStyleName is the style of a button that carries code and legacy,
// preferring code.
func ButtonStyleName(code pluginv1.ButtonStyle, legacy string) string {
	return enumName(pluginv1.ButtonStyle_name, "BUTTON_STYLE_", int32(code), legacy)
}

// OutcomeCode is a call's outcome ("success") as the enum.
func OutcomeCode(s string) pluginv1.Outcome {
	return pluginv1.Outcome(enumCode(pluginv1.Outcome_value, "OUTCOME_", s))
}

// OutcomeName is the outcome of a Done that carries code and legacy,
// preferring code.
func OutcomeName(code pluginv1.Outcome, legacy string) string {
	return enumName(pluginv1.Outcome_name, "OUTCOME_", int32(code), legacy)
}

// JobStateCode is a job's state ("queued") as the enum.
func JobStateCode(s string) pluginv1.JobState {
	return pluginv1.JobState(enumCode(pluginv1.JobState_value, "JOB_STATE_", s))
}

// JobStateName is the state of a job that carries code and legacy,
// preferring code.
func JobStateName(code pluginv1.JobState, legacy string) string {
	return enumName(pluginv1.JobState_name, "JOB_STATE_", int32(code), legacy)
}

// CommandOutcomeCode is the audit outcome of a command run through
// RunCommand ("ok") as the enum.
func CommandOutcomeCode(s string) pluginv1.CommandOutcome {
	return pluginv1.CommandOutcome(enumCode(pluginv1.CommandOutcome_value, "COMMAND_OUTCOME_", s))
}

// CommandOutcomeName is the outcome of a RunCommandResponse that carries
// code and legacy, preferring code.
func CommandOutcomeName(code pluginv1.CommandOutcome, legacy string) string {
	return enumName(pluginv1.CommandOutcome_name, "COMMAND_OUTCOME_", int32(code), legacy)
}
