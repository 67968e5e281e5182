package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

const (
	capabilityMultiplex = wire.CapabilityMultiplex
	protocolMinor       = wire.ProtocolMinor
)

// server implements the Plugin gRPC service on top of a *Plugin.
type server struct {
	pluginv1.UnimplementedPluginServer

	p        *Plugin
	commands map[string]*Command
	events   map[string]*EventHandler
	jobs     map[string]*JobHandler
	actions  map[string]*Action
	host     *hostClient
	logger   *slog.Logger

	mu       sync.RWMutex
	settings map[string]string
}

// NewServer returns the gRPC Plugin service for p. Serve uses it; so does
// sdktest, to run a plugin in-process through the real gRPC glue. broker may
// be nil when no host service is available.
func NewServer(p *Plugin, broker *plugin.GRPCBroker, logger *slog.Logger) pluginv1.PluginServer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &server{
		p:        p,
		commands: map[string]*Command{},
		events:   map[string]*EventHandler{},
		jobs:     map[string]*JobHandler{},
		actions:  map[string]*Action{},
		host:     &hostClient{broker: broker},
		logger:   logger,
	}
	for i := range p.Commands {
		s.commands[p.Commands[i].Name] = &p.Commands[i]
	}
	for i := range p.Events {
		s.events[p.Events[i].Type] = &p.Events[i]
	}
	for i := range p.Jobs {
		s.jobs[p.Jobs[i].Kind] = &p.Jobs[i]
	}
	for i := range p.Actions {
		s.actions[p.Actions[i].Name] = &p.Actions[i]
	}
	return s
}

// Describe configures the plugin and returns its manifest. It connects to
// the Host service before it answers: go-plugin's broker keeps the
// connection info of a service nobody dialled for only 5 s, so a plugin that
// dialled on first use (a command after 10 s idle) could never reach it.
func (s *server) Describe(_ context.Context, req *pluginv1.DescribeRequest) (*pluginv1.Manifest, error) {
	if err := s.host.connect(req.GetHostServiceId()); err != nil {
		return nil, fmt.Errorf("%s: %w", s.p.Name, err)
	}
	s.host.minor.Store(req.GetProtocolMinor())
	s.mu.Lock()
	s.settings = req.GetSettings()
	s.mu.Unlock()
	if s.p.Settings != nil {
		if err := DecodeSettings(req.GetSettingsJson(), req.GetSettings(), s.p.Settings); err != nil {
			return nil, fmt.Errorf("configure %s: %w", s.p.Name, err)
		}
	}
	if s.p.Configure != nil {
		if err := s.p.Configure(req.GetSettings()); err != nil {
			return nil, fmt.Errorf("configure %s: %w", s.p.Name, err)
		}
	}
	return s.p.manifest(), nil
}

// Validate checks settings by decoding them into the plugin's Settings
// and with its Validate func, without configuring anything. A plugin with
// none of Settings, Validate and Configure reads no settings, so any are
// valid; one with only Configure answers Unimplemented, as a plugin built
// before protocol minor 4 does: it can check its settings only by acting
// on them.
func (s *server) Validate(_ context.Context, req *pluginv1.ValidateRequest) (*pluginv1.ValidateResponse, error) {
	if s.p.Validate == nil && s.p.Configure == nil && s.p.Settings == nil {
		return &pluginv1.ValidateResponse{}, nil
	}
	if s.p.Validate == nil && s.p.Settings == nil {
		return nil, status.Errorf(codes.Unimplemented, "%s does not validate its settings", s.p.Name)
	}
	var err error
	if s.p.Settings != nil {
		err = DecodeSettings(req.GetSettingsJson(), req.GetSettings(), s.p.Settings)
	}
	if err == nil && s.p.Validate != nil {
		err = s.p.Validate(req.GetSettings())
	}
	if err == nil {
		return &pluginv1.ValidateResponse{}, nil
	}
	var se *SettingsError
	if !errors.As(err, &se) {
		return &pluginv1.ValidateResponse{Problems: []*pluginv1.SettingsProblem{{Message: err.Error()}}}, nil
	}
	resp := &pluginv1.ValidateResponse{}
	for _, p := range se.Problems {
		resp.Problems = append(resp.Problems, &pluginv1.SettingsProblem{
			File: p.File, Line: uint32(max(p.Line, 0)), Key: p.Key, Message: p.Message,
		})
	}
	return resp, nil
}

// Handle runs one command, streaming its events.
func (s *server) Handle(req *pluginv1.CommandRequest, stream pluginv1.Plugin_HandleServer) error {
	return s.run(stream.Context(), &pluginv1.Call{Kind: &pluginv1.Call_Command{Command: req}}, stream.Send)
}

// HandleEvent runs one webhook event handler, streaming its events.
func (s *server) HandleEvent(req *pluginv1.WebhookEvent, stream pluginv1.Plugin_HandleEventServer) error {
	return s.run(stream.Context(), &pluginv1.Call{Kind: &pluginv1.Call_Event{Event: req}}, stream.Send)
}

// RunJob runs one job, streaming its events.
func (s *server) RunJob(req *pluginv1.JobRequest, stream pluginv1.Plugin_RunJobServer) error {
	return s.run(stream.Context(), &pluginv1.Call{Kind: &pluginv1.Call_Job{Job: req}}, stream.Send)
}

// HandleInteraction runs one click on an action button, streaming its
// events.
func (s *server) HandleInteraction(req *pluginv1.InteractionRequest, stream pluginv1.Plugin_HandleInteractionServer) error {
	return s.run(stream.Context(), &pluginv1.Call{Kind: &pluginv1.Call_Interaction{Interaction: req}}, stream.Send)
}

// JobInterrupted tells the plugin that one of its jobs was interrupted,
// streaming what its handler says.
func (s *server) JobInterrupted(req *pluginv1.JobInterruptedRequest, stream pluginv1.Plugin_JobInterruptedServer) error {
	return s.run(stream.Context(), &pluginv1.Call{Kind: &pluginv1.Call_JobInterrupted{JobInterrupted: req}}, stream.Send)
}

// maxPageBytes bounds one page's response: it travels in one gRPC message.
const maxPageBytes = 8 << 20

type pageKey struct{}

// PageContext returns the Context of a page request, through which a page
// handler uses the host (ReadLog, KV, Jobs). Replies go nowhere.
func PageContext(r *http.Request) *Context {
	c, _ := r.Context().Value(pageKey{}).(*Context)
	return c
}

// HandleHTTP serves a GET for one of the plugin's pages.
func (s *server) HandleHTTP(ctx context.Context, req *pluginv1.HTTPRequest) (*pluginv1.HTTPResponse, error) {
	var page *Page // the longest matching prefix, as the host chooses
	for i := range s.p.Pages {
		pg := &s.p.Pages[i]
		if strings.HasPrefix(req.GetPath(), pg.Prefix) && (page == nil || len(pg.Prefix) > len(page.Prefix)) {
			page = pg
		}
	}
	if page == nil {
		return &pluginv1.HTTPResponse{Status: http.StatusNotFound, Body: []byte("not found\n")}, nil
	}
	u := &url.URL{Path: req.GetPath(), RawQuery: req.GetQuery()}
	hr, err := http.NewRequestWithContext(ctx, req.GetMethod(), u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for k, v := range req.GetHeaders() {
		hr.Header.Set(k, v)
	}
	c := &Context{Context: ctx, emit: func(*pluginv1.Event) error { return nil }, host: s.host, logger: s.logger}
	s.mu.RLock()
	c.settings = s.settings
	s.mu.RUnlock()
	hr = hr.WithContext(context.WithValue(ctx, pageKey{}, c))
	// A recorder buffers the handler's answer: it travels back in one message.
	rec := httptest.NewRecorder()
	if err := safeServe(page.Handler, rec, hr, s.logger); err != nil {
		return &pluginv1.HTTPResponse{Status: http.StatusInternalServerError, Body: []byte("the page failed\n")}, nil
	}
	resp := &pluginv1.HTTPResponse{Status: int32(rec.Code), Headers: map[string]string{}}
	for k := range rec.Header() {
		resp.Headers[k] = rec.Header().Get(k)
	}
	body := rec.Body.Bytes()
	if len(body) > maxPageBytes {
		body = body[len(body)-maxPageBytes:]
	}
	resp.Body = body
	return resp, nil
}

// Multiplex serves many calls over one stream. Each call runs in its own
// goroutine; sends are serialised because a gRPC stream allows one sender.
func (s *server) Multiplex(stream pluginv1.Plugin_MultiplexServer) error {
	ctx := stream.Context()
	var (
		sendMu  sync.Mutex
		mu      sync.Mutex
		cancels = map[uint64]context.CancelCauseFunc{}
		wg      sync.WaitGroup
	)
	defer func() {
		mu.Lock()
		for _, cancel := range cancels {
			cancel(context.Canceled)
		}
		mu.Unlock()
		wg.Wait()
	}()
	for {
		call, err := stream.Recv()
		if err != nil {
			// The host closed the stream or went away: stop every call.
			return nil
		}
		id := call.GetId()
		if k, ok := call.GetKind().(*pluginv1.Call_Cancel); ok {
			cause := context.Canceled
			if k.Cancel.GetReason() == wire.CancelReasonShutdown {
				cause = ErrShutdown
			}
			mu.Lock()
			if cancel := cancels[id]; cancel != nil {
				cancel(cause)
			}
			mu.Unlock()
			continue
		}
		callCtx, cancel := context.WithCancelCause(ctx)
		mu.Lock()
		cancels[id] = cancel
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(cancels, id)
				mu.Unlock()
				cancel(context.Canceled)
			}()
			emit := func(ev *pluginv1.Event) error {
				sendMu.Lock()
				defer sendMu.Unlock()
				return stream.Send(&pluginv1.CallEvent{Id: id, Event: ev})
			}
			if err := s.run(callCtx, call, emit); err != nil {
				s.logger.Error("call failed", "id", id, "error", err)
			}
		}()
	}
}

// run dispatches one call to its handler and always ends it with Done.
func (s *server) run(ctx context.Context, call *pluginv1.Call, send func(*pluginv1.Event) error) error {
	// A handler may report from several goroutines (progress from a ticker
	// while it works); a gRPC stream takes one sender at a time.
	var mu sync.Mutex
	emit := func(ev *pluginv1.Event) error {
		mu.Lock()
		defer mu.Unlock()
		return send(ev)
	}
	c := &Context{Context: ctx, emit: emit, host: s.host, logger: s.logger}
	s.mu.RLock()
	c.settings = s.settings
	s.mu.RUnlock()

	var handler func(*Context) error
	switch k := call.GetKind().(type) {
	case *pluginv1.Call_Command:
		c.Command = commandFromProto(k.Command)
		c.requestID, c.reply = c.Command.RequestID, c.Command.Message
		if cmd := s.commands[k.Command.GetCommand()]; cmd != nil {
			handler = cmd.Run
		}
	case *pluginv1.Call_Event:
		c.Event = eventFromProto(k.Event)
		c.requestID = c.Event.RequestID
		if h := s.events[k.Event.GetType()]; h != nil {
			handler = h.Run
		}
	case *pluginv1.Call_Job:
		c.Job = jobFromProto(k.Job)
		c.requestID, c.reply = c.Job.RequestID, c.Job.Notify
		if h := s.jobs[k.Job.GetKind()]; h != nil {
			handler = h.Run
		}
	case *pluginv1.Call_Interaction:
		c.Interaction = interactionFromProto(k.Interaction)
		c.requestID, c.reply = c.Interaction.RequestID, c.Interaction.Message
		if a := s.actions[k.Interaction.GetAction()]; a != nil {
			handler = a.Run
		}
	case *pluginv1.Call_JobInterrupted:
		job := k.JobInterrupted.GetJob()
		c.Job = jobFromProto(job)
		c.requestID, c.reply = k.JobInterrupted.GetRequestId(), refFromProto(job.GetNotify())
		if s.p.OnJobInterrupted != nil {
			handler = s.p.OnJobInterrupted
		} else if h := s.events[EventJobInterrupted]; h != nil {
			// A handler written for the event of minors before 7 reads
			// the job from the event's payload.
			payload, err := proto.Marshal(job)
			if err != nil {
				return emitDone(emit, OutcomeError, fmt.Sprintf("encode interrupted job: %v", err))
			}
			c.Job, c.Event = nil, &Event{RequestID: c.requestID, Type: EventJobInterrupted, Payload: payload}
			handler = h.Run
		}
	}
	if handler == nil {
		err := fmt.Errorf("%s has no handler for this call", s.p.Name)
		return emitDone(emit, OutcomeError, err.Error())
	}
	if err := safeRun(handler, c); err != nil {
		if need, ok := approvalNeeded(err); ok && c.Command != nil {
			if e := emit(&pluginv1.Event{Kind: &pluginv1.Event_ApprovalNeeded{ApprovalNeeded: need}}); e != nil {
				return e
			}
			return emitDone(emit, OutcomeNone, "")
		}
		var ue *UserError
		if errors.As(err, &ue) {
			if e := emit(&pluginv1.Event{Kind: &pluginv1.Event_Error{Error: userErrorToProto(ue)}}); e != nil {
				return e
			}
			return emitDone(emit, OutcomeFailure, ue.Error())
		}
		outcome := OutcomeFailure
		if c.Job == nil || errors.Is(err, errPanic) {
			// A command failing with a Go error, or any call panicking:
			// the plugin broke, and the host says so.
			outcome = OutcomeError
		}
		if ctx.Err() != nil {
			outcome = OutcomeCancelled
		}
		return emitDone(emit, outcome, err.Error())
	}
	outcome := OutcomeNone
	if c.Job != nil {
		outcome = OutcomeSuccess
	}
	return emitDone(emit, outcome, "")
}

// errPanic marks a handler that panicked: the plugin broke, whatever kind
// of call it was.
var errPanic = errors.New("panic")

// safeServe runs a page handler, turning a panic into an error so that one
// bad page does not take the plugin and its calls down.
func safeServe(h http.Handler, w http.ResponseWriter, r *http.Request, logger *slog.Logger) (err error) {
	defer func() {
		if p := recover(); p != nil {
			logger.Error("page handler panicked", "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", errPanic, p)
		}
	}()
	h.ServeHTTP(w, r)
	return nil
}

// safeRun turns a handler panic into an error, so one bad call does not take
// every other call of the plugin down with it.
func safeRun(h func(*Context) error, c *Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.logger.Error("handler panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", errPanic, r)
		}
	}()
	return h(c)
}

func emitDone(emit func(*pluginv1.Event) error, outcome Outcome, detail string) error {
	return emit(&pluginv1.Event{Kind: &pluginv1.Event_Done{Done: doneToProto(outcome, detail)}})
}

// hostClient is the plugin's connection to the host's Host service. It is
// dialled once per Describe, while the broker still holds the connection
// info; the gRPC connection then redials the same socket by itself.
type hostClient struct {
	broker *plugin.GRPCBroker

	// minor is the protocol minor the host said it speaks in Describe.
	minor atomic.Uint32

	mu     sync.Mutex
	id     uint32
	client pluginv1.HostClient
	conn   *grpc.ClientConn
}

// connect dials the Host service served on broker id, unless it is already
// connected to it. id 0 means the host serves none (explain-only mode).
func (h *hostClient) connect(id uint32) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if id == h.id && h.client != nil {
		return nil
	}
	if h.conn != nil {
		_ = h.conn.Close()
	}
	h.id, h.client, h.conn = id, nil, nil
	if id == 0 || h.broker == nil {
		return nil
	}
	// Never idle the connection: an idle channel redials on its next call,
	// a path that only an hour of quiet would exercise. One local socket
	// held open costs nothing.
	opts := append(wire.DialOptions(), grpc.WithIdleTimeout(0))
	conn, err := h.broker.DialWithOptions(id, opts...)
	if err != nil {
		return fmt.Errorf("dial host service %d: %w", id, err)
	}
	h.client, h.conn = pluginv1.NewHostClient(conn), conn
	return nil
}

// get returns the Host client, or ErrNoHost when the host serves none.
func (h *hostClient) get(context.Context) (pluginv1.HostClient, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.client == nil {
		return nil, ErrNoHost
	}
	return h.client, nil
}

// grpcServer builds the plugin's gRPC server with the protocol's limits.
func grpcServer(opts []grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append(opts, wire.GRPCOptions()...)...)
}
