// Package sdktest runs a Chima plugin in-process through the real gRPC glue
// (go-plugin's test connection, the generated protocol code and the SDK's
// server), with an in-memory Host service, so a plugin author can test a
// plugin without a bot:
//
//	func TestHello(t *testing.T) {
//		h := sdktest.New(t, plugin())
//		res := h.Command("hello", sdktest.Args{"name": "world"})
//		if res.Text() != "Hello, world!" { t.Fatal(res.Text()) }
//	}
//
// Arguments are passed already parsed, the way the host hands them over;
// parsing chat text is the host's job and is tested there.
package sdktest

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

// Args are a command's parsed arguments by name.
type Args map[string]string

// Harness is one plugin running in-process.
type Harness struct {
	t    testing.TB
	conn *wire.Conn
	// Host is the in-memory Host service the plugin talks to: what it
	// posted, enqueued, locked and stored, for the test to read and set.
	Host *FakeHost
	// Manifest is what the plugin declared, as the protocol carries it to
	// the host. It is the protocol's generated message, and changes as the
	// protocol does; a test of the plugin's commands reads Commands.
	Manifest *pluginv1.Manifest
	// User is the sender of commands; change it to test permissions logic.
	User *sdk.User
	// Room is where commands come from.
	Room  string
	seq   int
	close func()
}

// New starts p behind go-plugin's in-process gRPC connection, serves a
// FakeHost back to it through the broker, and calls Describe with settings.
// Everything is closed when the test ends.
func New(t testing.TB, p *sdk.Plugin, settings ...map[string]string) *Harness {
	t.Helper()
	client, srv := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		wire.PluginName: &wire.GRPCPlugin{Impl: func(b *plugin.GRPCBroker) pluginv1.PluginServer {
			return sdk.NewServer(p, b, nil)
		}},
	})
	raw, err := client.Dispense(wire.PluginName)
	if err != nil {
		t.Fatalf("dispense plugin: %v", err)
	}
	conn := raw.(*wire.Conn)
	host := NewFakeHost()
	id := conn.Broker.NextId()
	go conn.Broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		pluginv1.RegisterHostServer(s, host)
		return s
	})
	h := &Harness{
		t: t, conn: conn, Host: host,
		User: &sdk.User{ID: "tester", Name: "Tester"}, Room: "test",
		// Stop the server before closing the client: Close asks go-plugin's
		// controller to stop the server too, and both at once race.
		close: func() { srv.Stop(); client.Close() },
	}
	t.Cleanup(h.close)
	var s map[string]string
	if len(settings) > 0 {
		s = settings[0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := conn.Plugin.Describe(ctx, &pluginv1.DescribeRequest{HostServiceId: id, Settings: s, ProtocolMinor: wire.ProtocolMinor})
	if err != nil {
		t.Fatalf("describe plugin: %v", err)
	}
	h.Manifest = m
	host.mu.Lock()
	host.manifest = m
	host.mu.Unlock()
	return h
}

// Result is everything a call said, in order.
type Result struct {
	// Events are the call's events as the protocol carried them, for
	// tests of their order. They are the protocol's generated messages,
	// and change as the protocol does; Replies, Progress, Errors and Done
	// are the same events in the SDK's own types.
	Events []*pluginv1.Event
	// Replies are the outputs of Reply events.
	Replies []*sdk.Output
	// Progress are the Progress events.
	Progress []Progress
	// Errors are the user-facing errors.
	Errors []*sdk.UserError
	// Done is how the call ended.
	Done Done
	// ApprovalNeeded is set when the command asked to be approved before
	// it runs (sdk.NeedApproval or sdk.NeedConfirmation): who must
	// approve, and whether the requester is to confirm.
	ApprovalNeeded *sdk.ApprovalRequiredError
}

// Text joins the text of every reply with newlines.
func (r Result) Text() string {
	parts := make([]string, 0, len(r.Replies))
	for _, o := range r.Replies {
		parts = append(parts, o.Text)
	}
	return strings.Join(parts, "\n")
}

// Command runs command with args as the harness's User in its Room.
func (h *Harness) Command(command string, args Args) Result {
	h.t.Helper()
	return h.handle(command, args, func(*pluginv1.CommandRequest) {})
}

// ApprovedCommand runs command with args as the host does once its approval
// was granted: with CommandRequest.approval set to a.
func (h *Harness) ApprovedCommand(command string, args Args, a *sdk.Approval) Result {
	h.t.Helper()
	return h.handle(command, args, func(req *pluginv1.CommandRequest) { req.Approval = approvalToProto(a) })
}

// TriggeredCommand runs command with args as the host does when plugin by
// ran it through Context.RunCommand on the harness's User's behalf ("chima"
// for a schedule): Context.TriggeredBy says by.
func (h *Harness) TriggeredCommand(by, command string, args Args) Result {
	h.t.Helper()
	return h.handle(command, args, func(req *pluginv1.CommandRequest) { req.TriggeredBy = by })
}

// handle sends the plugin command with args from the harness's User in its
// Room, as set leaves the request, and collects what it answers.
func (h *Harness) handle(command string, args Args, set func(*pluginv1.CommandRequest)) Result {
	h.t.Helper()
	h.seq++
	req := &pluginv1.CommandRequest{
		RequestId: h.requestID(),
		Command:   command,
		Args:      args,
		User:      userToProto(h.User),
		Message:   &pluginv1.MessageRef{Adapter: "test", Room: h.Room, MessageId: h.requestID()},
	}
	set(req)
	stream, err := h.conn.Plugin.Handle(h.ctx(), req)
	return h.collect(stream, err)
}

// JobInterrupted tells the plugin that job was running when the host died,
// as a host of protocol minor 7 does.
func (h *Harness) JobInterrupted(job *sdk.Job) Result {
	h.t.Helper()
	h.seq++
	stream, err := h.conn.Plugin.JobInterrupted(h.ctx(), &pluginv1.JobInterruptedRequest{
		RequestId: h.requestID(), Job: jobToProto(job), InterruptedUnix: time.Now().Unix(),
		Reason: "chima stopped while the job was running",
	})
	return h.collect(stream, err)
}

// Event delivers a webhook event of type typ.
func (h *Harness) Event(typ string, payload []byte) Result {
	h.t.Helper()
	h.seq++
	stream, err := h.conn.Plugin.HandleEvent(h.ctx(), &pluginv1.WebhookEvent{
		RequestId: h.requestID(), Type: typ, DeliveryId: h.requestID(), Payload: payload,
	})
	return h.collect(stream, err)
}

// Job runs a job of kind with payload, notifying the harness's Room.
func (h *Harness) Job(kind string, payload []byte) Result {
	h.t.Helper()
	h.seq++
	stream, err := h.conn.Plugin.RunJob(h.ctx(), &pluginv1.JobRequest{
		RequestId: h.requestID(), JobId: int64(h.seq), Kind: kind, Payload: payload, Attempt: 1,
		Notify: &pluginv1.MessageRef{Adapter: "test", Room: h.Room},
	})
	return h.collect(stream, err)
}

// RunEnqueued runs every queued job the plugin has enqueued so far, oldest
// first, as the host's workers would, and returns their results. A job
// cancelled with FakeHost.CancelJob while it runs (from another goroutine)
// ends as the host ends it: its call is cancelled, and its result is what
// arrived before, with Done's outcome cancelled.
func (h *Harness) RunEnqueued() []Result {
	h.t.Helper()
	var out []Result
	for _, j := range h.Host.takeQueued() {
		h.seq++
		ctx, stop := context.WithCancel(h.ctx())
		if !h.Host.starting(j.GetId(), stop) {
			stop()
			continue
		}
		stream, err := h.conn.Plugin.RunJob(ctx, &pluginv1.JobRequest{
			RequestId: h.requestID(), JobId: j.GetId(), Kind: j.GetKind(), Payload: j.GetPayload(),
			Attempt: 1, Notify: j.GetNotify(), OriginRequestId: h.Host.origin(j.GetId()),
		})
		res := h.collectUntil(stream, err, ctx)
		stop()
		state := sdk.JobSucceeded
		switch res.Done.Outcome {
		case sdk.OutcomeFailure:
			state = sdk.JobFailed
		case sdk.OutcomeError:
			state = sdk.JobError
		case sdk.OutcomeCancelled:
			state = sdk.JobCancelled
		}
		h.Host.finish(j.GetId(), string(state))
		out = append(out, res)
	}
	return out
}

// HTTP performs a GET of path on the plugin's pages.
func (h *Harness) HTTP(path string) *HTTPResponse {
	h.t.Helper()
	return h.HTTPWithHeaders(path, nil)
}

// HTTPWithHeaders performs a GET of path on the plugin's pages with request
// headers, as the host passes them on (Accept, User-Agent).
func (h *Harness) HTTPWithHeaders(path string, headers map[string]string) *HTTPResponse {
	h.t.Helper()
	p, q, _ := strings.Cut(path, "?")
	resp, err := h.conn.Plugin.HandleHTTP(h.ctx(), &pluginv1.HTTPRequest{Method: "GET", Path: p, Query: q, Headers: headers})
	if err != nil {
		h.t.Fatalf("http %s: %v", path, err)
		return nil
	}
	return &HTTPResponse{Status: int(resp.GetStatus()), Headers: resp.GetHeaders(), Body: resp.GetBody()}
}

// HTTPResponse is a page's answer, as the host hands it on.
type HTTPResponse struct {
	// Status is the HTTP status code.
	Status int
	// Headers are the response's headers, one value each.
	Headers map[string]string
	// Body is the response's body.
	Body []byte
}

func (h *Harness) requestID() string { return "req-" + itoa(h.seq) }

func (h *Harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	h.t.Cleanup(cancel)
	return ctx
}

type eventStream interface {
	Recv() (*pluginv1.Event, error)
}

func (h *Harness) collect(stream eventStream, err error) Result {
	h.t.Helper()
	return h.collectUntil(stream, err, nil)
}

// collectUntil collects a call's events; a call whose context cancelled
// ends, when that cancel cut it short, as the host ends a cancelled job.
func (h *Harness) collectUntil(stream eventStream, err error, cancelled context.Context) Result {
	h.t.Helper()
	var r Result
	done := false
	if err != nil {
		h.t.Fatalf("call plugin: %v", err)
		return r
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && cancelled != nil && cancelled.Err() != nil && !done {
			r.Done.Outcome, r.Done.Detail = sdk.OutcomeCancelled, "cancelled"
			return r
		}
		if err != nil {
			h.t.Fatalf("receive from plugin: %v", err)
			return r
		}
		r.Events = append(r.Events, ev)
		switch k := ev.GetKind().(type) {
		case *pluginv1.Event_Reply:
			o := outputFromProto(k.Reply.GetOutput())
			r.Replies = append(r.Replies, o)
			h.checkStreamed(o)
		case *pluginv1.Event_Progress:
			o := outputFromProto(k.Progress.GetOutput())
			r.Progress = append(r.Progress, Progress{Key: k.Progress.GetKey(), Output: o})
			h.checkStreamed(o)
		case *pluginv1.Event_Error:
			r.Errors = append(r.Errors, userErrorFromProto(k.Error))
		case *pluginv1.Event_Done:
			r.Done.Outcome, r.Done.Detail = doneFromProto(k.Done)
			done = true
		case *pluginv1.Event_ApprovalNeeded:
			r.ApprovalNeeded = approvalNeededFromProto(k.ApprovalNeeded)
		}
	}
	if !done {
		h.t.Fatalf("plugin ended the call without Done; events: %v", r.Events)
	}
	return r
}

// checkStreamed fails the test for a streamed button the host would leave
// out: nobody would ever see it.
func (h *Harness) checkStreamed(o *sdk.Output) {
	h.t.Helper()
	if err := checkButtons(o, h.declares); err != nil {
		h.t.Errorf("%v (the host leaves it out of the message)", err)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
