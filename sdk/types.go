package sdk

import "time"

// The SDK's own types for what travels between a plugin and the host. They
// are plain Go structs, converted to and from the generated protocol
// (package pluginv1) in one place, convert.go, so the protocol may grow or
// rename its fields without changing a plugin's code. Fields with a fixed
// set of values are typed strings with constants (Status, ButtonStyle,
// JobState, Outcome, CommandOutcome); a value this build does not know
// still travels, as its string.

// MessageRef identifies a chat message: where to reply, what to edit.
type MessageRef struct {
	// Adapter is the chat service's adapter ("slack", "mattermost").
	Adapter string
	// Room is the room's id on that service.
	Room string
	// MessageID is the message's id; "" for a room as a target.
	MessageID string
	// ThreadID is the root of the thread the message is in; "" when it is
	// in none.
	ThreadID string
	// RoomName is the room's name when Room is a service's id
	// ("deployment" for Slack's "C024BE91L"), set by the host on a
	// command's message when the adapter has a directory. Never needed to
	// send: Room alone addresses the room.
	RoomName string
}

// User is the person who sent a command or clicked a button.
type User struct {
	// ID is the account's id on its chat service.
	ID string
	// Name is the account's display name.
	Name string
	// Roles are the person's roles of chima.yaml.
	Roles []string
	// Person is the person of chima.yaml's people map this account belongs
	// to ("alice"), the same on every adapter; "" when in none. Locks and
	// approvals should name the person when there is one.
	Person string
}

// Status is the hint an Output gives for its colour or emoji.
type Status string

// The statuses an Output may have.
const (
	StatusNone    Status = ""
	StatusGood    Status = "good"
	StatusWarning Status = "warning"
	StatusDanger  Status = "danger"
	StatusInfo    Status = "info"
)

// String returns the status as the protocol's string names it ("good").
func (s Status) String() string { return string(s) }

// Output is a chat-neutral message; each chat service renders it its own way.
type Output struct {
	// Title is a heading.
	Title string
	// Text is the message's body.
	Text string
	// Fields are short labelled values.
	Fields []*Field
	// Code is preformatted text shown as a code block.
	Code string
	// Buttons offer something to click.
	Buttons []*Button
	// Fallback is the plain text for chat services that can show nothing
	// richer; built from the other fields when empty.
	Fallback string
	// Status hints at a colour or emoji.
	Status Status
}

// Field is a short labelled value of an Output.
type Field struct {
	// Title is the label.
	Title string
	// Value is the value.
	Value string
	// Short fields may sit side by side.
	Short bool
}

// ButtonStyle is how a button stands out.
type ButtonStyle string

// The styles a button may have.
const (
	ButtonDefault ButtonStyle = ""
	ButtonPrimary ButtonStyle = "primary"
	ButtonDanger  ButtonStyle = "danger"
)

// String returns the style as the protocol's string names it ("primary").
func (s ButtonStyle) String() string { return string(s) }

// Button offers something to click: a command (CommandButton) or one of the
// plugin's actions (ActionButton).
type Button struct {
	// Label is the button's text.
	Label string
	// Command is run as the person who clicks, checked as if they typed it;
	// beside Action it is what chat services without buttons show to type.
	Command string
	// Action is one of the plugin's declared Actions, handed the click.
	Action string
	// Value is the data the click carries back to Action, at most
	// MaxButtonValue bytes; shown to nobody, but not secret.
	Value string
	// Style is how the button stands out.
	Style ButtonStyle
}

// ButtonClick says a request came from a click on a button, and on which
// message.
type ButtonClick struct {
	// Message is the message that carried the button.
	Message *MessageRef
	// ClickedAt is when the click happened, to the second.
	ClickedAt time.Time
}

// CommandRequest is the parsed chat command a Command handles, in
// Context.Command.
type CommandRequest struct {
	// RequestID is the host's id of the request; jobs enqueued while
	// handling it are traced back to it.
	RequestID string
	// Command is the Command.Name that matched.
	Command string
	// Args are the validated arguments by name.
	Args map[string]string
	// User sent the command.
	User *User
	// Message is the message that carried the command.
	Message *MessageRef
	// Text is the message's text after the bot's name.
	Text string
	// Direct says the message was a direct message to the bot.
	Direct bool
	// Button is set when a click on a command button ran the command;
	// nil for a typed command. Only the host sets it.
	Button *ButtonClick
	// Approval is set when the command runs because its approval was
	// granted; nil otherwise. Only the host sets it.
	Approval *Approval
	// TriggeredBy is the plugin that ran the command through RunCommand,
	// or "chima" for a schedule; "" for a command a person typed or
	// clicked.
	TriggeredBy string
}

// Approval says who approved a command and when; Context.Approval returns it
// when the command runs because it was approved.
type Approval struct {
	// ID is the approval request's id, as `chima approve <id>` names it.
	ID int64
	// Requester asked: the person, or the adapter-qualified id of an
	// account in no person.
	Requester string
	// Approvers approved, in order, named as Requester is.
	Approvers []string
	// RequestedAt is when the request was made, to the second.
	RequestedAt time.Time
	// ApprovedAt is when it was granted, to the second.
	ApprovedAt time.Time
	// Confirmation says it was the requester's own confirmation
	// (NeedConfirmation) rather than other people's approval.
	Confirmation bool
}

// Interaction is a click on one of the plugin's action buttons, handed to an
// Action: which action, the button's value, who clicked and on which
// message.
type Interaction struct {
	// RequestID is the host's id of the request.
	RequestID string
	// Action is the Action.Name of the button.
	Action string
	// Value is the button's value, as the plugin posted it.
	Value string
	// User clicked, with their roles.
	User *User
	// Message carried the button; replies go to its room and thread.
	Message *MessageRef
	// Direct says the button was in a direct conversation.
	Direct bool
	// ClickedAt is when the click happened, to the second.
	ClickedAt time.Time
}

// Event is a verified webhook event handed to an EventHandler.
type Event struct {
	// RequestID is the host's id of the request.
	RequestID string
	// Type is the event's type: "github:deployment", "generic:<name>".
	Type string
	// DeliveryID is unique per delivery (X-GitHub-Delivery for GitHub).
	DeliveryID string
	// Payload is the request's body.
	Payload []byte
	// Headers are the request's headers.
	Headers map[string]string
	// Attempt counts the attempts at handing this delivery to the plugin,
	// from 1: deliveries are retried, so a plugin may see one twice.
	Attempt int
}

// Job is the durable job handed to a JobHandler.
type Job struct {
	// RequestID is the host's id of this run of the job.
	RequestID string
	// JobID is the job's id.
	JobID int64
	// Kind is the JobHandler.Kind.
	Kind string
	// Payload is what Enqueue was given.
	Payload []byte
	// Attempt counts the runs of the job, from 1.
	Attempt int
	// Notify is where the job reports to.
	Notify *MessageRef
	// OriginRequestID is the request that enqueued the job.
	OriginRequestID string
}

// LockInfo describes a held lock.
type LockInfo struct {
	// Name is the lock's name.
	Name string
	// Owner holds it.
	Owner string
	// Reason says why.
	Reason string
	// AcquiredAt is when it was taken, to the second.
	AcquiredAt time.Time
	// ExpiresAt is when it expires; zero for never.
	ExpiresAt time.Time
	// JobID is the job the lock is tied to; 0 for none.
	JobID int64
}

// JobState is where a durable job is in its life.
type JobState string

// The states of a job.
const (
	JobQueued      JobState = "queued"
	JobRunning     JobState = "running"
	JobSucceeded   JobState = "succeeded"
	JobFailed      JobState = "failed"
	JobError       JobState = "error"
	JobCancelled   JobState = "cancelled"
	JobInterrupted JobState = "interrupted"
)

// String returns the state as the protocol's string names it ("queued").
func (s JobState) String() string { return string(s) }

// JobInfo describes one of the plugin's durable jobs.
type JobInfo struct {
	// ID is the job's id.
	ID int64
	// Kind is its JobHandler.Kind.
	Kind string
	// QueueKey is the key it was enqueued with.
	QueueKey string
	// State is where it is.
	State JobState
	// Payload is what Enqueue was given.
	Payload []byte
	// Detail says why a job failed or was cancelled.
	Detail string
	// Attempt counts its runs.
	Attempt int
	// CreatedAt is when it was enqueued.
	CreatedAt time.Time
	// StartedAt is when it last started; zero if it never did.
	StartedAt time.Time
	// FinishedAt is when it ended; zero while it has not.
	FinishedAt time.Time
	// Notify is where it reports to.
	Notify *MessageRef
}

// Outcome is how a call ended, as the plugin tells the host: for a job, how
// the job ended; "" for a command or event that went as it should.
type Outcome string

// The outcomes of a call.
const (
	OutcomeNone      Outcome = ""
	OutcomeSuccess   Outcome = "success"
	OutcomeFailure   Outcome = "failure"
	OutcomeError     Outcome = "error"
	OutcomeCancelled Outcome = "cancelled"
)

// String returns the outcome as the protocol's string names it
// ("success").
func (o Outcome) String() string { return string(o) }

// CommandOutcome is how a command run through RunCommand went, as audited.
type CommandOutcome string

// The outcomes of RunCommand.
const (
	CommandOK       CommandOutcome = "ok"
	CommandDenied   CommandOutcome = "denied"
	CommandError    CommandOutcome = "error"
	CommandUnknown  CommandOutcome = "unknown"
	CommandApproval CommandOutcome = "approval"
)

// String returns the outcome as the protocol's string names it ("ok").
func (o CommandOutcome) String() string { return string(o) }
