package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

// Errors a Call can end with. They are wrapped with the plugin's name.
var (
	// ErrCrashed means the plugin process died while handling the call. The
	// call is not retried; the plugin is being restarted.
	ErrCrashed = errors.New("plugin crashed")
	// ErrUnavailable means the plugin is not running (failed, or still
	// restarting when the call gave up waiting).
	ErrUnavailable = errors.New("plugin unavailable")
	// ErrUnknownPlugin means no plugin of that name is configured.
	ErrUnknownPlugin = errors.New("unknown plugin")
)

// State is where a plugin is in its life.
type State string

// Plugin states.
const (
	StateStarting   State = "starting"
	StateRunning    State = "running"
	StateRestarting State = "restarting"
	StateFailed     State = "failed"
	StateStopped    State = "stopped"
)

// Spec says how to start one plugin. The CLI builds it from chima.yaml.
type Spec struct {
	Name string
	Path string
	Args []string
	// Env is the plugin's whole environment: it inherits nothing else.
	Env []string
	// Secrets are values to redact from the plugin's logs.
	Secrets []string
	// SHA256 pins the binary (hex); empty skips the check.
	SHA256 string
	// Settings are the plugin's settings (never secrets): any JSON-shaped
	// value, nested maps and lists included, as config.PluginConfig holds
	// them. The plugin receives them as settings_json, and as a string map
	// (SettingsStrings) for a plugin older than protocol minor 8.
	Settings map[string]any
	// MaxRestarts crashes within RestartWindow mark the plugin failed; 0
	// means 5, a negative number means the plugin is never restarted.
	MaxRestarts   int
	RestartWindow time.Duration
	// Attach, when set, attaches to a plugin process a person started in
	// debug mode (`chima run --attach`) instead of starting Path. Path,
	// Args, Env, SHA256 and AutoMTLS do not apply: the process is the
	// person's, already running, listening without TLS. It is never
	// restarted: when it exits the plugin is failed until the bot is
	// restarted with a new --attach, and when the host stops it tells the
	// process to stop.
	Attach *wire.Reattach
}

// Options configure a Host.
type Options struct {
	Logger *slog.Logger
	// HostService returns the Host gRPC service a plugin gets through the
	// broker; nil serves none (explain-only mode).
	HostService func(plugin string) pluginv1.HostServer
	// OnChange is called when a plugin's state or manifest changes, so the
	// router can follow. It must not block.
	OnChange func(plugin string, m *pluginv1.Manifest, s State)
	// OnRestart is called after each restart (metrics).
	OnRestart func(plugin string)
	// Version is the host's version, sent in Describe.
	Version string
	// StartTimeout bounds one start (handshake and Describe). Default 10s.
	StartTimeout time.Duration
	// ReadyWait bounds how long a call waits for a restarting plugin.
	// Default 5s.
	ReadyWait time.Duration
	// RetryBackoff is how long a failed plugin (one that crashed more than
	// its MaxRestarts, or could not start) waits before it is started
	// again; each failure in a row doubles it, up to MaxRetryBackoff.
	// Defaults 5s and 5m.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
}

// Status describes one plugin for `chima plugins` and /plugins.
type Status struct {
	Name            string        `json:"name"`
	Version         string        `json:"version"`
	ProtocolVersion int           `json:"protocol_version"`
	ProtocolMinor   uint32        `json:"protocol_minor"`
	State           State         `json:"state"`
	Commands        []string      `json:"commands"`
	Restarts        int           `json:"restarts"`
	LastError       string        `json:"last_error,omitempty"`
	PID             int           `json:"pid,omitempty"`
	StartTime       time.Duration `json:"start_time_ns"`
	Multiplexed     bool          `json:"multiplexed"`
	// Crashes is how many times the plugin crashed within its restart
	// window when it was marked failed for crashing.
	Crashes int `json:"crashes,omitempty"`
	// FailedToStart says a failed plugin failed because it could not
	// start (bad settings, a missing binary), not because it crashed.
	FailedToStart bool `json:"failed_to_start,omitempty"`
	// NextRetry is when a failed plugin is started again; zero when it is
	// not failed or will not be retried.
	NextRetry time.Time `json:"next_retry,omitzero"`
	// Problems are what the core found wrong with what the running plugin
	// declared (a schedule with a bad cron), each leaving that part out;
	// the host does not fill it, the bot does.
	Problems []string `json:"problems,omitempty"`
	// Attached says the bot attached to a process a person runs in debug
	// mode (chima run --attach) rather than starting the plugin itself.
	Attached bool `json:"attached,omitempty"`
}

// Host runs and supervises plugin processes.
type Host struct {
	opts    Options
	log     *slog.Logger
	mu      sync.RWMutex
	plugins map[string]*managed
	closed  atomic.Bool
	done    chan struct{} // closed by Stop: supervisors stop waiting
	wg      sync.WaitGroup
}

// New returns a Host with no plugins.
func New(o Options) *Host {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 10 * time.Second
	}
	if o.ReadyWait == 0 {
		o.ReadyWait = 5 * time.Second
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 5 * time.Second
	}
	if o.MaxRetryBackoff <= 0 {
		o.MaxRetryBackoff = 5 * time.Minute
	}
	return &Host{opts: o, log: o.Logger, plugins: map[string]*managed{}, done: make(chan struct{})}
}

// Start starts every plugin concurrently and returns one error per plugin
// that could not start (not executable, failed handshake, other protocol
// version, checksum mismatch, Describe error). Those plugins are marked
// failed; the others run.
func (h *Host) Start(ctx context.Context, specs []Spec) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, spec := range specs {
		m := &managed{host: h, spec: spec, state: StateStarting, ready: make(chan struct{})}
		h.mu.Lock()
		h.plugins[spec.Name] = m
		h.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.start(ctx); err != nil {
				m.fail(err, true)
				mu.Lock()
				errs = append(errs, fmt.Errorf("plugin %s: %w", spec.Name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// Call runs one call (a command, webhook event or job) on plugin and feeds
// each event it streams to fn, in order, until Done. fn runs on the caller's
// goroutine.
func (h *Host) Call(ctx context.Context, plugin string, call *pluginv1.Call, fn func(*pluginv1.Event)) error {
	h.mu.RLock()
	m := h.plugins[plugin]
	h.mu.RUnlock()
	if m == nil {
		return fmt.Errorf("%w: %s", ErrUnknownPlugin, plugin)
	}
	for attempt := 0; ; attempt++ {
		inst, err := m.waitReady(ctx)
		if err != nil {
			return err
		}
		if beforeCall != nil {
			beforeCall(inst)
		}
		err = inst.call(ctx, call, fn)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("plugin %s: %w", plugin, ctx.Err())
		}
		// The instance was dead before the call reached it (it died after
		// waitReady handed it out, before its death was noticed): the
		// plugin never saw the call, so it goes to the restarted one. It
		// did not crash while handling it.
		if errors.Is(err, errNotSent) {
			m.crashed(inst)
			if attempt < 2 {
				continue
			}
			return fmt.Errorf("plugin %s: %w", plugin, ErrUnavailable)
		}
		// A broken multiplexed stream is as good as dead even if the
		// process lives on (an oversized message ends the stream on both
		// sides): every later call would fail. Kill and restart it.
		// Otherwise a transport error: did the process die under us?
		if errors.Is(err, errStreamBroken) || inst.waitExit(2*time.Second) {
			m.crashed(inst)
			return fmt.Errorf("plugin %s: %w", plugin, ErrCrashed)
		}
		return fmt.Errorf("plugin %s: %w", plugin, err)
	}
}

// beforeCall, when set (by tests), runs between picking the instance for a
// call and sending the call to it.
var beforeCall func(*instance)

// HTTP forwards a page request to a plugin that serves pages.
func (h *Host) HTTP(ctx context.Context, plugin string, req *pluginv1.HTTPRequest) (*pluginv1.HTTPResponse, error) {
	h.mu.RLock()
	m := h.plugins[plugin]
	h.mu.RUnlock()
	if m == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownPlugin, plugin)
	}
	inst, err := m.waitReady(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := inst.conn.Plugin.HandleHTTP(ctx, req)
	if err != nil {
		inst.poke()
		return nil, fmt.Errorf("plugin %s: %w", plugin, err)
	}
	return resp, nil
}

// Manifest returns the manifest of a running plugin, or nil.
func (h *Host) Manifest(plugin string) *pluginv1.Manifest {
	h.mu.RLock()
	m := h.plugins[plugin]
	h.mu.RUnlock()
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inst == nil {
		return nil
	}
	return m.inst.manifest
}

// State returns a plugin's state, or "" for an unknown plugin.
func (h *Host) State(plugin string) State {
	h.mu.RLock()
	m := h.plugins[plugin]
	h.mu.RUnlock()
	if m == nil {
		return ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// PluginStatus describes one plugin; ok is false for an unknown plugin.
func (h *Host) PluginStatus(plugin string) (s Status, ok bool) {
	h.mu.RLock()
	m := h.plugins[plugin]
	h.mu.RUnlock()
	if m == nil {
		return Status{}, false
	}
	return m.status(), true
}

// Health returns an error naming every failed plugin, with why it failed
// and when it is tried again; nil when no plugin is failed.
func (h *Host) Health() error {
	var errs []error
	for _, s := range h.Status() {
		if s.State == StateFailed {
			errs = append(errs, fmt.Errorf("plugin %s is down: %s", s.Name, s.Why(time.Now())))
		}
	}
	return errors.Join(errs...)
}

// Why says in words why a plugin is not running and when it is tried
// again, for health checks and chat: "it crashed 4 times within 1m0s; next
// restart in 40s".
func (s Status) Why(now time.Time) string {
	var why string
	switch {
	case s.State == StateFailed && !s.FailedToStart && s.LastError != "":
		why = "it " + s.LastError
	case s.LastError != "":
		why = s.LastError
	default:
		why = string(s.State)
	}
	if !s.NextRetry.IsZero() {
		next := "; next restart in "
		if s.FailedToStart {
			next = "; next try in "
		}
		why += next + max(s.NextRetry.Sub(now), 0).Round(time.Second).String()
	}
	return why
}

// Status describes every plugin, sorted by name.
func (h *Host) Status() []Status {
	h.mu.RLock()
	ms := make([]*managed, 0, len(h.plugins))
	for _, m := range h.plugins {
		ms = append(ms, m)
	}
	h.mu.RUnlock()
	out := make([]Status, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.status())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Plugins returns the names of every configured plugin, sorted, whatever
// its state; callers route jobs, events and pages by their manifests.
func (h *Host) Plugins() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	names := make([]string, 0, len(h.plugins))
	for n := range h.plugins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Stop kills every plugin process and waits for the supervisors. Calls in
// flight fail.
func (h *Host) Stop() {
	if !h.closed.CompareAndSwap(false, true) {
		return
	}
	close(h.done)
	h.mu.RLock()
	ms := make([]*managed, 0, len(h.plugins))
	for _, m := range h.plugins {
		ms = append(ms, m)
	}
	h.mu.RUnlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() { defer wg.Done(); m.stop() }()
	}
	wg.Wait()
	h.wg.Wait()
}

// managed is one configured plugin across its restarts.
type managed struct {
	host *Host
	spec Spec

	mu       sync.Mutex
	state    State
	inst     *instance
	ready    chan struct{} // closed when state leaves starting/restarting
	crashes  []time.Time
	restarts int
	lastErr  string
	// Set while failed: why (a failed start, else the crashes in
	// m.crashes), and when the next try is.
	startFailed bool
	nextRetry   time.Time
	// retries counts failures in a row; it sets the retry backoff and is
	// reset once a plugin has run for a whole restart window.
	retries int
}

func (m *managed) status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{Name: m.spec.Name, State: m.state, Commands: []string{}, Restarts: m.restarts, LastError: m.lastErr, ProtocolVersion: wire.ProtocolVersion, Attached: m.spec.Attach != nil}
	if m.state == StateFailed {
		s.FailedToStart, s.NextRetry = m.startFailed, m.nextRetry
		if !m.startFailed {
			s.Crashes = len(m.crashes)
		}
	}
	if m.inst != nil {
		s.Version = m.inst.manifest.GetVersion()
		s.ProtocolMinor = m.inst.manifest.GetProtocolMinor()
		s.PID = m.inst.pid
		s.StartTime = m.inst.startTime
		s.Multiplexed = m.inst.mux != nil
		for _, c := range m.inst.manifest.GetCommands() {
			s.Commands = append(s.Commands, c.GetName())
		}
	}
	return s
}

// waitReady returns the running instance, waiting a bounded time for a
// plugin that is starting or restarting.
func (m *managed) waitReady(ctx context.Context) (*instance, error) {
	m.mu.Lock()
	state, inst, ready := m.state, m.inst, m.ready
	m.mu.Unlock()
	if state == StateRunning && inst != nil {
		return inst, nil
	}
	if state == StateFailed || state == StateStopped {
		return nil, fmt.Errorf("plugin %s is %s: %w", m.spec.Name, state, ErrUnavailable)
	}
	t := time.NewTimer(m.host.opts.ReadyWait)
	defer t.Stop()
	select {
	case <-ready:
		return m.waitReady(ctx)
	case <-ctx.Done():
		return nil, fmt.Errorf("plugin %s is %s: %w", m.spec.Name, state, ctx.Err())
	case <-t.C:
		return nil, fmt.Errorf("plugin %s is still %s: %w", m.spec.Name, state, ErrUnavailable)
	}
}

func (m *managed) setState(s State, inst *instance, err error) {
	m.mu.Lock()
	notify := m.setStateLocked(s, inst, err)
	m.mu.Unlock()
	notify()
}

// setStateLocked changes state with m.mu held and returns the OnChange
// notification to run once the lock is released.
func (m *managed) setStateLocked(s State, inst *instance, err error) func() {
	prev := m.state
	m.state, m.inst = s, inst
	if err != nil {
		m.lastErr = err.Error()
	}
	if (prev == StateStarting || prev == StateRestarting) && s != StateStarting && s != StateRestarting {
		close(m.ready)
	}
	if (s == StateStarting || s == StateRestarting) && prev != StateStarting && prev != StateRestarting {
		m.ready = make(chan struct{})
	}
	return func() {
		if m.host.opts.OnChange != nil {
			var man *pluginv1.Manifest
			if inst != nil {
				man = inst.manifest
			}
			m.host.opts.OnChange(m.spec.Name, man, s)
		}
	}
}

// fail marks the plugin failed: it could not start (startFailed) or
// crashed too often.
func (m *managed) fail(err error, startFailed bool) {
	m.mu.Lock()
	notify := m.failLocked(err, startFailed)
	m.mu.Unlock()
	notify()
}

// failLocked marks the plugin failed with m.mu held, schedules the next try
// unless the plugin is never to be restarted, and returns the OnChange
// notification to run once the lock is released.
func (m *managed) failLocked(err error, startFailed bool) func() {
	if m.state == StateStopped {
		return func() {}
	}
	m.startFailed, m.nextRetry = startFailed, time.Time{}
	// An attached process is the developer's: trying it again cannot
	// bring it back.
	retry := m.spec.MaxRestarts >= 0 && m.spec.Attach == nil && !m.host.closed.Load()
	if retry {
		delay := retryDelay(m.retries, m.host.opts.RetryBackoff, m.host.opts.MaxRetryBackoff)
		m.retries++
		m.nextRetry = time.Now().Add(delay)
		m.host.wg.Add(1)
		go m.retryAfter(delay)
		m.host.log.Error("plugin failed", "plugin", m.spec.Name, "error", err, "next_retry_in", delay)
	} else {
		m.host.log.Error("plugin failed", "plugin", m.spec.Name, "error", err)
	}
	return m.setStateLocked(StateFailed, nil, err)
}

// retryDelay is the wait before the try after failures failures in a row:
// base, doubled each time, at most limit.
func retryDelay(failures int, base, limit time.Duration) time.Duration {
	d := base
	for range failures {
		if d >= limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}

// retryAfter starts a failed plugin again after d, with a fresh allowance
// of crashes. Another failure schedules the next try, later.
func (m *managed) retryAfter(d time.Duration) {
	defer m.host.wg.Done()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-m.host.done:
		return
	}
	m.mu.Lock()
	if m.state != StateFailed || m.host.closed.Load() {
		m.mu.Unlock()
		return
	}
	m.crashes, m.nextRetry = nil, time.Time{}
	notify := m.setStateLocked(StateRestarting, nil, nil)
	m.mu.Unlock()
	notify()
	m.host.log.Info("starting failed plugin again", "plugin", m.spec.Name)
	if err := m.startAgain(); err != nil {
		m.fail(err, true)
	}
}

// startAgain starts the plugin again after a crash or failure, within
// StartTimeout, and on success counts the restart and reports it.
func (m *managed) startAgain() error {
	ctx, cancel := context.WithTimeout(context.Background(), m.host.opts.StartTimeout)
	err := m.start(ctx)
	cancel()
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.restarts++
	m.mu.Unlock()
	if m.host.opts.OnRestart != nil {
		m.host.opts.OnRestart(m.spec.Name)
	}
	return nil
}

// start launches one instance and, on success, makes it the running one.
func (m *managed) start(ctx context.Context) error {
	inst, err := launch(ctx, m.host, m.spec)
	if err != nil {
		return err
	}
	// Checked and installed in one critical section with Stop's: a plugin
	// started while the host stops is killed here, never left behind.
	m.mu.Lock()
	if m.host.closed.Load() || m.state == StateStopped {
		m.mu.Unlock()
		inst.kill()
		return errors.New("host stopped")
	}
	inst.since = time.Now()
	notify := m.setStateLocked(StateRunning, inst, nil)
	m.host.wg.Add(1)
	m.mu.Unlock()
	notify()
	m.host.log.Info("plugin started", "plugin", m.spec.Name, "version", inst.manifest.GetVersion(),
		"pid", inst.pid, "multiplex", inst.mux != nil, "start_time", inst.startTime)
	go m.watch(inst)
	return nil
}

// watch notices an idle plugin dying (a busy one is noticed by its calls).
func (m *managed) watch(inst *instance) {
	defer m.host.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var streamDone <-chan struct{}
	if inst.mux != nil {
		streamDone = inst.mux.done
	}
	for {
		select {
		case <-inst.stopped:
			return
		case <-streamDone:
			// The multiplexed stream ended though nobody stopped the
			// plugin: it cannot serve calls any more.
			m.crashed(inst)
			return
		case <-inst.kick:
		case <-t.C:
		}
		if inst.client.Exited() {
			m.crashed(inst)
			return
		}
	}
}

// crashed handles the death of inst, once: restart with backoff, or mark the
// plugin failed after too many crashes in the window. The state leaves
// running in the same critical section that retires inst, so no call can
// pick up the dead instance afterwards.
func (m *managed) crashed(inst *instance) {
	if m.host.closed.Load() {
		inst.kill()
		return
	}
	now := time.Now()
	m.mu.Lock()
	if m.inst != inst || inst.dead.Load() {
		m.mu.Unlock()
		return
	}
	inst.dead.Store(true)
	window := m.spec.RestartWindow
	if window <= 0 {
		window = time.Minute
	}
	if now.Sub(inst.since) >= window {
		m.retries = 0 // it ran well for a whole window: failures start over
	}
	kept := m.crashes[:0]
	for _, c := range m.crashes {
		if now.Sub(c) < window {
			kept = append(kept, c)
		}
	}
	m.crashes = append(kept, now)
	n := len(m.crashes)
	limit := m.spec.MaxRestarts
	switch {
	case limit == 0:
		limit = 5
	case limit < 0:
		limit = 0 // never restart
	}
	var notify func()
	failed := n > limit || m.spec.Attach != nil
	if failed {
		err := fmt.Errorf("crashed %d times within %s", n, window)
		switch {
		case m.spec.Attach != nil:
			err = fmt.Errorf("exited: it is the attached debug process (pid %d), which the bot does not restart; start it again with --debug and restart the bot with its new --attach line", m.spec.Attach.Pid)
		case limit == 0:
			err = errors.New("crashed and is never restarted (max_restarts: 0); restarting the bot starts it again")
		}
		notify = m.failLocked(err, false)
	} else {
		m.host.log.Warn("plugin crashed; restarting", "plugin", m.spec.Name, "crashes_in_window", n)
		notify = m.setStateLocked(StateRestarting, nil, errors.New("crashed"))
	}
	m.mu.Unlock()
	notify()
	inst.kill()
	if !failed {
		m.host.wg.Add(1)
		go m.restart(n)
	}
}

func (m *managed) restart(attempt int) {
	defer m.host.wg.Done()
	// 50ms, 100ms, 200ms, … up to 30s: the first restart is quick so the
	// next command works within a second.
	backoff := min(50*time.Millisecond<<(attempt-1), 30*time.Second)
	for {
		select {
		case <-time.After(backoff):
		case <-m.host.done:
			return
		}
		err := m.startAgain()
		if err == nil {
			return
		}
		m.host.log.Error("plugin restart failed", "plugin", m.spec.Name, "error", err)
		m.mu.Lock()
		m.lastErr = err.Error()
		m.crashes = append(m.crashes, time.Now())
		n := len(m.crashes)
		m.mu.Unlock()
		if n > max(m.spec.MaxRestarts, 1)*2 {
			m.fail(fmt.Errorf("restart failed: %w", err), true)
			return
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

func (m *managed) stop() {
	m.mu.Lock()
	inst := m.inst
	m.mu.Unlock()
	if inst != nil {
		inst.dead.Store(true)
		inst.kill()
	}
	m.setState(StateStopped, nil, nil)
}

// instance is one running plugin process.
type instance struct {
	client *plugin.Client
	// attached is the connection to a process the host attached to; kill
	// closes it, which asks the process to stop (go-plugin's Kill leaves
	// a process attached in test mode alone).
	attached  plugin.ClientProtocol
	conn      *wire.Conn
	manifest  *pluginv1.Manifest
	mux       *muxClient
	pid       int
	startTime time.Duration
	since     time.Time // when it became the running instance
	kick      chan struct{}
	stopped   chan struct{}
	stopOnce  sync.Once
	dead      atomic.Bool
}

// hostStreamWorkers is how many goroutines serve one plugin's Host calls
// from call to call; calls beyond them get a goroutine of their own.
const hostStreamWorkers = 16

func launch(ctx context.Context, h *Host, spec Spec) (*instance, error) {
	begin := time.Now()
	client, rpc, conn, err := startProcess(h, spec)
	if err != nil {
		return nil, err
	}
	inst := &instance{client: client, conn: conn, kick: make(chan struct{}, 1), stopped: make(chan struct{})}
	if spec.Attach != nil {
		inst.attached = rpc
	}
	if rc := client.ReattachConfig(); rc != nil {
		inst.pid = rc.Pid
	}

	var hostID uint32
	if h.opts.HostService != nil {
		hostID = conn.Broker.NextId()
		svc := h.opts.HostService(spec.Name)
		go conn.Broker.AcceptAndServe(hostID, func(opts []grpc.ServerOption) *grpc.Server {
			// Stream workers: each Host call runs on a goroutine kept
			// from call to call, whose stack has already grown to what a
			// store call needs, instead of a new goroutine that grows
			// its stack again, a copy at each doubling (a twentieth of
			// the bot's CPU on the webhook-to-chat path).
			opts = append(opts, grpc.NumStreamWorkers(hostStreamWorkers))
			s := grpc.NewServer(append(opts, wire.GRPCOptions()...)...)
			pluginv1.RegisterHostServer(s, svc)
			return s
		})
	}
	dctx, cancel := context.WithTimeout(ctx, h.opts.StartTimeout)
	defer cancel()
	strs, doc, err := settingsMessages(spec.Settings)
	if err != nil {
		client.Kill()
		return nil, err
	}
	man, err := conn.Plugin.Describe(dctx, &pluginv1.DescribeRequest{
		HostServiceId: hostID, Settings: strs, SettingsJson: doc,
		HostVersion: h.opts.Version, ProtocolMinor: wire.ProtocolMinor,
	})
	if err != nil {
		inst.closeClient()
		if st, ok := status.FromError(err); ok && st.Code() == codes.Unknown {
			// The plugin refused to start (its Configure failed): its own
			// words, without gRPC's wrapping, are what an operator needs.
			return nil, errors.New(st.Message())
		}
		return nil, fmt.Errorf("describe: %w", err)
	}
	inst.manifest = man
	if slices.Contains(man.GetCapabilities(), wire.CapabilityMultiplex) {
		mux, err := newMux(context.Background(), conn.Plugin)
		if err != nil {
			inst.closeClient()
			return nil, err
		}
		inst.mux = mux
	}
	inst.startTime = time.Since(begin)
	return inst, nil
}

// startProcess starts spec's binary with its clean environment (or
// attaches to spec.Attach's process), does the go-plugin handshake and
// dispenses the Chima service. The caller kills the client when done, and
// closes rpc too for an attached process.
func startProcess(h *Host, spec Spec) (*plugin.Client, plugin.ClientProtocol, *wire.Conn, error) {
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake,
		VersionedPlugins: wire.PluginSets(&wire.GRPCPlugin{}),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclogFor(h.log, spec.Name, spec.Secrets),
		GRPCDialOptions:  wire.DialOptions(),
		StartTimeout:     h.opts.StartTimeout,
		Stderr:           io.Discard,
		SyncStdout:       io.Discard,
		SyncStderr:       io.Discard,
	}
	what := spec.Path
	if spec.Attach != nil {
		// No AutoMTLS, no checksum (go-plugin refuses one with Reattach):
		// the person started the binary and it listens without TLS.
		rc, err := spec.Attach.Config()
		if err != nil {
			return nil, nil, nil, err
		}
		cfg.Reattach = rc
		// go-plugin negotiates no version with a process in test mode:
		// the plugin set is the one of the major it printed (checked).
		cfg.Plugins = cfg.VersionedPlugins[rc.ProtocolVersion]
		what = fmt.Sprintf("attach to pid %d at %s", spec.Attach.Pid, spec.Attach.Addr.String)
	} else {
		cmd := exec.Command(spec.Path, spec.Args...)
		cmd.Env = slices.Clone(spec.Env)
		detach(cmd)
		// Always AutoMTLS: a plugin's port on 127.0.0.1 is open to every
		// local user, and mutual TLS with a certificate made for this start
		// is what keeps them out. Every SDK (Go, Python, Node) speaks it.
		cfg.Cmd, cfg.AutoMTLS, cfg.SkipHostEnv = cmd, true, true
		if spec.SHA256 != "" {
			sum, err := hex.DecodeString(spec.SHA256)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("sha256 pin: %w", err)
			}
			cfg.SecureConfig = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
		}
	}
	client := plugin.NewClient(cfg)
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, nil, nil, fmt.Errorf("start %s: %w", what, err)
	}
	raw, err := rpc.Dispense(wire.PluginName)
	if err != nil {
		if spec.Attach != nil {
			_ = rpc.Close()
		}
		client.Kill()
		return nil, nil, nil, fmt.Errorf("dispense: %w", err)
	}
	return client, rpc, raw.(*wire.Conn), nil
}

// call runs one call over the multiplexed stream, or over a unary-started
// server stream for plugins without the multiplex capability.
func (i *instance) call(ctx context.Context, c *pluginv1.Call, fn func(*pluginv1.Event)) error {
	if i.mux != nil {
		err := i.mux.call(ctx, c, fn)
		if err != nil {
			i.poke()
		}
		return err
	}
	if i.dead.Load() || i.client.Exited() {
		return errNotSent
	}
	var (
		stream interface {
			Recv() (*pluginv1.Event, error)
		}
		err error
	)
	switch k := c.GetKind().(type) {
	case *pluginv1.Call_Command:
		stream, err = i.conn.Plugin.Handle(ctx, k.Command)
	case *pluginv1.Call_Event:
		stream, err = i.conn.Plugin.HandleEvent(ctx, k.Event)
	case *pluginv1.Call_Job:
		stream, err = i.conn.Plugin.RunJob(ctx, k.Job)
	case *pluginv1.Call_Interaction:
		stream, err = i.conn.Plugin.HandleInteraction(ctx, k.Interaction)
	case *pluginv1.Call_JobInterrupted:
		stream, err = i.conn.Plugin.JobInterrupted(ctx, k.JobInterrupted)
	default:
		return fmt.Errorf("unsupported call %T", k)
	}
	if err != nil {
		i.poke()
		return err
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			i.poke()
			return err
		}
		fn(ev)
		if _, end := ev.GetKind().(*pluginv1.Event_Done); end {
			return nil
		}
	}
}

func (i *instance) poke() {
	select {
	case i.kick <- struct{}{}:
	default:
	}
}

// waitExit reports whether the process has exited, waiting up to d: a broken
// stream is noticed a little before the process is reaped.
func (i *instance) waitExit(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if i.client.Exited() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (i *instance) kill() {
	i.stopOnce.Do(func() {
		close(i.stopped)
		if i.mux != nil {
			i.mux.cancel()
		}
		i.closeClient()
	})
}

// closeClient ends the process: kills the one the host started, or asks an
// attached one to stop (closing the connection sends go-plugin's Shutdown)
// and lets go.
func (i *instance) closeClient() {
	if i.attached != nil {
		_ = i.attached.Close()
	}
	i.client.Kill()
}
