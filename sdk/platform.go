package sdk

import (
	"errors"
	"fmt"
	"time"

	"github.com/chimaops/chima/sdk/pluginv1"
)

// Schedule is a job the plugin wants run on a clock: at each slot of Cron the
// host enqueues a job of kind JobKind with Payload, once per slot (with
// several replicas too), and lists the schedule in `chima schedules` as
// "<plugin>:<Name>". Schedules are read after Configure, so a plugin may
// build them from its settings (one per backup target, say).
type Schedule struct {
	// Name is unique in the plugin: letters, digits and "-_.:".
	Name string
	// Cron is a robfig/cron/v3 expression (an optional seconds field),
	// "@every 6h" or "@daily".
	Cron string
	// JobKind is one of the plugin's Jobs.
	JobKind string
	// Payload is handed to the job.
	Payload []byte
	// Timezone is the IANA zone of Cron; "" for UTC.
	Timezone string
	// CatchUp runs one missed slot at start; otherwise missed slots are
	// skipped. A slot is never run once per missed slot.
	CatchUp bool
	// QueueKey serialises the jobs, as EnqueueOptions.QueueKey does.
	QueueKey string
	// Notify is where the jobs report; nil for nowhere (they Post).
	Notify *MessageRef
	// Title says what each job is, for people.
	Title string
	// Help says what the schedule does, for `chima schedules`.
	Help string
}

// ApprovalOptions say who must approve a command before it runs.
type ApprovalOptions struct {
	// Approvers are roles or people of chima.yaml who may approve. Empty:
	// the approvers of the policy rule for the command.
	Approvers []string
	// Count is how many distinct approvers must approve; 0 means 1.
	Count int
	// TTL is how long the request stays open; 0 means the host's default.
	TTL time.Duration
	// Reason is shown to the approvers ("production is protected").
	Reason string
}

// ApprovalRequiredError is what NeedApproval and NeedConfirmation return: a
// command handler returns it, before acting, to have the host store the
// request and ask for approval. Once approved the host runs the command
// again, exactly as it was asked, with Context.Approval set.
type ApprovalRequiredError struct {
	// Options say who must approve.
	Options ApprovalOptions
	// Confirm asks the requester to confirm instead of other people.
	Confirm bool
}

// Error says what is needed.
func (e *ApprovalRequiredError) Error() string {
	if e.Confirm {
		return "needs the requester's confirmation: " + e.Options.Reason
	}
	return "needs approval: " + e.Options.Reason
}

// NeedApproval returns the error a command handler returns to have the
// command approved before it runs:
//
//	if c.Approval() == nil && env.Protected {
//		return sdk.NeedApproval(sdk.ApprovalOptions{Approvers: env.Approvers, Reason: env.Name + " is protected"})
//	}
func NeedApproval(o ApprovalOptions) error { return &ApprovalRequiredError{Options: o} }

// NeedConfirmation returns the error a command handler returns to have the
// requester confirm (click Confirm, or type `chima approve <id>`) before the
// command runs: for commands that destroy data.
func NeedConfirmation(reason string) error {
	return &ApprovalRequiredError{Options: ApprovalOptions{Reason: reason}, Confirm: true}
}

// Approval returns who approved the command when it runs because its
// approval (or its requester's confirmation) was granted; nil otherwise.
// Only the host sets it.
func (c *Context) Approval() *Approval {
	if c.Command == nil {
		return nil
	}
	return c.Command.Approval
}

// TriggeredBy returns the plugin that ran the command through RunCommand, or
// "chima" for a schedule; "" for a command a person typed or clicked.
func (c *Context) TriggeredBy() string {
	if c.Command == nil {
		return ""
	}
	return c.Command.TriggeredBy
}

// RunOptions say as whom and where RunCommand runs a command.
type RunOptions struct {
	// As is a person of chima.yaml's people map, or an adapter-qualified
	// account id ("slack:U024BE7LH"). chima.yaml must allow the plugin to
	// act as them (plugins[].run_as).
	As string
	// Room is where the command runs and replies (adapter and room, and
	// thread_id for a thread).
	Room *MessageRef
	// Reason is recorded in the audit ("green build of main at 1a2b3c").
	Reason string
}

// RunResult says how a command run by RunCommand went.
type RunResult struct {
	// RequestID is the request the command ran under, as the audit names
	// it.
	RequestID string
	// Outcome is the audit outcome: CommandOK, CommandDenied,
	// CommandError, CommandUnknown or CommandApproval.
	Outcome CommandOutcome
	// Detail says why a command did not run or failed.
	Detail string
	// ApprovalID is the approval request's id when Outcome is
	// CommandApproval.
	ApprovalID int64
}

// RunCommand runs a chat command (as a person would type it after the bot's
// name: "deploy project-x/main to staging") as o.As in o.Room, through the
// host's router, policy, approvals and audit, which records this plugin as
// what triggered it. It returns once the command's handler is done (not
// its jobs). A command that was refused or failed is a RunResult, not an
// error; the error is for a command the host could not run at all.
func (c *Context) RunCommand(text string, o RunOptions) (RunResult, error) {
	h, err := c.host.get(c)
	if err != nil {
		return RunResult{}, err
	}
	resp, err := h.RunCommand(c, &pluginv1.RunCommandRequest{
		Text: text, As: o.As, Room: refToProto(o.Room), RequestId: c.requestID, Reason: o.Reason,
	})
	if err != nil {
		return RunResult{}, fmt.Errorf("run %q as %s: %w", text, o.As, err)
	}
	return runResultFromProto(resp), nil
}

// approvalNeeded converts err to the ApprovalNeeded event when it asks for
// approval.
func approvalNeeded(err error) (*pluginv1.ApprovalNeeded, bool) {
	var ae *ApprovalRequiredError
	if !errors.As(err, &ae) {
		return nil, false
	}
	return approvalNeededToProto(ae), true
}

// scheduleSpecs converts the plugin's schedules to the protocol's.
func (p *Plugin) scheduleSpecs() []*pluginv1.ScheduleSpec {
	var specs []*pluginv1.ScheduleSpec
	for _, s := range p.Schedules {
		specs = append(specs, &pluginv1.ScheduleSpec{
			Name: s.Name, Cron: s.Cron, JobKind: s.JobKind, Payload: s.Payload, Timezone: s.Timezone,
			CatchUp: s.CatchUp, QueueKey: s.QueueKey, Notify: refToProto(s.Notify), Title: s.Title, Help: s.Help,
		})
	}
	return specs
}
