package sdk

import (
	"time"

	"github.com/chimaops/chima/sdk/internal/bridge"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

// This file is the one boundary between the SDK's types and the generated
// protocol: nothing else in the SDK builds or reads a pluginv1 message of a
// type a plugin author sees. Each function maps nil to nil. Fields with an
// enum since protocol minor 8 are sent twice, as the enum and as the string
// an older host reads; they are read from the enum when it is set and
// known, else from the string (wire's enum functions). Mentions (since minor
// 10) travel as the placeholders in the text plus their declaration
// (mention.go).

// unixTime is a protocol time in Unix seconds; 0 is the zero time.
func unixTime(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}

// unixSeconds is t in the protocol's Unix seconds; the zero time is 0.
func unixSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func refToProto(r *MessageRef) *pluginv1.MessageRef {
	if r == nil {
		return nil
	}
	return &pluginv1.MessageRef{Adapter: r.Adapter, Room: r.Room, MessageId: r.MessageID, ThreadId: r.ThreadID, RoomName: r.RoomName}
}

func refFromProto(r *pluginv1.MessageRef) *MessageRef {
	if r == nil {
		return nil
	}
	return &MessageRef{Adapter: r.GetAdapter(), Room: r.GetRoom(), MessageID: r.GetMessageId(), ThreadID: r.GetThreadId(), RoomName: r.GetRoomName()}
}

func userToProto(u *User) *pluginv1.User {
	if u == nil {
		return nil
	}
	return &pluginv1.User{Id: u.ID, Name: u.Name, Roles: u.Roles, Person: u.Person}
}

func userFromProto(u *pluginv1.User) *User {
	if u == nil {
		return nil
	}
	return &User{ID: u.GetId(), Name: u.GetName(), Roles: u.GetRoles(), Person: u.GetPerson()}
}

func outputToProto(o *Output) *pluginv1.Output {
	if o == nil {
		return nil
	}
	p := &pluginv1.Output{
		Title: o.Title, Text: o.Text, Code: o.Code, Fallback: o.Fallback,
		Status: string(o.Status), StatusCode: wire.StatusCode(string(o.Status)),
	}
	for _, f := range o.Fields {
		if f != nil {
			p.Fields = append(p.Fields, &pluginv1.Field{Title: f.Title, Value: f.Value, Short: f.Short})
		}
	}
	for _, b := range o.Buttons {
		if b != nil {
			p.Buttons = append(p.Buttons, buttonToProto(b))
		}
	}
	p.Mentions = mentionsToProto(o)
	return p
}

func outputFromProto(p *pluginv1.Output) *Output {
	if p == nil {
		return nil
	}
	o := &Output{
		Title: p.GetTitle(), Text: p.GetText(), Code: p.GetCode(), Fallback: p.GetFallback(),
		Status: Status(wire.StatusName(p.GetStatusCode(), p.GetStatus())),
	}
	for _, f := range p.GetFields() {
		o.Fields = append(o.Fields, &Field{Title: f.GetTitle(), Value: f.GetValue(), Short: f.GetShort()})
	}
	for _, b := range p.GetButtons() {
		o.Buttons = append(o.Buttons, buttonFromProto(b))
	}
	mentionsFromProto(o, p)
	return o
}

func buttonToProto(b *Button) *pluginv1.Button {
	if b == nil {
		return nil
	}
	return &pluginv1.Button{
		Label: b.Label, Command: b.Command, Action: b.Action, Value: b.Value,
		Style: string(b.Style), StyleCode: wire.ButtonStyleCode(string(b.Style)),
	}
}

func buttonFromProto(b *pluginv1.Button) *Button {
	if b == nil {
		return nil
	}
	return &Button{
		Label: b.GetLabel(), Command: b.GetCommand(), Action: b.GetAction(), Value: b.GetValue(),
		Style: ButtonStyle(wire.ButtonStyleName(b.GetStyleCode(), b.GetStyle())),
	}
}

func clickToProto(c *ButtonClick) *pluginv1.ButtonClick {
	if c == nil {
		return nil
	}
	return &pluginv1.ButtonClick{Message: refToProto(c.Message), ClickedUnix: unixSeconds(c.ClickedAt)}
}

func clickFromProto(c *pluginv1.ButtonClick) *ButtonClick {
	if c == nil {
		return nil
	}
	return &ButtonClick{Message: refFromProto(c.GetMessage()), ClickedAt: unixTime(c.GetClickedUnix())}
}

func approvalToProto(a *Approval) *pluginv1.Approval {
	if a == nil {
		return nil
	}
	return &pluginv1.Approval{
		Id: a.ID, Requester: a.Requester, Approvers: a.Approvers,
		RequestedUnix: unixSeconds(a.RequestedAt), ApprovedUnix: unixSeconds(a.ApprovedAt), Confirmation: a.Confirmation,
	}
}

func approvalFromProto(a *pluginv1.Approval) *Approval {
	if a == nil {
		return nil
	}
	return &Approval{
		ID: a.GetId(), Requester: a.GetRequester(), Approvers: a.GetApprovers(),
		RequestedAt: unixTime(a.GetRequestedUnix()), ApprovedAt: unixTime(a.GetApprovedUnix()), Confirmation: a.GetConfirmation(),
	}
}

func commandToProto(c *CommandRequest) *pluginv1.CommandRequest {
	if c == nil {
		return nil
	}
	return &pluginv1.CommandRequest{
		RequestId: c.RequestID, Command: c.Command, Args: c.Args, User: userToProto(c.User),
		Message: refToProto(c.Message), Text: c.Text, Direct: c.Direct, Button: clickToProto(c.Button),
		Approval: approvalToProto(c.Approval), TriggeredBy: c.TriggeredBy,
	}
}

func commandFromProto(c *pluginv1.CommandRequest) *CommandRequest {
	if c == nil {
		return nil
	}
	return &CommandRequest{
		RequestID: c.GetRequestId(), Command: c.GetCommand(), Args: c.GetArgs(), User: userFromProto(c.GetUser()),
		Message: refFromProto(c.GetMessage()), Text: c.GetText(), Direct: c.GetDirect(), Button: clickFromProto(c.GetButton()),
		Approval: approvalFromProto(c.GetApproval()), TriggeredBy: c.GetTriggeredBy(),
	}
}

func interactionToProto(i *Interaction) *pluginv1.InteractionRequest {
	if i == nil {
		return nil
	}
	return &pluginv1.InteractionRequest{
		RequestId: i.RequestID, Action: i.Action, Value: i.Value, User: userToProto(i.User),
		Message: refToProto(i.Message), Direct: i.Direct, ClickedUnix: unixSeconds(i.ClickedAt),
	}
}

func interactionFromProto(i *pluginv1.InteractionRequest) *Interaction {
	if i == nil {
		return nil
	}
	return &Interaction{
		RequestID: i.GetRequestId(), Action: i.GetAction(), Value: i.GetValue(), User: userFromProto(i.GetUser()),
		Message: refFromProto(i.GetMessage()), Direct: i.GetDirect(), ClickedAt: unixTime(i.GetClickedUnix()),
	}
}

func eventToProto(e *Event) *pluginv1.WebhookEvent {
	if e == nil {
		return nil
	}
	return &pluginv1.WebhookEvent{
		RequestId: e.RequestID, Type: e.Type, DeliveryId: e.DeliveryID, Payload: e.Payload,
		Headers: e.Headers, Attempt: uint32(max(e.Attempt, 0)),
	}
}

func eventFromProto(e *pluginv1.WebhookEvent) *Event {
	if e == nil {
		return nil
	}
	return &Event{
		RequestID: e.GetRequestId(), Type: e.GetType(), DeliveryID: e.GetDeliveryId(), Payload: e.GetPayload(),
		Headers: e.GetHeaders(), Attempt: int(e.GetAttempt()),
	}
}

func jobToProto(j *Job) *pluginv1.JobRequest {
	if j == nil {
		return nil
	}
	return &pluginv1.JobRequest{
		RequestId: j.RequestID, JobId: j.JobID, Kind: j.Kind, Payload: j.Payload,
		Attempt: uint32(max(j.Attempt, 0)), Notify: refToProto(j.Notify), OriginRequestId: j.OriginRequestID,
	}
}

func jobFromProto(j *pluginv1.JobRequest) *Job {
	if j == nil {
		return nil
	}
	return &Job{
		RequestID: j.GetRequestId(), JobID: j.GetJobId(), Kind: j.GetKind(), Payload: j.GetPayload(),
		Attempt: int(j.GetAttempt()), Notify: refFromProto(j.GetNotify()), OriginRequestID: j.GetOriginRequestId(),
	}
}

func lockToProto(l *LockInfo) *pluginv1.LockInfo {
	if l == nil {
		return nil
	}
	return &pluginv1.LockInfo{
		Name: l.Name, Owner: l.Owner, Reason: l.Reason,
		AcquiredUnix: unixSeconds(l.AcquiredAt), ExpiresUnix: unixSeconds(l.ExpiresAt), JobId: l.JobID,
	}
}

func lockFromProto(l *pluginv1.LockInfo) *LockInfo {
	if l == nil {
		return nil
	}
	return &LockInfo{
		Name: l.GetName(), Owner: l.GetOwner(), Reason: l.GetReason(),
		AcquiredAt: unixTime(l.GetAcquiredUnix()), ExpiresAt: unixTime(l.GetExpiresUnix()), JobID: l.GetJobId(),
	}
}

func locksFromProto(ls []*pluginv1.LockInfo) []*LockInfo {
	var out []*LockInfo
	for _, l := range ls {
		out = append(out, lockFromProto(l))
	}
	return out
}

func jobInfoToProto(j *JobInfo) *pluginv1.JobInfo {
	if j == nil {
		return nil
	}
	return &pluginv1.JobInfo{
		Id: j.ID, Kind: j.Kind, QueueKey: j.QueueKey,
		State: string(j.State), StateCode: wire.JobStateCode(string(j.State)),
		Payload: j.Payload, Detail: j.Detail, Attempt: uint32(max(j.Attempt, 0)),
		CreatedUnix: unixSeconds(j.CreatedAt), StartedUnix: unixSeconds(j.StartedAt), FinishedUnix: unixSeconds(j.FinishedAt),
		Notify: refToProto(j.Notify),
	}
}

func jobInfoFromProto(j *pluginv1.JobInfo) *JobInfo {
	if j == nil {
		return nil
	}
	return &JobInfo{
		ID: j.GetId(), Kind: j.GetKind(), QueueKey: j.GetQueueKey(),
		State:   JobState(wire.JobStateName(j.GetStateCode(), j.GetState())),
		Payload: j.GetPayload(), Detail: j.GetDetail(), Attempt: int(j.GetAttempt()),
		CreatedAt: unixTime(j.GetCreatedUnix()), StartedAt: unixTime(j.GetStartedUnix()), FinishedAt: unixTime(j.GetFinishedUnix()),
		Notify: refFromProto(j.GetNotify()),
	}
}

func jobInfosFromProto(js []*pluginv1.JobInfo) []*JobInfo {
	var out []*JobInfo
	for _, j := range js {
		out = append(out, jobInfoFromProto(j))
	}
	return out
}

// jobStatesToProto is a JobFilter's states as both lists a JobsRequest
// carries: the names an older host reads, and the enums.
func jobStatesToProto(states []JobState) (names []string, codes []pluginv1.JobState) {
	for _, s := range states {
		names = append(names, string(s))
		if c := wire.JobStateCode(string(s)); c != pluginv1.JobState_JOB_STATE_UNSPECIFIED {
			codes = append(codes, c)
		}
	}
	return names, codes
}

// doneToProto ends a call with outcome and detail.
func doneToProto(outcome Outcome, detail string) *pluginv1.Done {
	return &pluginv1.Done{Outcome: string(outcome), OutcomeCode: wire.OutcomeCode(string(outcome)), Detail: detail}
}

// doneFromProto is how a call ended, and why.
func doneFromProto(d *pluginv1.Done) (Outcome, string) {
	return Outcome(wire.OutcomeName(d.GetOutcomeCode(), d.GetOutcome())), d.GetDetail()
}

func runResultToProto(r RunResult) *pluginv1.RunCommandResponse {
	return &pluginv1.RunCommandResponse{
		RequestId: r.RequestID, Outcome: string(r.Outcome), OutcomeCode: wire.CommandOutcomeCode(string(r.Outcome)),
		Detail: r.Detail, ApprovalId: r.ApprovalID,
	}
}

func runResultFromProto(r *pluginv1.RunCommandResponse) RunResult {
	return RunResult{
		RequestID: r.GetRequestId(), Outcome: CommandOutcome(wire.CommandOutcomeName(r.GetOutcomeCode(), r.GetOutcome())),
		Detail: r.GetDetail(), ApprovalID: r.GetApprovalId(),
	}
}

func approvalNeededToProto(e *ApprovalRequiredError) *pluginv1.ApprovalNeeded {
	if e == nil {
		return nil
	}
	return &pluginv1.ApprovalNeeded{
		Approvers: e.Options.Approvers, Count: uint32(max(e.Options.Count, 0)),
		TtlSeconds: ceilSeconds(e.Options.TTL), Reason: e.Options.Reason, Confirm: e.Confirm,
	}
}

func approvalNeededFromProto(a *pluginv1.ApprovalNeeded) *ApprovalRequiredError {
	if a == nil {
		return nil
	}
	return &ApprovalRequiredError{
		Options: ApprovalOptions{
			Approvers: a.GetApprovers(), Count: int(a.GetCount()),
			TTL: time.Duration(a.GetTtlSeconds()) * time.Second, Reason: a.GetReason(),
		},
		Confirm: a.GetConfirm(),
	}
}

func userErrorToProto(e *UserError) *pluginv1.UserError {
	if e == nil {
		return nil
	}
	return &pluginv1.UserError{Summary: e.Summary, Detail: e.Detail, Argument: e.Argument}
}

func userErrorFromProto(e *pluginv1.UserError) *UserError {
	if e == nil {
		return nil
	}
	return &UserError{Summary: e.GetSummary(), Detail: e.GetDetail(), Argument: e.GetArgument()}
}

// The conversions sdktest needs, for its harness and fake host, reach it
// through the bridge rather than the SDK's API.
func init() {
	bridge.Register(
		refToProto, refFromProto, userToProto, outputFromProto, buttonFromProto,
		approvalToProto, jobToProto, doneFromProto, approvalNeededFromProto, userErrorFromProto,
		clickToProto, runResultToProto, jobInfoFromProto, lockFromProto,
	)
}
