package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/chimaops/chima/sdk/pluginv1"
)

// Context is what a handler gets: the request, and the ways to answer it and
// to use the host's services. It is a context.Context that ends when the
// request is cancelled or times out.
type Context struct {
	context.Context

	// Command is the command that matched; nil for events and jobs.
	Command *CommandRequest
	// Event is the webhook event; nil for commands and jobs.
	Event *Event
	// Job is the job being run; nil for commands and events.
	Job *Job
	// Interaction is the click an Action handles; nil otherwise.
	Interaction *Interaction

	requestID string
	reply     *MessageRef // where replies go
	emit      func(*pluginv1.Event) error
	host      *hostClient
	settings  map[string]string
	logger    *slog.Logger
}

// Detached returns a copy of c that is not cancelled when c is: for the
// bookkeeping a handler does after its request was cancelled or timed out
// (record the outcome, tell the room with Post). Replies streamed after the
// cancel may not reach chat; use Post.
func (c *Context) Detached() *Context {
	cc := *c
	cc.Context = context.WithoutCancel(c.Context)
	return &cc
}

// ShuttingDown reports whether c was cancelled because Chima is stopping,
// as opposed to a person's cancel or a timeout.
func (c *Context) ShuttingDown() bool {
	return errors.Is(context.Cause(c.Context), ErrShutdown)
}

// RequestID is the host's id of the request being handled.
func (c *Context) RequestID() string { return c.requestID }

// Arg returns the value of a command argument, or "" when absent.
func (c *Context) Arg(name string) string {
	if c.Command == nil {
		return ""
	}
	return c.Command.Args[name]
}

// Int returns an Int argument; the host has already validated it.
func (c *Context) Int(name string) int64 {
	n, _ := strconv.ParseInt(c.Arg(name), 10, 64)
	return n
}

// Bool returns a Bool argument; the host has already normalised it.
func (c *Context) Bool(name string) bool { return c.Arg(name) == "true" }

// Duration returns a Duration argument; the host has already validated it.
func (c *Context) Duration(name string) time.Duration {
	d, _ := time.ParseDuration(c.Arg(name))
	return d
}

// User returns the person who sent the command or clicked the button (nil
// for events and jobs).
func (c *Context) User() *User {
	switch {
	case c.Command != nil:
		return c.Command.User
	case c.Interaction != nil:
		return c.Interaction.User
	}
	return nil
}

// Click says whether the request came from a click on a button, and on which
// message: a command run by a CommandButton, or an Action's click. It is nil
// for a typed command (and for events and jobs). Only the host sets it; no
// typed text can.
func (c *Context) Click() *ButtonClick {
	switch {
	case c.Command != nil:
		return c.Command.Button
	case c.Interaction != nil:
		return &ButtonClick{Message: c.Interaction.Message, ClickedAt: c.Interaction.ClickedAt}
	}
	return nil
}

// ButtonValue returns the value of the clicked action button, or "" when
// the request is not an Action's click.
func (c *Context) ButtonValue() string {
	if c.Interaction == nil {
		return ""
	}
	return c.Interaction.Value
}

// Source is the message the request answers: the command's message, the
// message whose button was clicked, or the job's notify target. Replies go
// there.
func (c *Context) Source() *MessageRef { return c.reply }

// Setting returns one of the plugin's settings from chima.yaml.
func (c *Context) Setting(name string) string { return c.settings[name] }

// Logger returns a structured logger whose records reach the host's log.
func (c *Context) Logger() *slog.Logger { return c.logger }

// Reply answers in the room the request came from.
func (c *Context) Reply(format string, args ...any) error {
	return c.ReplyOutput(&Output{Text: sprintf(format, args...)})
}

// ReplyOutput answers with a rich output in the room the request came from.
func (c *Context) ReplyOutput(o *Output) error {
	return c.emit(&pluginv1.Event{Kind: &pluginv1.Event_Reply{Reply: &pluginv1.Reply{Output: c.output(o)}}})
}

// ReplyInThread answers in the thread of the request, starting one if needed.
func (c *Context) ReplyInThread(o *Output) error {
	return c.emit(&pluginv1.Event{Kind: &pluginv1.Event_Reply{Reply: &pluginv1.Reply{Output: c.output(o), InThread: true}}})
}

// Progress reports the state of long work. Calls with the same key update one
// message where the chat service allows edits.
func (c *Context) Progress(key string, o *Output) error {
	return c.emit(&pluginv1.Event{Kind: &pluginv1.Event_Progress{Progress: &pluginv1.Progress{Key: key, Output: c.output(o)}}})
}

// output is o as the host takes it: with its mentions declared, or written
// as plain names for a host too old to replace them.
func (c *Context) output(o *Output) *pluginv1.Output {
	if c.host != nil && c.host.minor.Load() < mentionsMinor {
		o = withPlainMentions(o)
	}
	return outputToProto(o)
}

// Post sends a message to any room or thread and returns its reference.
func (c *Context) Post(to *MessageRef, o *Output) (*MessageRef, error) {
	h, err := c.host.get(c)
	if err != nil {
		return nil, err
	}
	resp, err := h.Post(c, &pluginv1.PostRequest{Target: refToProto(to), Output: c.output(o), RequestId: c.requestID})
	if err != nil {
		return nil, fmt.Errorf("post to %s: %w", roomOf(to), err)
	}
	return refFromProto(resp.GetMessage()), nil
}

// Update replaces the content of a message posted earlier.
func (c *Context) Update(ref *MessageRef, o *Output) error {
	h, err := c.host.get(c)
	if err != nil {
		return err
	}
	if _, err := h.Update(c, &pluginv1.UpdateRequest{Message: refToProto(ref), Output: c.output(o)}); err != nil {
		return fmt.Errorf("update message %s: %w", messageIDOf(ref), err)
	}
	return nil
}

// EnqueueOptions tune a durable job.
type EnqueueOptions struct {
	// QueueKey serialises jobs: those sharing a key run one at a time, in
	// order (one deploy per app and environment, say).
	QueueKey string
	// Notify is where the job reports; by default the request's room/thread.
	Notify *MessageRef
	// Delay postpones the job.
	Delay time.Duration
	// Title says what the job is, for people ("deployment #8 of demo/main
	// to staging"). The host names the job by it when it has to tell the
	// room itself, for example when the plugin crashed under it and stays
	// down.
	Title string
}

// Enqueue adds a durable job of one of this plugin's job kinds. It survives
// restarts; the host runs it with the plugin's JobHandler for that kind.
func (c *Context) Enqueue(kind string, payload []byte, o EnqueueOptions) (int64, error) {
	h, err := c.host.get(c)
	if err != nil {
		return 0, err
	}
	notify := o.Notify
	if notify == nil {
		notify = c.Source()
	}
	resp, err := h.Enqueue(c, &pluginv1.EnqueueRequest{
		Kind: kind, Payload: payload, QueueKey: o.QueueKey, Notify: refToProto(notify),
		OriginRequestId: c.origin(), DelaySeconds: ceilSeconds(o.Delay), Title: o.Title,
	})
	if err != nil {
		return 0, fmt.Errorf("enqueue %s job: %w", kind, err)
	}
	return resp.GetJobId(), nil
}

// origin is the request that jobs enqueued now should be traced back to.
func (c *Context) origin() string {
	if c.Job != nil && c.Job.OriginRequestID != "" {
		return c.Job.OriginRequestID
	}
	return c.requestID
}

// LockOptions describe a lock to take.
type LockOptions struct {
	// Owner says who holds the lock ("request 42", a job, a person); only
	// the same owner releases it without force.
	Owner string
	// Reason says why it is held, for whoever finds it taken.
	Reason string
	// TTL makes the lock expire; zero holds it until released.
	TTL time.Duration
	// JobID ties the lock to a job: it is released when the job ends.
	JobID int64
}

// Lock takes a named lock. When someone else holds it, acquired is false and
// holder says who, why and since when.
func (c *Context) Lock(name string, o LockOptions) (acquired bool, holder *LockInfo, err error) {
	h, err := c.host.get(c)
	if err != nil {
		return false, nil, err
	}
	resp, err := h.Lock(c, &pluginv1.LockRequest{
		Name: name, Owner: o.Owner, Reason: o.Reason,
		TtlSeconds: ceilSeconds(o.TTL), JobId: o.JobID,
	})
	if err != nil {
		return false, nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return resp.GetAcquired(), lockFromProto(resp.GetHolder()), nil
}

// Unlock releases a named lock held by owner, or by anyone when force is set.
func (c *Context) Unlock(name, owner string, force bool) (released bool, holder *LockInfo, err error) {
	h, err := c.host.get(c)
	if err != nil {
		return false, nil, err
	}
	resp, err := h.Unlock(c, &pluginv1.UnlockRequest{Name: name, Owner: owner, Force: force})
	if err != nil {
		return false, nil, fmt.Errorf("unlock %s: %w", name, err)
	}
	return resp.GetReleased(), lockFromProto(resp.GetHolder()), nil
}

// Locks lists the held locks whose names start with prefix.
func (c *Context) Locks(prefix string) ([]*LockInfo, error) {
	h, err := c.host.get(c)
	if err != nil {
		return nil, err
	}
	resp, err := h.Locks(c, &pluginv1.LocksRequest{Prefix: prefix})
	if err != nil {
		return nil, fmt.Errorf("list locks %s*: %w", prefix, err)
	}
	return locksFromProto(resp.GetLocks()), nil
}

// KV is the plugin's own small key-value state, kept by the host.
func (c *Context) KV() KV { return KV{c: c} }

// KV reads and writes the plugin's key-value state.
type KV struct{ c *Context }

// Get returns the value of key and whether it exists.
func (kv KV) Get(key string) ([]byte, bool, error) {
	h, err := kv.c.host.get(kv.c)
	if err != nil {
		return nil, false, err
	}
	resp, err := h.KVGet(kv.c, &pluginv1.KVGetRequest{Key: key})
	if err != nil {
		return nil, false, fmt.Errorf("kv get %s: %w", key, err)
	}
	return resp.GetValue(), resp.GetFound(), nil
}

// Set stores value under key.
func (kv KV) Set(key string, value []byte) error {
	h, err := kv.c.host.get(kv.c)
	if err != nil {
		return err
	}
	if _, err := h.KVSet(kv.c, &pluginv1.KVSetRequest{Key: key, Value: value}); err != nil {
		return fmt.Errorf("kv set %s: %w", key, err)
	}
	return nil
}

// Delete removes key.
func (kv KV) Delete(key string) error {
	h, err := kv.c.host.get(kv.c)
	if err != nil {
		return err
	}
	if _, err := h.KVDelete(kv.c, &pluginv1.KVDeleteRequest{Key: key}); err != nil {
		return fmt.Errorf("kv delete %s: %w", key, err)
	}
	return nil
}

// List returns the keys that start with prefix, sorted.
func (kv KV) List(prefix string) ([]string, error) {
	h, err := kv.c.host.get(kv.c)
	if err != nil {
		return nil, err
	}
	resp, err := h.KVList(kv.c, &pluginv1.KVListRequest{Prefix: prefix})
	if err != nil {
		return nil, fmt.Errorf("kv list %s: %w", prefix, err)
	}
	return resp.GetKeys(), nil
}

// ceilSeconds rounds d up to whole seconds, the protocol's unit: a TTL of
// half a second must not become 0, which means "never expires".
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// roomOf and messageIDOf name a message in errors, nil included.
func roomOf(r *MessageRef) string {
	if r == nil {
		return ""
	}
	return r.Room
}

func messageIDOf(r *MessageRef) string {
	if r == nil {
		return ""
	}
	return r.MessageID
}

func sprintf(format string, args ...any) string {
	if len(args) == 0 {
		return format
	}
	return fmt.Sprintf(format, args...)
}

// CancelJob stops one of the plugin's jobs: a queued job is cancelled, a
// running one has its context cancelled. cancelled is false for a job that
// had already ended.
func (c *Context) CancelJob(id int64) (cancelled bool, job *JobInfo, err error) {
	h, err := c.host.get(c)
	if err != nil {
		return false, nil, err
	}
	resp, err := h.CancelJob(c, &pluginv1.CancelJobRequest{JobId: id})
	if err != nil {
		return false, nil, fmt.Errorf("cancel job %d: %w", id, err)
	}
	return resp.GetCancelled(), jobInfoFromProto(resp.GetJob()), nil
}

// JobFilter selects jobs for Jobs; zero fields match everything.
type JobFilter struct {
	// Kind is the job kind; "" for any.
	Kind string
	// QueueKey is the queue key as given to Enqueue; "" for any.
	QueueKey string
	// States are the states to list; empty for any.
	States []JobState
	// Limit is the most jobs listed; 0 for the host's default.
	Limit int
}

// Jobs lists the plugin's jobs, newest first.
func (c *Context) Jobs(f JobFilter) ([]*JobInfo, error) {
	h, err := c.host.get(c)
	if err != nil {
		return nil, err
	}
	names, codes := jobStatesToProto(f.States)
	resp, err := h.Jobs(c, &pluginv1.JobsRequest{Kind: f.Kind, QueueKey: f.QueueKey, States: names, StateCodes: codes, Limit: int32(f.Limit)})
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return jobInfosFromProto(resp.GetJobs()), nil
}

// AppendLog appends data to the plugin's log called name, kept by the host
// (a deploy's output, say). It returns the log's new size.
func (c *Context) AppendLog(name string, data []byte) (int64, error) {
	h, err := c.host.get(c)
	if err != nil {
		return 0, err
	}
	resp, err := h.AppendLog(c, &pluginv1.AppendLogRequest{Name: name, Data: data})
	if err != nil {
		return 0, fmt.Errorf("append to log %s: %w", name, err)
	}
	return resp.GetSize(), nil
}

// ReadLog reads the plugin's log called name from offset; limit <= 0 reads
// to the end. found is false for a log never written.
func (c *Context) ReadLog(name string, offset, limit int64) (data []byte, size int64, found bool, err error) {
	h, err := c.host.get(c)
	if err != nil {
		return nil, 0, false, err
	}
	resp, err := h.ReadLog(c, &pluginv1.ReadLogRequest{Name: name, Offset: offset, Limit: limit})
	if err != nil {
		return nil, 0, false, fmt.Errorf("read log %s: %w", name, err)
	}
	return resp.GetData(), resp.GetSize(), resp.GetFound(), nil
}

// InterruptedJob decodes the job of an EventJobInterrupted event.
func (c *Context) InterruptedJob() (*Job, error) {
	if c.Event == nil || c.Event.Type != EventJobInterrupted {
		return nil, fmt.Errorf("not a %s event", EventJobInterrupted)
	}
	j := &pluginv1.JobRequest{}
	if err := proto.Unmarshal(c.Event.Payload, j); err != nil {
		return nil, fmt.Errorf("decode interrupted job: %w", err)
	}
	return jobFromProto(j), nil
}
