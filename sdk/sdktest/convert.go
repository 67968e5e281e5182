package sdktest

import (
	"time"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/internal/bridge"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// The SDK's conversions between its types and the protocol, shared with the
// sdk package through its bridge so they are written once.
var (
	refToProto              = bridge.Func[func(*sdk.MessageRef) *pluginv1.MessageRef]()
	refFromProto            = bridge.Func[func(*pluginv1.MessageRef) *sdk.MessageRef]()
	userToProto             = bridge.Func[func(*sdk.User) *pluginv1.User]()
	outputFromProto         = bridge.Func[func(*pluginv1.Output) *sdk.Output]()
	approvalToProto         = bridge.Func[func(*sdk.Approval) *pluginv1.Approval]()
	jobToProto              = bridge.Func[func(*sdk.Job) *pluginv1.JobRequest]()
	doneFromProto           = bridge.Func[func(*pluginv1.Done) (sdk.Outcome, string)]()
	approvalNeededFromProto = bridge.Func[func(*pluginv1.ApprovalNeeded) *sdk.ApprovalRequiredError]()
	userErrorFromProto      = bridge.Func[func(*pluginv1.UserError) *sdk.UserError]()
	clickToProto            = bridge.Func[func(*sdk.ButtonClick) *pluginv1.ButtonClick]()
	runResultToProto        = bridge.Func[func(sdk.RunResult) *pluginv1.RunCommandResponse]()
)

// Done is how a call ended.
type Done struct {
	// Outcome is the call's outcome: for a job, how it ended; OutcomeNone
	// for a command or event that went as it should.
	Outcome sdk.Outcome
	// Detail says why a call failed.
	Detail string
}

// Progress is one progress report of a call (Context.Progress).
type Progress struct {
	// Key names the message the report updates.
	Key string
	// Output is what it shows.
	Output *sdk.Output
}

// Post is a message the plugin posted with Context.Post.
type Post struct {
	// Target is where it went.
	Target *sdk.MessageRef
	// Output is what it said.
	Output *sdk.Output
	// RequestID is the request the plugin posted it for.
	RequestID string
}

// Update is an edit the plugin made with Context.Update.
type Update struct {
	// Message is the message edited.
	Message *sdk.MessageRef
	// Output is its new content.
	Output *sdk.Output
}

// EnqueuedJob is a job the plugin enqueued with Context.Enqueue.
type EnqueuedJob struct {
	// ID is the job's id, as Enqueue returned it.
	ID int64
	// Kind is the job kind.
	Kind string
	// Payload is the job's payload.
	Payload []byte
	// QueueKey serialises the job.
	QueueKey string
	// Notify is where the job reports.
	Notify *sdk.MessageRef
	// OriginRequestID is the request that enqueued it.
	OriginRequestID string
	// Delay postpones it.
	Delay time.Duration
	// Title says what it is, for people.
	Title string
}

// CommandRun is a command the plugin ran with Context.RunCommand.
type CommandRun struct {
	// Text is the command as typed after the bot's name.
	Text string
	// As is who it runs as.
	As string
	// Room is where it runs.
	Room *sdk.MessageRef
	// RequestID is the request the plugin ran it for.
	RequestID string
	// Reason is what the audit records.
	Reason string
}

func commandRunFromProto(r *pluginv1.RunCommandRequest) CommandRun {
	return CommandRun{Text: r.GetText(), As: r.GetAs(), Room: refFromProto(r.GetRoom()), RequestID: r.GetRequestId(), Reason: r.GetReason()}
}

func enqueuedFromProto(id int64, r *pluginv1.EnqueueRequest) EnqueuedJob {
	return EnqueuedJob{
		ID: id, Kind: r.GetKind(), Payload: r.GetPayload(), QueueKey: r.GetQueueKey(), Notify: refFromProto(r.GetNotify()),
		OriginRequestID: r.GetOriginRequestId(), Delay: time.Duration(r.GetDelaySeconds()) * time.Second, Title: r.GetTitle(),
	}
}
