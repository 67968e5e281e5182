package sdk

import (
	"reflect"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk/pluginv1"
)

// roundTrip converts v to the protocol and back.
func roundTrip[T, P any](v T, to func(T) P, from func(P) T) T { return from(to(v)) }

// Every SDK type survives the trip to the protocol and back unchanged, nil
// stays nil, and an enum value this build does not know travels as its
// string.
func TestEverySDKTypeRoundTripsThroughTheProtocol(t *testing.T) {
	at := time.Unix(1764000000, 0)
	ref := &MessageRef{Adapter: "slack", Room: "C1", MessageID: "m1", ThreadID: "t1", RoomName: "deploys"}
	user := &User{ID: "U1", Name: "Ada", Roles: []string{"deployer"}, Person: "ada"}
	approval := &Approval{ID: 3, Requester: "ada", Approvers: []string{"bob"}, RequestedAt: at, ApprovedAt: at.Add(time.Minute), Confirmation: true}
	output := &Output{
		Title: "Deployed", Text: "web to staging", Code: "ok", Fallback: "deployed web", Status: StatusGood,
		Fields: []*Field{{Title: "Commit", Value: "1a2b", Short: true}},
		Buttons: []*Button{
			{Label: "Roll back", Action: "rollback", Value: "42", Style: ButtonDanger},
			{Label: "Status", Command: "deploy:status 42"},
		},
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"a message reference", roundTrip(ref, refToProto, refFromProto), ref},
		{"no message reference", roundTrip(nil, refToProto, refFromProto), (*MessageRef)(nil)},
		{"a user", roundTrip(user, userToProto, userFromProto), user},
		{"no user", roundTrip(nil, userToProto, userFromProto), (*User)(nil)},
		{"an output with fields and buttons", roundTrip(output, outputToProto, outputFromProto), output},
		{"no output", roundTrip(nil, outputToProto, outputFromProto), (*Output)(nil)},
		{"each status", func() []Status {
			var out []Status
			for _, s := range []Status{StatusNone, StatusGood, StatusWarning, StatusDanger, StatusInfo} {
				out = append(out, roundTrip(&Output{Status: s}, outputToProto, outputFromProto).Status)
			}
			return out
		}(), []Status{StatusNone, StatusGood, StatusWarning, StatusDanger, StatusInfo}},
		{"a status this build does not know", roundTrip(&Output{Status: "purple"}, outputToProto, outputFromProto), &Output{Status: "purple"}},
		{"each button style", func() []ButtonStyle {
			var out []ButtonStyle
			for _, s := range []ButtonStyle{ButtonDefault, ButtonPrimary, ButtonDanger} {
				out = append(out, roundTrip(&Button{Style: s}, buttonToProto, buttonFromProto).Style)
			}
			return out
		}(), []ButtonStyle{ButtonDefault, ButtonPrimary, ButtonDanger}},
		{"a button style this build does not know", roundTrip(&Button{Label: "x", Style: "subtle"}, buttonToProto, buttonFromProto), &Button{Label: "x", Style: "subtle"}},
		{"a click", roundTrip(&ButtonClick{Message: ref, ClickedAt: at}, clickToProto, clickFromProto), &ButtonClick{Message: ref, ClickedAt: at}},
		{"a click without a time", roundTrip(&ButtonClick{Message: ref}, clickToProto, clickFromProto), &ButtonClick{Message: ref}},
		{"an approval", roundTrip(approval, approvalToProto, approvalFromProto), approval},
		{"a command", roundTrip(&CommandRequest{
			RequestID: "r1", Command: "deploy", Args: map[string]string{"app": "web"}, User: user, Message: ref,
			Text: "deploy web", Direct: true, Button: &ButtonClick{Message: ref, ClickedAt: at}, Approval: approval, TriggeredBy: "ci-status",
		}, commandToProto, commandFromProto), &CommandRequest{
			RequestID: "r1", Command: "deploy", Args: map[string]string{"app": "web"}, User: user, Message: ref,
			Text: "deploy web", Direct: true, Button: &ButtonClick{Message: ref, ClickedAt: at}, Approval: approval, TriggeredBy: "ci-status",
		}},
		{"an interaction", roundTrip(&Interaction{RequestID: "r2", Action: "cancel", Value: "7", User: user, Message: ref, Direct: true, ClickedAt: at},
			interactionToProto, interactionFromProto),
			&Interaction{RequestID: "r2", Action: "cancel", Value: "7", User: user, Message: ref, Direct: true, ClickedAt: at}},
		{"an event", roundTrip(&Event{RequestID: "r3", Type: "github:push", DeliveryID: "d1", Payload: []byte("{}"), Headers: map[string]string{"X": "y"}, Attempt: 2},
			eventToProto, eventFromProto),
			&Event{RequestID: "r3", Type: "github:push", DeliveryID: "d1", Payload: []byte("{}"), Headers: map[string]string{"X": "y"}, Attempt: 2}},
		{"a job", roundTrip(&Job{RequestID: "r4", JobID: 9, Kind: "deploy", Payload: []byte{0, 0xff}, Attempt: 1, Notify: ref, OriginRequestID: "r1"},
			jobToProto, jobFromProto),
			&Job{RequestID: "r4", JobID: 9, Kind: "deploy", Payload: []byte{0, 0xff}, Attempt: 1, Notify: ref, OriginRequestID: "r1"}},
		{"a lock", roundTrip(&LockInfo{Name: "deploy/web", Owner: "ada", Reason: "migration", AcquiredAt: at, ExpiresAt: at.Add(time.Hour), JobID: 9},
			lockToProto, lockFromProto),
			&LockInfo{Name: "deploy/web", Owner: "ada", Reason: "migration", AcquiredAt: at, ExpiresAt: at.Add(time.Hour), JobID: 9}},
		{"a lock that never expires", roundTrip(&LockInfo{Name: "x", AcquiredAt: at}, lockToProto, lockFromProto), &LockInfo{Name: "x", AcquiredAt: at}},
		{"a job's info", roundTrip(&JobInfo{ID: 9, Kind: "deploy", QueueKey: "web", State: JobRunning, Payload: []byte("p"), Detail: "d", Attempt: 2,
			CreatedAt: at, StartedAt: at.Add(time.Second), Notify: ref}, jobInfoToProto, jobInfoFromProto),
			&JobInfo{ID: 9, Kind: "deploy", QueueKey: "web", State: JobRunning, Payload: []byte("p"), Detail: "d", Attempt: 2,
				CreatedAt: at, StartedAt: at.Add(time.Second), Notify: ref}},
		{"each job state", func() []JobState {
			var out []JobState
			for _, s := range []JobState{JobQueued, JobRunning, JobSucceeded, JobFailed, JobError, JobCancelled, JobInterrupted} {
				out = append(out, roundTrip(&JobInfo{State: s}, jobInfoToProto, jobInfoFromProto).State)
			}
			return out
		}(), []JobState{JobQueued, JobRunning, JobSucceeded, JobFailed, JobError, JobCancelled, JobInterrupted}},
		{"a job state this build does not know", roundTrip(&JobInfo{State: "paused"}, jobInfoToProto, jobInfoFromProto).State, JobState("paused")},
		{"each outcome", func() []Outcome {
			var out []Outcome
			for _, o := range []Outcome{OutcomeNone, OutcomeSuccess, OutcomeFailure, OutcomeError, OutcomeCancelled, "skipped"} {
				got, detail := doneFromProto(doneToProto(o, "why"))
				if detail != "why" {
					got = "lost the detail"
				}
				out = append(out, got)
			}
			return out
		}(), []Outcome{OutcomeNone, OutcomeSuccess, OutcomeFailure, OutcomeError, OutcomeCancelled, "skipped"}},
		{"each command outcome", func() []CommandOutcome {
			var out []CommandOutcome
			for _, o := range []CommandOutcome{CommandOK, CommandDenied, CommandError, CommandUnknown, CommandApproval, "queued"} {
				out = append(out, runResultFromProto(runResultToProto(RunResult{Outcome: o})).Outcome)
			}
			return out
		}(), []CommandOutcome{CommandOK, CommandDenied, CommandError, CommandUnknown, CommandApproval, "queued"}},
		{"a command's result", runResultFromProto(runResultToProto(RunResult{RequestID: "r5", Outcome: CommandApproval, Detail: "needs bob", ApprovalID: 4})),
			RunResult{RequestID: "r5", Outcome: CommandApproval, Detail: "needs bob", ApprovalID: 4}},
		{"a request for approval", roundTrip(&ApprovalRequiredError{Options: ApprovalOptions{Approvers: []string{"ops"}, Count: 2, TTL: time.Minute, Reason: "prod"}, Confirm: true},
			approvalNeededToProto, approvalNeededFromProto),
			&ApprovalRequiredError{Options: ApprovalOptions{Approvers: []string{"ops"}, Count: 2, TTL: time.Minute, Reason: "prod"}, Confirm: true}},
		{"a user error", roundTrip(&UserError{Summary: "no", Detail: "frozen", Argument: "env"}, userErrorToProto, userErrorFromProto),
			&UserError{Summary: "no", Detail: "frozen", Argument: "env"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("after the round trip: %+v\nwant %+v", tt.got, tt.want)
			}
		})
	}
}

// The SDK sends each enum both ways, for hosts older than minor 8 (the
// string) and newer (the enum).
func TestTheSDKSendsEnumsAsBothTheEnumAndTheString(t *testing.T) {
	out := outputToProto(&Output{Status: StatusWarning, Buttons: []*Button{{Label: "x", Command: "x", Style: ButtonPrimary}}})
	done := doneToProto(OutcomeFailure, "")
	run := runResultToProto(RunResult{Outcome: CommandDenied})
	info := jobInfoToProto(&JobInfo{State: JobCancelled})
	names, codes := jobStatesToProto([]JobState{JobQueued, "paused"})
	tests := []struct {
		name      string
		got, want any
	}{
		{"status", []any{out.GetStatus(), out.GetStatusCode()}, []any{"warning", pluginv1.Status_STATUS_WARNING}},
		{"button style", []any{out.GetButtons()[0].GetStyle(), out.GetButtons()[0].GetStyleCode()}, []any{"primary", pluginv1.ButtonStyle_BUTTON_STYLE_PRIMARY}},
		{"outcome", []any{done.GetOutcome(), done.GetOutcomeCode()}, []any{"failure", pluginv1.Outcome_OUTCOME_FAILURE}},
		{"command outcome", []any{run.GetOutcome(), run.GetOutcomeCode()}, []any{"denied", pluginv1.CommandOutcome_COMMAND_OUTCOME_DENIED}},
		{"job state", []any{info.GetState(), info.GetStateCode()}, []any{"cancelled", pluginv1.JobState_JOB_STATE_CANCELLED}},
		{"job states asked for: every name, the enums of those known", []any{names, codes},
			[]any{[]string{"queued", "paused"}, []pluginv1.JobState{pluginv1.JobState_JOB_STATE_QUEUED}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("sent %v, want %v", tt.got, tt.want)
			}
		})
	}
}

// What the SDK receives is read from the enum when it is set and known,
// else from the string: a host of minor 8 may send only enums, an older one
// only strings, and a newer one an enum value this build does not know.
func TestTheSDKReadsTheEnumFirstThenTheString(t *testing.T) {
	tests := []struct {
		name      string
		got, want any
	}{
		{"a job state as the enum alone", jobInfoFromProto(&pluginv1.JobInfo{StateCode: pluginv1.JobState_JOB_STATE_FAILED}).State, JobFailed},
		{"a job state as the string alone", jobInfoFromProto(&pluginv1.JobInfo{State: "succeeded"}).State, JobSucceeded},
		{"a job state where the two disagree", jobInfoFromProto(&pluginv1.JobInfo{State: "queued", StateCode: pluginv1.JobState_JOB_STATE_RUNNING}).State, JobRunning},
		{"an unknown job state enum, with its string", jobInfoFromProto(&pluginv1.JobInfo{State: "paused", StateCode: pluginv1.JobState(99)}).State, JobState("paused")},
		{"an unknown job state enum alone", jobInfoFromProto(&pluginv1.JobInfo{StateCode: pluginv1.JobState(99)}).State, JobState("")},
		{"a command outcome as the enum alone", runResultFromProto(&pluginv1.RunCommandResponse{OutcomeCode: pluginv1.CommandOutcome_COMMAND_OUTCOME_APPROVAL}).Outcome, CommandApproval},
		{"a command outcome as the string alone", runResultFromProto(&pluginv1.RunCommandResponse{Outcome: "denied"}).Outcome, CommandDenied},
		{"an unknown command outcome enum, with its string", runResultFromProto(&pluginv1.RunCommandResponse{Outcome: "queued", OutcomeCode: pluginv1.CommandOutcome(99)}).Outcome, CommandOutcome("queued")},
		{"a status as the enum alone", outputFromProto(&pluginv1.Output{StatusCode: pluginv1.Status_STATUS_INFO}).Status, StatusInfo},
		{"a status as the string alone", outputFromProto(&pluginv1.Output{Status: "danger"}).Status, StatusDanger},
		{"a button style as the enum alone", buttonFromProto(&pluginv1.Button{StyleCode: pluginv1.ButtonStyle_BUTTON_STYLE_DANGER}).Style, ButtonDanger},
		{"a button style as the string alone", buttonFromProto(&pluginv1.Button{Style: "primary"}).Style, ButtonPrimary},
		{"an outcome as the enum alone", func() Outcome {
			o, _ := doneFromProto(&pluginv1.Done{OutcomeCode: pluginv1.Outcome_OUTCOME_CANCELLED})
			return o
		}(), OutcomeCancelled},
		{"an outcome as the string alone", func() Outcome { o, _ := doneFromProto(&pluginv1.Done{Outcome: "error"}); return o }(), OutcomeError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("read %v, want %v", tt.got, tt.want)
			}
		})
	}
}

// String gives each enum's protocol string.
func TestEnumsSayTheirNames(t *testing.T) {
	got := []string{StatusGood.String(), ButtonDanger.String(), JobInterrupted.String(), OutcomeSuccess.String(), CommandApproval.String()}
	want := []string{"good", "danger", "interrupted", "success", "approval"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("names %q, want %q", got, want)
	}
}
