package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chimaops/chima/core/approvals"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/events"
	"github.com/chimaops/chima/core/jobs"
	"github.com/chimaops/chima/core/mention"
	"github.com/chimaops/chima/core/outbox"
	"github.com/chimaops/chima/core/pluginhost"
	"github.com/chimaops/chima/core/policy"
	"github.com/chimaops/chima/core/redact"
	"github.com/chimaops/chima/core/router"
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

// Plugins is what the bot needs of the plugin host.
type Plugins interface {
	Call(ctx context.Context, plugin string, call *pluginv1.Call, fn func(*pluginv1.Event)) error
	State(plugin string) pluginhost.State
	PluginStatus(plugin string) (pluginhost.Status, bool)
	Manifest(plugin string) *pluginv1.Manifest
	Plugins() []string
	HTTP(ctx context.Context, plugin string, req *pluginv1.HTTPRequest) (*pluginv1.HTTPResponse, error)
}

// Options configure a Bot.
type Options struct {
	Router   *router.Router
	Policy   *policy.Policy
	Plugins  Plugins
	Store    *store.Store
	Adapters []chat.Adapter
	Logger   *slog.Logger
	Metrics  *Metrics
	// CommandTimeout bounds one command; default 30s.
	CommandTimeout time.Duration
	// MaxConcurrency bounds commands in flight, counting those waiting for
	// their turn; default 64.
	MaxConcurrency int
	// FinishJobsWhenAdaptersEnd makes Run, when every adapter has ended by
	// itself (a console fed by a pipe reached its end), wait for the jobs
	// still queued or running before it stops, as `chima send` waits for
	// the jobs of its command. Otherwise they end as interrupted.
	FinishJobsWhenAdaptersEnd bool
	// TurnLimit is how long one person's command in one room may hold up
	// their next one there (see turns); default DefaultTurnLimit.
	TurnLimit time.Duration
	// Workers is the number of durable jobs run at once; default 4.
	Workers int
	// EventRetry says how often and how far apart a webhook delivery a
	// plugin did not take is handed to it again; zero fields take
	// store.DefaultRetry's (8 attempts, from 1s, doubling, up to 5m).
	EventRetry store.Retry
	// Name is the bot's name, used in messages.
	Name string
	// Redactor masks configured secret values in everything the bot
	// writes: chat messages, the audit log, lock reasons, KV text and logs
	// kept in the store. Nil masks nothing.
	Redactor *redact.Redactor
	// DefaultAdapter is the adapter a room given without one means (a
	// plugin's bare notify room). When empty, the only adapter is meant;
	// with several, such a room reaches none.
	DefaultAdapter string
	// Outbox configures the outbox every message goes through (edit
	// intervals by adapter, caps, attempts); its Logger and Registerer
	// default to the bot's.
	Outbox outbox.Options
	// Schedules answers the built-in schedules command: the scheduled
	// commands with their next and last runs. Nil means none are
	// configured.
	Schedules func(ctx context.Context) (string, error)
	// Scheduler, when set, runs beside the adapters from Run: started
	// after the jobs, stopped (its Run returning once its commands have
	// ended) before them. When it also takes plugins' schedules
	// (PluginScheduler), each running plugin's manifest schedules are set
	// on it.
	Scheduler interface{ Run(ctx context.Context) }
	// RunAs lists, by plugin, who it may run commands as through
	// Host.RunCommand (config plugins[].run_as): people, or accounts as
	// "adapter:id". A plugin not listed may run none.
	RunAs map[string][]string
	// Lease is how long a replica's claim on a running job lasts on a
	// shared store without renewal; default store.DefaultLease. Another
	// replica ends a job whose lease lapsed as interrupted.
	Lease time.Duration
	// Approvals keeps the approval requests of commands that need
	// approval (see approvals.go). Nil: such commands are refused.
	Approvals *approvals.Manager
	// ApprovalSweep is how often expired approval requests are looked
	// for; default 2s.
	ApprovalSweep time.Duration
}

// Bot is the engine. Create it with New, start it with Run.
type Bot struct {
	o        Options
	log      *slog.Logger
	adapters map[string]chat.Adapter
	caps     map[string]chat.Capabilities
	rooms    roomDirectory // see rooms.go
	sem      chan struct{}
	turns    turns
	audit    *auditWriter
	jobs     *jobs.Runner
	events   *events.Queue // nil without a store
	out      *outbox.Outbox
	mentions *mention.Resolver
	inflight sync.WaitGroup

	reqPrefix string
	reqSeq    atomic.Uint64

	// jobWaiters are woken whenever a job ends (chima send waits on them).
	jobMu      sync.Mutex
	jobWaiters []chan struct{}

	running atomic.Bool
	// telling holds, by job id, the interrupted jobs whose plugin is being
	// told of them now (*telling).
	telling sync.Map

	// subs are the event subscriptions of each plugin's last manifest.
	subsMu sync.Mutex
	subs   map[string][]string

	// runDepth holds, by request id, how deep in commands run by plugins
	// (Host.RunCommand) a request is (int), while it runs.
	runDepth sync.Map
	// pluginRunApprovals holds, by the request id of a command run by a plugin
	// (RunCommand), the approval request that command is waiting for:
	// RunCommand answers with its id.
	pluginRunApprovals sync.Map

	// scheduleProblems are, by plugin, what was wrong with the schedules
	// of its last manifest (see SchedulesHealth).
	problemsMu       sync.Mutex
	scheduleProblems map[string][]string
}

// New builds a Bot; nothing runs until Run.
func New(o Options) *Bot {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 30 * time.Second
	}
	if o.MaxConcurrency <= 0 {
		o.MaxConcurrency = 64
	}
	if o.TurnLimit <= 0 {
		o.TurnLimit = DefaultTurnLimit
	}
	if o.Name == "" {
		o.Name = "chima"
	}
	if o.ApprovalSweep <= 0 {
		o.ApprovalSweep = 2 * time.Second
	}
	b := &Bot{
		o:         o,
		log:       o.Logger,
		adapters:  map[string]chat.Adapter{},
		caps:      map[string]chat.Capabilities{},
		sem:       make(chan struct{}, o.MaxConcurrency),
		reqPrefix: strconv.FormatInt(time.Now().UnixNano()%(1<<40), 36) + "-",
	}
	for _, a := range o.Adapters {
		b.AddAdapter(a)
	}
	b.out = newOutbox(o)
	b.mentions = newMentions(o)
	b.audit = newAuditWriter(o.Store, o.Logger, o.Redactor, o.Metrics.AuditWriteFailures)
	var js jobs.Store = o.Store
	if o.Store != nil {
		js = jobStore{Store: o.Store, b: b}
	}
	b.jobs = jobs.New(jobs.Options{
		Store:    js,
		Executor: b,
		Plugins:  b.jobPlugins,
		Workers:  o.Workers,
		Logger:   o.Logger.With("component", "jobs"),
		OnFinish: b.jobFinished,
		Name:     o.Store.ReplicaID(),
		Lease:    b.sharedLease(),
		Shared:   o.Store.Shared(),
	})
	if o.Store != nil {
		b.events = events.New(events.Options{
			Store: o.Store, Deliver: b, Subscribers: b.Subscribers, Ready: b.readyPlugins,
			Configured: o.Plugins.Plugins, Shared: o.Store.Shared(),
			Retry: o.EventRetry, Timeout: o.CommandTimeout, Logger: o.Logger.With("component", "events"),
			Audit: b.audit.record, Delivered: o.Metrics.EventDeliveries, Pending: o.Metrics.EventsPending,
		})
	}
	return b
}

// AddAdapter registers an adapter to send through. Adapters passed in
// Options are registered already; Run runs every registered adapter. Call
// it before Run or StartJobs: the adapter table is read without a lock.
func (b *Bot) AddAdapter(a chat.Adapter) {
	b.adapters[a.Name()] = a
	b.caps[a.Name()] = chat.CapabilitiesOf(a)
	b.rooms.add(a)
}

// withAdapter fills in the adapter of a room named without one: the
// default adapter, else the only one. It leaves ref as it is when no
// adapter is meant, or no room is named.
func (b *Bot) withAdapter(ref chat.MessageRef) chat.MessageRef {
	if ref.Adapter != "" || ref.Room == "" {
		return ref
	}
	switch {
	case b.o.DefaultAdapter != "":
		ref.Adapter = b.o.DefaultAdapter
	case len(b.adapters) == 1:
		for name := range b.adapters {
			ref.Adapter = name
		}
	}
	return ref
}

// Jobs returns the job runner (to cancel jobs).
func (b *Bot) Jobs() *jobs.Runner { return b.jobs }

// StartJobs starts the job workers. The returned function stops them (jobs
// still running end as interrupted), delivers what waits in the outbox and
// flushes the audit log. Run calls it
// after RecoverInterruptedJobs; `chima send` uses it without adapters.
func (b *Bot) StartJobs(ctx context.Context) (stop func()) {
	jobsDone := make(chan struct{})
	jctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	go func() { b.jobs.Run(jctx); close(jobsDone) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.inflight.Wait()
			cancel(wire.ErrShutdown) // plugins hear "shutdown", not "cancelled"
			<-jobsDone
			b.closeOutbox() // after the jobs: their last words go out too
			b.audit.close()
		})
	}
}

// Run starts the job workers and every adapter, and blocks until ctx ends or
// every adapter has stopped (the console reached end of input). Then it
// stops taking messages, lets commands in flight finish (each is bounded by
// its timeout), stops the jobs and flushes the audit log.
func (b *Bot) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("bot already running")
	}
	for _, p := range b.o.Plugins.Plugins() {
		b.subscriptions(p) // remembered for when a plugin restarts
	}
	b.RecoverInterruptedJobs(ctx)
	stopJobs := b.StartJobs(ctx)
	defer stopJobs()
	if b.events != nil {
		ectx, stopEvents := context.WithCancel(ctx)
		eventsDone := make(chan struct{})
		go func() { b.events.Run(ectx); close(eventsDone) }()
		// Before stopJobs: the audit entries of the last attempts are
		// flushed with the others'.
		defer func() { stopEvents(); <-eventsDone }()
	}
	if b.o.Store != nil && b.o.Store.Shared() {
		wctx, stopWatch := context.WithCancel(ctx)
		watchDone := make(chan struct{})
		go func() { b.watchReplicas(wctx, b.sharedLease()/3); close(watchDone) }()
		defer func() { stopWatch(); <-watchDone }()
	}
	if b.o.Scheduler != nil {
		sctx, stopScheduler := context.WithCancel(ctx)
		schedulerDone := make(chan struct{})
		go func() { b.o.Scheduler.Run(sctx); close(schedulerDone) }()
		// Before stopJobs: the last scheduled commands' jobs and replies
		// are flushed with the others'.
		defer func() { stopScheduler(); <-schedulerDone }()
	}
	if b.o.Approvals != nil {
		actx, stopApprovals := context.WithCancel(ctx)
		approvalsDone := make(chan struct{})
		go func() { b.runApprovals(actx); close(approvalsDone) }()
		defer func() { stopApprovals(); <-approvalsDone }()
	}

	errc := make(chan error, len(b.adapters))
	var wg sync.WaitGroup
	for _, a := range b.adapters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Run(ctx, b); err != nil && ctx.Err() == nil {
				b.log.Error("adapter stopped", "adapter", a.Name(), "error", err)
				errc <- fmt.Errorf("adapter %s: %w", a.Name(), err)
			}
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	case <-allDone:
		if b.o.FinishJobsWhenAdaptersEnd {
			b.finishJobs(ctx)
		}
	}
	<-allDone
	return err
}

// finishJobs lets the jobs still open when the adapters ended run to their
// end, unless ctx ends first (then they are interrupted, as on any stop).
func (b *Bot) finishJobs(ctx context.Context) {
	// The commands of the last lines may still be in flight, their jobs
	// not enqueued yet.
	handled := make(chan struct{})
	go func() { b.inflight.Wait(); close(handled) }()
	select {
	case <-handled:
	case <-ctx.Done():
		return
	}
	n, err := b.o.Store.OpenJobs(ctx, "")
	if err != nil || n == 0 {
		return
	}
	b.log.Warn("the input ended; waiting for the jobs still queued or running to end (SIGTERM or Ctrl-C interrupts them)", "jobs", n)
	if err := b.WaitJobs(ctx, ""); err != nil && ctx.Err() == nil {
		b.log.Error("waiting for jobs", "error", err)
	}
}

// RecoverInterruptedJobs marks jobs that were running when the process died
// as interrupted, releases their locks and tells their rooms and plugins.
// Run calls it at start. Only the process that owns the store may: it takes
// every running job for its own.
func (b *Bot) RecoverInterruptedJobs(ctx context.Context) {
	if b.o.Store == nil {
		return
	}
	// Commands whose decision was recorded and whose end never was: the
	// process that ran them died under them.
	if n, err := b.o.Store.InterruptRunningAudits(ctx, "the bot stopped before the command ended"); err != nil {
		b.o.Metrics.AuditWriteFailures.Inc()
		b.log.Error("mark interrupted commands in the audit log", "error", err)
	} else if n > 0 {
		b.log.Warn("commands interrupted by restart", "commands", n)
	}
	interrupted, err := b.o.Store.InterruptRunningJobs(ctx)
	if err != nil {
		b.log.Error("recover interrupted jobs", "error", err)
		return
	}
	for _, j := range interrupted {
		b.log.Warn("job interrupted by restart", "job", j.ID, "plugin", j.Plugin, "kind", j.Kind)
		b.auditJob(j, string(store.JobInterrupted), j.Detail, nil)
		b.jobInterrupted(ctx, j, j.Detail)
	}
	// Jobs interrupted under an earlier process whose plugin was down
	// then, and never heard of them.
	b.tellPending(ctx, "")
}

// HandleMessage implements chat.Handler. Messages not addressed to the bot
// are ignored. One person's commands in one room are handled in the order
// HandleMessage was called with them (see turns); other people's and other
// rooms' run concurrently. It blocks while MaxConcurrency commands are in
// flight or waiting for their turn, which slows the adapter's reading instead
// of queueing without bound.
func (b *Bot) HandleMessage(ctx context.Context, m chat.Message) {
	text, ok := b.o.Router.Addressed(m)
	if !ok || !b.takeInbound(ctx, m) {
		return
	}
	b.dispatch(ctx, conversationOf(m), func(ctx context.Context, id string) {
		b.process(ctx, m, text, id, nil, nil, false)
	})
}

// dispatch runs fn, a request of conv, in its own goroutine once conv's
// requests before it have had their turn (see turns), with a new request id.
// It blocks while MaxConcurrency requests are in flight or waiting, and
// reports false when ctx ended first (fn then never runs).
func (b *Bot) dispatch(ctx context.Context, conv conversation, fn func(ctx context.Context, requestID string)) bool {
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	t := b.turns.take(conv)
	id := b.newRequestID()
	b.inflight.Add(1)
	go func() {
		defer func() { b.turns.finish(conv, t); <-b.sem; b.inflight.Done() }()
		t.wait()
		limit := time.AfterFunc(b.o.TurnLimit, t.end)
		defer limit.Stop()
		fn(context.WithoutCancel(ctx), id)
	}()
	return true
}

// Result says how one processed message ended.
type Result struct {
	// RequestID identifies the command; WaitJobs takes it.
	RequestID string
	// Outcome is the audit outcome: ok, rejected, denied, refused, error,
	// crashed, unavailable, timeout.
	Outcome string
}

// Process handles one message synchronously. handled is false when the
// message is not addressed to the bot. Used by `chima send` and tests.
func (b *Bot) Process(ctx context.Context, m chat.Message) (res Result, handled bool) {
	text, ok := b.o.Router.Addressed(m)
	if !ok {
		return Result{}, false
	}
	b.inflight.Add(1)
	defer b.inflight.Done()
	id := b.newRequestID()
	outcome, _ := b.process(ctx, m, text, id, nil, nil, true)
	return Result{RequestID: id, Outcome: outcome}, true
}

func (b *Bot) newRequestID() string {
	return b.reqPrefix + strconv.FormatUint(b.reqSeq.Add(1), 10)
}

// trigger says what, other than a person, made the core run a command: a
// schedule, or a plugin through Host.RunCommand.
type trigger struct {
	// via is the audit entry's Via: "schedule <name>", "plugin <name>".
	via string
	// by is CommandRequest.triggered_by and the entry's TriggeredBy: the
	// plugin's name, or "chima" for a schedule.
	by string
}

// process routes, authorises, runs and audits one command, and returns its
// outcome and detail. via is the click on a command button the command
// comes from, nil for a typed one; trig is what ran it when no person did
// (a schedule, a plugin), nil for a person's. Its replies are queued, not
// waited for (see replyWindow), unless waitReplies: Process promises they
// were delivered when it returns.
func (b *Bot) process(ctx context.Context, m chat.Message, text, requestID string, via *click, trig *trigger, waitReplies bool) (string, string) {
	start := time.Now()
	b.o.Metrics.InFlight.Inc()
	defer b.o.Metrics.InFlight.Dec()
	out := b.newReplier(m)
	if waitReplies {
		defer out.wait(ctx)
	}
	entry := store.AuditEntry{
		Time: start, RequestID: requestID, Adapter: m.Ref.Adapter, Room: m.Ref.Room,
		UserID: m.User.ID, UserName: m.User.Name, Text: text, Via: via.audit(),
		Person: b.o.Policy.Person(m.Ref.Adapter, m.User.ID),
	}
	if trig != nil {
		entry.Via, entry.TriggeredBy = trig.via, trig.by
	}
	res := b.o.Router.Parse(text)
	switch res.Kind {
	case router.Matched:
		entry.Plugin, entry.Command = res.Plugin, res.Command.GetName()
		entry.Text = res.MaskSecrets(text)
		entry.Outcome, entry.Detail = b.run(ctx, m, text, entry.Text, res, requestID, out, via, &entry)
	case router.Help:
		entry.Command, entry.Outcome = "help", "ok"
		help := b.o.Router.HelpFor(res.Topic, b.stateNote, b.access(m))
		if res.Topic == "" {
			help = b.noteDownPlugins(help)
		}
		out.send(ctx, help, false)
	case router.Schedules:
		entry.Command, entry.Outcome = "schedules", "ok"
		out.send(ctx, b.listSchedules(ctx), false)
	case router.Approvals:
		entry.Command, entry.Outcome = "approvals", "ok"
		out.send(ctx, b.listApprovals(ctx), false)
	case router.Approve, router.Deny:
		entry.Command = res.Kind.String()
		entry.Command = strings.ToLower(entry.Command)
		if res.Problem != "" {
			entry.Outcome, entry.Detail = "rejected", res.Problem
			out.send(ctx, chat.Output{Text: "Sorry, " + res.Problem + ".", Status: "warning"}, false)
			break
		}
		entry.Outcome, entry.Detail = b.vote(ctx, voteFrom{m: m, out: out, via: via}, res.ApprovalID, res.Kind == router.Approve, res.Reason, requestID)
	default:
		// The command of a plugin that is not running, and whose commands
		// the router does not know: say why, not "I don't know the
		// command". Only an unknown command can be one, so the plugins'
		// states are not looked up for other rejected ones.
		if res.Kind == router.Unknown {
			if p, st := b.downPluginFor(text); p != "" {
				entry.Plugin, entry.Outcome, entry.Detail = p, "unavailable", "plugin "+string(st)
				out.send(ctx, chat.Output{Text: b.downMessage(p), Status: "danger"}, false)
				break
			}
		}
		entry.Outcome, entry.Detail = "rejected", res.Kind.String()+": "+res.Problem
		out.send(ctx, res.Reply(), false)
	}
	entry.Duration = time.Since(start)
	plugin := entry.Plugin
	if plugin == "" {
		plugin = "core"
	}
	b.o.Metrics.Commands.WithLabelValues(plugin, entry.Outcome).Inc()
	b.o.Metrics.Dispatch.WithLabelValues(plugin).Observe(entry.Duration.Seconds())
	b.auditEnd(entry)
	return entry.Outcome, entry.Detail
}

// auditEnd records how the request of entry ended: the outcome of the
// decision recorded before it ran (entry.ID), or the whole entry when
// nothing ran.
func (b *Bot) auditEnd(entry store.AuditEntry) {
	if entry.ID != 0 {
		b.audit.finish(entry.ID, entry.Outcome, entry.Detail, entry.Duration)
		return
	}
	b.audit.record(entry)
}

// errAuditDown is the detail of a command refused because its decision
// could not be written: nothing runs that the audit log cannot show.
const errAuditDown = "the audit log cannot be written"

// decide records the decision to run entry's request, outcome "running",
// and waits until it is on disk; entry.ID is then its row. It returns false,
// having told the person, when the write failed: the request must not run.
func (b *Bot) decide(ctx context.Context, entry *store.AuditEntry, tell func(chat.Output)) bool {
	e := *entry
	e.Outcome = store.OutcomeRunning
	id, err := b.audit.decide(e)
	if err != nil {
		tell(chat.Output{Text: "⚠ Sorry, " + errAuditDown + " now, so nothing runs. Ask an operator to look at the bot's log.", Status: "danger"})
		return false
	}
	entry.ID = id
	return true
}

// AuditHealth returns an error while the audit log cannot be written (the
// last write failed), nil otherwise. /healthz reports it.
func (b *Bot) AuditHealth() error { return b.audit.health() }

// noteDownPlugins adds to the full help the plugins that are not running,
// whose commands the router may not know at all (one that never started
// never described its commands).
func (b *Bot) noteDownPlugins(help chat.Output) chat.Output {
	var down []string
	for _, p := range b.o.Plugins.Plugins() {
		if st := b.o.Plugins.State(p); st != pluginhost.StateRunning {
			down = append(down, fmt.Sprintf("%s (%s)", p, st))
		}
	}
	if len(down) > 0 {
		help.Text += "\n\nNot available now: " + strings.Join(down, ", ") + ". Ask an operator to look at the bot's log."
		help.Fallback = ""
	}
	return help
}

// access feeds help: what the author of m may run, by permission alone
// (where they ask from does not hide a command, only who they are does).
func (b *Bot) access(m chat.Message) router.Access {
	return func(plugin, command, permission string) (bool, string) {
		return b.o.Policy.Permitted(m.Ref.Adapter, m.User.ID, plugin, command, permission)
	}
}

// stateNote feeds help: plugins that are not running are flagged.
func (b *Bot) stateNote(plugin string) string {
	return string(b.o.Plugins.State(plugin))
}

// run checks policy and calls the plugin; it returns the audit outcome.
// text is the command as typed (for the plugin); shown is it with secret
// arguments masked (for chat). via is the click it comes from, or nil.
//
// entry is the request's audit entry: once allowed, its decision is
// recorded (and entry.ID set) before the plugin is called.
func (b *Bot) run(ctx context.Context, m chat.Message, text, shown string, res router.Result, requestID string, out *replier, via *click, entry *store.AuditEntry) (string, string) {
	cmd := res.Command
	roomName := b.roomName(ctx, m.Ref)
	dec := b.o.Policy.Check(policy.Request{
		Adapter: m.Ref.Adapter, Room: m.Ref.Room, RoomName: roomName, UserID: m.User.ID,
		Plugin: res.Plugin, Command: cmd.GetName(), Permission: cmd.GetPermission(), Direct: m.Direct,
		Args: res.Args,
	})
	if !dec.Allowed {
		refusal := chat.Output{Text: "Sorry, " + dec.Reason, Status: "warning"}
		if via != nil {
			b.tellClicker(ctx, via.in, out, refusal)
		} else {
			out.send(ctx, refusal, false)
		}
		return "denied", dec.Reason
	}
	asked := asking{m: m, roomName: roomName, res: res, shown: shown, requestID: requestID, out: out, via: via}
	if dec.Approval != nil {
		// Nothing runs yet: the request is stored, and runs once approved.
		return b.ask(ctx, asked, dec.Approval.Approvers, dec.Approval.Count, dec.Approval.TTL, "a policy requires approval", false)
	}
	if !b.decide(ctx, entry, func(o chat.Output) {
		if via != nil {
			b.tellClicker(ctx, via.in, out, o)
		} else {
			out.send(ctx, o, false)
		}
	}) {
		return "error", errAuditDown
	}
	out.plugin = res.Plugin
	call := &pluginv1.Call{Kind: &pluginv1.Call_Command{Command: &pluginv1.CommandRequest{
		RequestId:   requestID,
		Command:     cmd.GetName(),
		Args:        res.Args,
		User:        &pluginv1.User{Id: m.User.ID, Name: m.User.Name, Roles: dec.Roles, Person: dec.Person},
		Message:     refToProtoNamed(m.Ref, roomName),
		Text:        text,
		Direct:      m.Direct,
		Button:      via.proto(),
		TriggeredBy: entry.TriggeredBy,
	}}}
	outcome, detail := b.callPlugin(ctx, res.Plugin, cmd.GetName(), call, "`"+shown+"`", requestID, out)
	if need := out.needed; need != nil && outcome == "ok" {
		// The plugin asks, from its own code, for approval first.
		return b.askFromPlugin(ctx, asked, need)
	}
	return outcome, detail
}

// callPlugin makes call on plugin, streams what it says through out, says in
// chat how it ended when it did not end well, and returns the audit outcome
// and detail. command names the command or action for the log; what names
// the request for people: "`deploy x`", "the click on `cancel`".
func (b *Bot) callPlugin(ctx context.Context, plugin, command string, call *pluginv1.Call, what, requestID string, out *replier) (string, string) {
	// The call's own deadline; replies about how it ended use ctx, which
	// outlives it.
	callCtx, cancel := context.WithTimeout(ctx, b.o.CommandTimeout)
	defer cancel()
	var done *pluginv1.Done
	userErr := false
	err := b.o.Plugins.Call(callCtx, plugin, call, func(ev *pluginv1.Event) {
		switch k := ev.GetKind().(type) {
		case *pluginv1.Event_Done:
			done = k.Done
		case *pluginv1.Event_Error:
			userErr = true
		}
		out.event(ctx, ev)
	})
	switch {
	case err == nil && doneOutcome(done) == "error":
		out.send(ctx, chat.Output{Text: fmt.Sprintf("⚠ The %s plugin failed while handling %s: %s", plugin, what, done.GetDetail()), Status: "danger"}, false)
		// The operator's side of it: chat alone is no place to find a
		// plugin that keeps breaking.
		b.log.Error("plugin command failed", "plugin", plugin, "command", command, "request", requestID, "error", done.GetDetail())
		return "error", done.GetDetail()
	case err == nil && userErr:
		return "refused", done.GetDetail()
	case err == nil:
		return "ok", ""
	case errors.Is(err, pluginhost.ErrCrashed):
		out.send(ctx, chat.Output{Text: b.crashMessage(ctx, plugin, what), Status: "danger"}, false)
		return "crashed", err.Error()
	case errors.Is(err, pluginhost.ErrUnavailable):
		out.send(ctx, chat.Output{Text: b.downMessage(plugin), Status: "danger"}, false)
		return "unavailable", err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		out.send(ctx, chat.Output{Text: fmt.Sprintf("⚠ %s timed out after %s.", what, b.o.CommandTimeout), Status: "danger"}, false)
		return "timeout", err.Error()
	default:
		out.send(ctx, chat.Output{Text: fmt.Sprintf("⚠ The %s plugin failed while handling %s.", plugin, what), Status: "danger"}, false)
		b.log.Error("plugin call failed", "plugin", plugin, "request", requestID, "error", err)
		return "error", err.Error()
	}
}

func refToProto(r chat.MessageRef) *pluginv1.MessageRef {
	return &pluginv1.MessageRef{Adapter: r.Adapter, Room: r.Room, MessageId: r.MessageID, ThreadId: r.ThreadID}
}

func refFromProto(r *pluginv1.MessageRef) chat.MessageRef {
	return chat.MessageRef{Adapter: r.GetAdapter(), Room: r.GetRoom(), MessageID: r.GetMessageId(), ThreadID: r.GetThreadId()}
}

// WaitJobs waits until every job enqueued on behalf of requestID (and the
// jobs those enqueued) has ended, or ctx ends; "" waits for every job.
func (b *Bot) WaitJobs(ctx context.Context, requestID string) error {
	for {
		ch := make(chan struct{})
		b.jobMu.Lock()
		b.jobWaiters = append(b.jobWaiters, ch)
		b.jobMu.Unlock()
		n, err := b.o.Store.OpenJobs(ctx, requestID)
		if err != nil {
			return fmt.Errorf("count open jobs: %w", err)
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (b *Bot) wakeJobWaiters() {
	b.jobMu.Lock()
	ws := b.jobWaiters
	b.jobWaiters = nil
	b.jobMu.Unlock()
	for _, ch := range ws {
		close(ch)
	}
}
