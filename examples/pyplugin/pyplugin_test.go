package pyplugin_test

// These tests run plugin.py, the Python plugin, through go-plugin's real
// client, configured as core/pluginhost configures it (handshake, versioned
// plugin sets, gRPC only, AutoMTLS, clean environment, a Host service offered
// over the broker), and talk to it through the generated Go client of the
// protocol. The Host service is a fakeHost, so that the tests see each call
// the plugin makes; cmd/chima's e2e_pyplugin_test.go runs it with the real one.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/sdktest"
	"github.com/chimaops/chima/sdk/wire"
)

// python is the interpreter the plugin is written for: Debian's, with
// python3-grpcio and python3-protobuf.
const python = "/usr/bin/python3"

// guard bounds every wait so that a broken plugin fails the test instead of
// hanging it. It is never an expectation of speed.
const guard = 10 * time.Second

var (
	grpcOnce sync.Once
	grpcErr  error
)

// requirePython skips the test when the interpreter is missing.
func requirePython(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		sdktest.Missing(t, "%s is not installed, so the Python plugin cannot run: %v", python, err)
	}
}

// requirePythonGRPC skips the test when the interpreter cannot import gRPC.
func requirePythonGRPC(t *testing.T) {
	t.Helper()
	requirePython(t)
	grpcOnce.Do(func() {
		out, err := exec.Command(python, "-c", "import grpc, google.protobuf, cryptography").CombinedOutput()
		if err != nil {
			grpcErr = fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
		}
	})
	if grpcErr != nil {
		sdktest.Missing(t, "%s cannot import grpc (install Debian's python3-grpcio, python3-protobuf and python3-cryptography): %v", python, grpcErr)
	}
}

func script(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("plugin.py")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// syncBuffer collects go-plugin's log, which it writes from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fakeHost is an in-memory Host service: what the real host's does, as far
// as plugin.py uses it, and a record of the calls, so that the tests see what
// the plugin asked of the host through the broker.
type fakeHost struct {
	pluginv1.UnimplementedHostServer

	mu     sync.Mutex
	kv     map[string][]byte
	locks  map[string]string // name -> owner
	calls  []string          // method names, in order
	posts  []*pluginv1.PostRequest
	jobs   []*pluginv1.EnqueueRequest
	lockNo []*pluginv1.LockRequest
}

func newFakeHost() *fakeHost {
	return &fakeHost{kv: map[string][]byte{}, locks: map[string]string{}}
}

func (h *fakeHost) record(method string) func() {
	h.mu.Lock()
	h.calls = append(h.calls, method)
	return h.mu.Unlock
}

func (h *fakeHost) Post(_ context.Context, r *pluginv1.PostRequest) (*pluginv1.PostResponse, error) {
	defer h.record("Post")()
	h.posts = append(h.posts, r)
	ref := proto.Clone(r.GetTarget()).(*pluginv1.MessageRef)
	ref.MessageId = fmt.Sprintf("posted-%d", len(h.posts))
	return &pluginv1.PostResponse{Message: ref}, nil
}

func (h *fakeHost) Enqueue(_ context.Context, r *pluginv1.EnqueueRequest) (*pluginv1.EnqueueResponse, error) {
	defer h.record("Enqueue")()
	h.jobs = append(h.jobs, r)
	return &pluginv1.EnqueueResponse{JobId: int64(len(h.jobs))}, nil
}

func (h *fakeHost) Lock(_ context.Context, r *pluginv1.LockRequest) (*pluginv1.LockResponse, error) {
	defer h.record("Lock")()
	h.lockNo = append(h.lockNo, r)
	if owner, held := h.locks[r.GetName()]; held && owner != r.GetOwner() {
		return &pluginv1.LockResponse{Holder: &pluginv1.LockInfo{Name: r.GetName(), Owner: owner, Reason: "held by " + owner}}, nil
	}
	h.locks[r.GetName()] = r.GetOwner()
	return &pluginv1.LockResponse{Acquired: true, Holder: &pluginv1.LockInfo{Name: r.GetName(), Owner: r.GetOwner(), Reason: r.GetReason()}}, nil
}

func (h *fakeHost) Unlock(_ context.Context, r *pluginv1.UnlockRequest) (*pluginv1.UnlockResponse, error) {
	defer h.record("Unlock")()
	if owner, held := h.locks[r.GetName()]; !held || (owner != r.GetOwner() && !r.GetForce()) {
		return &pluginv1.UnlockResponse{}, nil
	}
	delete(h.locks, r.GetName())
	return &pluginv1.UnlockResponse{Released: true}, nil
}

func (h *fakeHost) KVGet(_ context.Context, r *pluginv1.KVGetRequest) (*pluginv1.KVGetResponse, error) {
	defer h.record("KVGet")()
	v, ok := h.kv[r.GetKey()]
	return &pluginv1.KVGetResponse{Value: v, Found: ok}, nil
}

func (h *fakeHost) KVSet(_ context.Context, r *pluginv1.KVSetRequest) (*pluginv1.KVSetResponse, error) {
	defer h.record("KVSet")()
	h.kv[r.GetKey()] = slices.Clone(r.GetValue())
	return &pluginv1.KVSetResponse{}, nil
}

func (h *fakeHost) KVIncrement(_ context.Context, r *pluginv1.KVIncrementRequest) (*pluginv1.KVIncrementResponse, error) {
	defer h.record("KVIncrement")()
	n, _ := strconv.ParseInt(string(h.kv[r.GetKey()]), 10, 64)
	n += r.GetDelta()
	h.kv[r.GetKey()] = []byte(strconv.FormatInt(n, 10))
	return &pluginv1.KVIncrementResponse{Value: n}, nil
}

func (h *fakeHost) KVList(_ context.Context, r *pluginv1.KVListRequest) (*pluginv1.KVListResponse, error) {
	defer h.record("KVList")()
	var keys []string
	for k := range h.kv {
		if strings.HasPrefix(k, r.GetPrefix()) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return &pluginv1.KVListResponse{Keys: keys}, nil
}

// recorded returns the methods called so far and forgets them.
func (h *fakeHost) recorded() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.calls
	h.calls = nil
	return c
}

// pyPlugin is one running plugin.py.
type pyPlugin struct {
	client *plugin.Client
	rpc    *plugin.GRPCClient
	conn   *wire.Conn
	pid    int
	hostID uint32
	host   *fakeHost
	logs   *syncBuffer
}

// clientConfig is go-plugin's client as core/pluginhost configures it:
// AutoMTLS on, gRPC only, a clean environment.
func clientConfig(t *testing.T, logs *syncBuffer) *plugin.ClientConfig {
	return clientConfigFor(script(t), logs)
}

// clientConfigFor is clientConfig for the plugin script at path.
func clientConfigFor(path string, logs *syncBuffer) *plugin.ClientConfig {
	cmd := exec.Command(python, path)
	// The host starts plugins with a clean environment: only what the config
	// gives, and PATH.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PYHELLO_LOG_LEVEL=debug"}
	return &plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake,
		VersionedPlugins: wire.PluginSets(&wire.GRPCPlugin{}),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		GRPCDialOptions:  wire.DialOptions(),
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: "host", Output: logs, Level: hclog.Debug,
		}),
	}
}

// start runs plugin.py through go-plugin, dispenses the Chima plugin and
// offers it a Host service (a fakeHost) over the broker, as core/pluginhost
// does. Cleanup kills it and checks that the Python process is gone.
func start(t *testing.T) *pyPlugin {
	return startScript(t, script(t))
}

// startScript is start for the plugin script at path.
func startScript(t *testing.T, path string) *pyPlugin {
	p := launchScript(t, path)
	p.hostID = p.conn.Broker.NextId()
	go p.conn.Broker.AcceptAndServe(p.hostID, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(append(opts, wire.GRPCOptions()...)...)
		pluginv1.RegisterHostServer(s, p.host)
		return s
	})
	return p
}

// launch starts plugin.py and dispenses the Chima plugin, offering no Host
// service yet.
func launch(t *testing.T) *pyPlugin {
	return launchScript(t, script(t))
}

// launchScript is launch for the plugin script at path.
func launchScript(t *testing.T, path string) *pyPlugin {
	t.Helper()
	requirePythonGRPC(t)
	logs := &syncBuffer{}
	client := plugin.NewClient(clientConfigFor(path, logs))
	p := &pyPlugin{client: client, logs: logs, host: newFakeHost()}
	t.Cleanup(func() {
		client.Kill()
		if p.pid != 0 {
			waitGone(t, p.pid)
		}
		if t.Failed() {
			t.Logf("go-plugin log:\n%s", logs)
		}
	})

	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start plugin.py: %v", err)
	}
	if rc := client.ReattachConfig(); rc != nil {
		p.pid = rc.Pid
	}
	if p.pid == 0 {
		t.Fatal("go-plugin reports no pid for the plugin process")
	}
	grpcClient, ok := rpc.(*plugin.GRPCClient)
	if !ok {
		t.Fatalf("protocol client is %T, want *plugin.GRPCClient", rpc)
	}
	p.rpc = grpcClient
	raw, err := rpc.Dispense(wire.PluginName)
	if err != nil {
		t.Fatalf("dispense %q: %v", wire.PluginName, err)
	}
	p.conn, ok = raw.(*wire.Conn)
	if !ok {
		t.Fatalf("dispensed %T, want *wire.Conn", raw)
	}
	return p
}

func (p *pyPlugin) describe(t *testing.T) *pluginv1.Manifest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	man, err := p.conn.Plugin.Describe(ctx, &pluginv1.DescribeRequest{
		HostServiceId: p.hostID,
		// pyhello greets with its greeting setting (see "pyhello replies").
		Settings:      map[string]string{"greeting": "Howdy"},
		HostVersion:   "test",
		ProtocolMinor: wire.ProtocolMinor,
	})
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	return man
}

// collect drains one server stream of events.
func collect(t *testing.T, stream interface {
	Recv() (*pluginv1.Event, error)
}) []*pluginv1.Event {
	t.Helper()
	var events []*pluginv1.Event
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return events
		}
		if err != nil {
			t.Fatalf("after %d events: %v", len(events), err)
		}
		events = append(events, ev)
	}
}

func (p *pyPlugin) handle(t *testing.T, command string, args map[string]string) []*pluginv1.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	stream, err := p.conn.Plugin.Handle(ctx, &pluginv1.CommandRequest{
		RequestId: "req-" + command,
		Command:   command,
		Args:      args,
		User:      &pluginv1.User{Id: "alice", Name: "Alice"},
		Message:   &pluginv1.MessageRef{Adapter: "shell", Room: "general", MessageId: "1"},
		Text:      command,
	})
	if err != nil {
		t.Fatalf("Handle %s: %v", command, err)
	}
	return collect(t, stream)
}

// done checks that events end with exactly one Done, and returns it.
func done(t *testing.T, events []*pluginv1.Event) *pluginv1.Done {
	t.Helper()
	if len(events) == 0 {
		t.Fatal("no events; want at least Done")
	}
	for i, ev := range events[:len(events)-1] {
		if ev.GetDone() != nil {
			t.Fatalf("event %d of %d is Done; Done must be last: %v", i+1, len(events), events)
		}
	}
	d := events[len(events)-1].GetDone()
	if d == nil {
		t.Fatalf("last event is %v, want Done", events[len(events)-1])
	}
	return d
}

// waitGone waits until process pid has exited (gone or a zombie).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	stat := fmt.Sprintf("/proc/%d/stat", pid)
	deadline := time.Now().Add(guard)
	for {
		b, err := os.ReadFile(stat)
		if err != nil {
			return // gone
		}
		if i := bytes.LastIndexByte(b, ')'); i >= 0 {
			if f := strings.Fields(string(b[i+1:])); len(f) > 0 && f[0] == "Z" {
				return // exited, not yet reaped
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin process %d still running after Kill: %s", pid, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLog waits until the go-plugin log contains all of parts on one line.
func waitLog(t *testing.T, logs *syncBuffer, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(guard)
	for {
		for line := range strings.Lines(logs.String()) {
			if containsAll(line, parts) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q in:\n%s", parts, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func TestPythonPluginServesTheProtocol(t *testing.T) {
	p := start(t)

	t.Run("go-plugin services", func(t *testing.T) {
		if err := p.rpc.Ping(); err != nil {
			t.Fatalf("Ping (grpc.health.v1 check of %q): %v", plugin.GRPCServiceName, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		health := grpc_health_v1.NewHealthClient(p.rpc.Conn)
		res, err := health.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
		if err != nil || res.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
			t.Errorf("health of %q = %v, %v; want SERVING", plugin.GRPCServiceName, res, err)
		}
		_, err = health.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: "nope"})
		if status.Code(err) != codes.NotFound {
			t.Errorf("health of an unknown service: %v, want NotFound", err)
		}
		// StreamStdio is served (as an empty stream), so go-plugin does not
		// warn that the plugin lacks it.
		if strings.Contains(p.logs.String(), "stdio service not available") {
			t.Errorf("go-plugin found no stdio service:\n%s", p.logs)
		}
	})

	t.Run("Validate", func(t *testing.T) {
		tests := []struct {
			name     string
			settings map[string]string
			want     []string // "key: message"
		}{
			{"no settings", nil, nil},
			{"a greeting and the host's own keys", map[string]string{"greeting": "Howdy", "chima_bot_name": "chima"}, nil},
			{"a misspelt key", map[string]string{"gretting": "Howdy"}, []string{"gretting: unknown setting (known: greeting)"}},
			{"an empty greeting", map[string]string{"greeting": " "}, []string{"greeting: must be one line of 1 to 40 characters, not ' '"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), guard)
				defer cancel()
				res, err := p.conn.Plugin.Validate(ctx, &pluginv1.ValidateRequest{Settings: tt.settings, HostVersion: "test", ProtocolMinor: wire.ProtocolMinor})
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				var got []string
				for _, pr := range res.GetProblems() {
					got = append(got, pr.GetKey()+": "+pr.GetMessage())
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("problems = %q, want %q", got, tt.want)
				}
			})
		}
	})

	t.Run("Describe", func(t *testing.T) {
		man := p.describe(t)
		if man.GetName() != "pyhello" || man.GetVersion() != "1.1.0" || man.GetDescription() == "" {
			t.Errorf("name, version, description = %q, %q, %q", man.GetName(), man.GetVersion(), man.GetDescription())
		}
		// The minor plugin.py was written against: minors only add, so an
		// older one keeps working with a newer host.
		if m := man.GetProtocolMinor(); m < 1 || m > wire.ProtocolMinor {
			t.Errorf("protocol_minor = %d, want 1..%d", m, wire.ProtocolMinor)
		}
		if slices.Contains(man.GetCapabilities(), wire.CapabilityMultiplex) {
			t.Errorf("capabilities %v list %q; plugin.py does not serve Multiplex", man.GetCapabilities(), wire.CapabilityMultiplex)
		}
		cmds := map[string]*pluginv1.CommandSpec{}
		for _, c := range man.GetCommands() {
			cmds[c.GetName()] = c
		}
		if len(cmds) != 3 {
			t.Fatalf("commands = %v, want pyhello, pycount and pynote", man.GetCommands())
		}
		hello, count, note := cmds["pyhello"], cmds["pycount"], cmds["pynote"]
		if hello.GetUsage() != "pyhello <name>" || hello.GetHelp() == "" || len(hello.GetArgs()) != 1 {
			t.Fatalf("pyhello = %v", hello)
		}
		if a := hello.GetArgs()[0]; a.GetName() != "name" || a.GetType() != pluginv1.ArgType_ARG_TYPE_STRING || !a.GetRequired() || !a.GetRest() {
			t.Errorf("pyhello arg = %v, want name: string, required, rest", a)
		}
		if count.GetUsage() != "pycount <n>" || count.GetHelp() == "" || len(count.GetArgs()) != 1 {
			t.Fatalf("pycount = %v", count)
		}
		if a := count.GetArgs()[0]; a.GetName() != "n" || a.GetType() != pluginv1.ArgType_ARG_TYPE_INT || !a.GetRequired() || a.GetRest() {
			t.Errorf("pycount arg = %v, want n: int, required", a)
		}
		if len(note.GetArgs()) != 3 || note.GetArgs()[0].GetType() != pluginv1.ArgType_ARG_TYPE_ENUM ||
			!slices.Equal(note.GetArgs()[0].GetEnum(), []string{"set", "get", "report"}) || !note.GetArgs()[2].GetRest() {
			t.Errorf("pynote args = %v, want action (set, get, report), key, text (rest)", note.GetArgs())
		}
		if !slices.Equal(man.GetJobKinds(), []string{"pynote.report"}) {
			t.Errorf("job kinds = %v, want [pynote.report]", man.GetJobKinds())
		}
		// The plugin received the Host service's broker id and the
		// connection info the host sent for it over go-plugin's broker.
		waitLog(t, p.logs, "described to host", fmt.Sprintf("host_service_id=%d", p.hostID))
		waitLog(t, p.logs, "host service announced", fmt.Sprintf("broker_id=%d", p.hostID))
	})

	t.Run("pyhello replies", func(t *testing.T) {
		// With the greeting setting that describe gave it.
		for _, name := range []string{"world", "Ada Lovelace", "Zoë 🐍"} {
			events := p.handle(t, "pyhello", map[string]string{"name": name})
			if d := done(t, events); d.GetOutcome() != "" || d.GetDetail() != "" {
				t.Errorf("pyhello %q: Done = %v, want empty outcome", name, d)
			}
			if len(events) != 2 {
				t.Fatalf("pyhello %q: events = %v, want a reply and Done", name, events)
			}
			if got, want := events[0].GetReply().GetOutput().GetText(), "Howdy from Python, "+name+"!"; got != want {
				t.Errorf("pyhello %q replied %q, want %q", name, got, want)
			}
		}
	})

	t.Run("pycount streams progress", func(t *testing.T) {
		const n = 4
		events := p.handle(t, "pycount", map[string]string{"n": strconv.Itoa(n)})
		if d := done(t, events); d.GetOutcome() != "" {
			t.Errorf("Done = %v, want empty outcome", d)
		}
		if len(events) != n+2 {
			t.Fatalf("events = %v, want %d progress, a reply and Done", events, n)
		}
		for i := range n {
			pr := events[i].GetProgress()
			if want := fmt.Sprintf("%d/%d", i+1, n); pr.GetKey() != "count" || pr.GetOutput().GetText() != want {
				t.Errorf("event %d = %v, want progress count %q", i+1, events[i], want)
			}
		}
		if got, want := events[n].GetReply().GetOutput().GetText(), fmt.Sprintf("counted to %d", n); got != want {
			t.Errorf("reply = %q, want %q", got, want)
		}
	})

	t.Run("pycount rejects a bad count", func(t *testing.T) {
		for _, n := range []string{"0", "101", "many"} {
			events := p.handle(t, "pycount", map[string]string{"n": n})
			if d := done(t, events); d.GetOutcome() != "failure" {
				t.Errorf("pycount %s: Done = %v, want outcome failure", n, d)
			}
			if len(events) != 2 || events[0].GetError() == nil {
				t.Fatalf("pycount %s: events = %v, want a user error and Done", n, events)
			}
			if ue := events[0].GetError(); ue.GetArgument() != "n" || !strings.Contains(ue.GetSummary(), "n must be") {
				t.Errorf("pycount %s: user error = %v", n, ue)
			}
		}
	})

	t.Run("unknown command ends with an error", func(t *testing.T) {
		d := done(t, p.handle(t, "nope", nil))
		if d.GetOutcome() != "error" || !strings.Contains(d.GetDetail(), "nope") {
			t.Errorf("Done = %v, want outcome error naming the command", d)
		}
	})

	t.Run("pynote set then get goes through the Host's KV under a lock", func(t *testing.T) {
		p.host.recorded()
		events := p.handle(t, "pynote", map[string]string{"action": "set", "key": "freeze", "text": "until Friday 🐍"})
		if d := done(t, events); d.GetOutcome() != "" || events[0].GetReply().GetOutput().GetText() != "noted freeze" {
			t.Fatalf("pynote set: events = %v", events)
		}
		if got, want := p.host.recorded(), []string{"Lock", "KVGet", "KVSet", "Unlock"}; !slices.Equal(got, want) {
			t.Errorf("host calls = %v, want %v", got, want)
		}
		p.host.mu.Lock()
		stored, locks := string(p.host.kv["note/freeze"]), len(p.host.locks)
		lock := p.host.lockNo[len(p.host.lockNo)-1]
		p.host.mu.Unlock()
		if stored != "until Friday 🐍" || locks != 0 {
			t.Errorf("stored %q with %d locks left; want the text and the lock released", stored, locks)
		}
		if lock.GetName() != "pynote/freeze" || lock.GetTtlSeconds() <= 0 || lock.GetOwner() == "" {
			t.Errorf("lock = %v, want pynote/freeze with an owner and a TTL", lock)
		}
		events = p.handle(t, "pynote", map[string]string{"action": "get", "key": "freeze"})
		if got := events[0].GetReply().GetOutput().GetText(); got != "freeze: until Friday 🐍" {
			t.Errorf("pynote get replied %q", got)
		}
		events = p.handle(t, "pynote", map[string]string{"action": "get", "key": "nothing"})
		if d := done(t, events); d.GetOutcome() != "failure" || !strings.Contains(events[0].GetError().GetSummary(), "no note") {
			t.Errorf("pynote get of a missing note: events = %v", events)
		}
	})

	t.Run("pynote set refuses while someone else holds the note's lock", func(t *testing.T) {
		p.host.mu.Lock()
		p.host.locks["pynote/busy"] = "someone else"
		p.host.mu.Unlock()
		p.host.recorded()
		events := p.handle(t, "pynote", map[string]string{"action": "set", "key": "busy", "text": "x"})
		if d := done(t, events); d.GetOutcome() != "failure" || !strings.Contains(events[0].GetError().GetSummary(), "being written") {
			t.Errorf("events = %v, want a user error saying the note is being written", events)
		}
		if got := p.host.recorded(); !slices.Equal(got, []string{"Lock"}) {
			t.Errorf("host calls = %v, want only the Lock that failed", got)
		}
	})

	t.Run("pynote report enqueues a job that posts the notes", func(t *testing.T) {
		events := p.handle(t, "pynote", map[string]string{"action": "report"})
		if d := done(t, events); d.GetOutcome() != "" || events[0].GetReply().GetOutput().GetText() != "report queued as job 1" {
			t.Fatalf("pynote report: events = %v", events)
		}
		p.host.mu.Lock()
		job := p.host.jobs[0]
		p.host.mu.Unlock()
		if job.GetKind() != "pynote.report" || job.GetNotify().GetRoom() != "general" || job.GetOriginRequestId() != "req-pynote" {
			t.Fatalf("enqueued %v, want kind pynote.report notifying general for req-pynote", job)
		}
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		stream, err := p.conn.Plugin.RunJob(ctx, &pluginv1.JobRequest{
			RequestId: "job-1", JobId: 1, Kind: job.GetKind(), Payload: job.GetPayload(),
			Attempt: 1, Notify: job.GetNotify(), OriginRequestId: job.GetOriginRequestId(),
		})
		if err != nil {
			t.Fatal(err)
		}
		d := done(t, collect(t, stream))
		if d.GetOutcome() != "success" || d.GetOutcomeCode() != pluginv1.Outcome_OUTCOME_SUCCESS {
			t.Errorf("RunJob: Done = %v, want success (string and code)", d)
		}
		p.host.mu.Lock()
		posts := slices.Clone(p.host.posts)
		p.host.mu.Unlock()
		if len(posts) != 1 || posts[0].GetTarget().GetRoom() != "general" ||
			posts[0].GetOutput().GetText() != "pyhello notes (1): freeze = until Friday 🐍" {
			t.Errorf("posts = %v, want the one note, posted to general", posts)
		}
	})

	t.Run("events and unknown jobs are refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		evs, err := p.conn.Plugin.HandleEvent(ctx, &pluginv1.WebhookEvent{RequestId: "r1", Type: "generic:x"})
		if err != nil {
			t.Fatal(err)
		}
		if d := done(t, collect(t, evs)); d.GetOutcome() != "error" || !strings.Contains(d.GetDetail(), "webhook") {
			t.Errorf("HandleEvent: Done = %v", d)
		}
		job, err := p.conn.Plugin.RunJob(ctx, &pluginv1.JobRequest{RequestId: "r2", JobId: 1, Kind: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if d := done(t, collect(t, job)); d.GetOutcome() != "error" || !strings.Contains(d.GetDetail(), "no jobs of kind") {
			t.Errorf("RunJob: Done = %v", d)
		}
	})

	t.Run("Multiplex is unimplemented", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		stream, err := p.conn.Plugin.Multiplex(ctx)
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("Multiplex: %v, want Unimplemented", err)
		}
	})
}

// TestShutdownStopsAStreamingCommand sends go-plugin's GRPCController
// Shutdown, which Kill sends, while pycount streams: the call ends, and the
// process exits by itself, with status 0.
func TestShutdownStopsAStreamingCommand(t *testing.T) {
	p := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	stream, err := p.conn.Plugin.Handle(ctx, &pluginv1.CommandRequest{
		RequestId: "long", Command: "pycount", Args: map[string]string{"n": "100"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := stream.Recv(); err != nil || ev.GetProgress().GetOutput().GetText() != "1/100" {
		t.Fatalf("first event = %v, %v; want progress 1/100", ev, err)
	}

	// plugin.Empty, go-plugin's internal message, has no fields: on the wire
	// it is the same as google.protobuf.Empty.
	if err := p.rpc.Conn.Invoke(ctx, "/plugin.GRPCController/Shutdown", &emptypb.Empty{}, &emptypb.Empty{}); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// The call ends: with Done "cancelled" when it gets through before the
	// server's grace period ends, with a transport error otherwise. Never
	// with "counted to 100".
	for {
		ev, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				t.Fatal("stream ended without Done")
			}
			t.Logf("stream ended with %v", err)
			break
		}
		if ev.GetReply() != nil {
			t.Fatalf("got %v after Shutdown; want the count to stop", ev)
		}
		if d := ev.GetDone(); d != nil {
			if d.GetOutcome() != "cancelled" {
				t.Errorf("Done = %v, want outcome cancelled", d)
			}
			break
		}
	}
	waitGone(t, p.pid)
	line := waitLog(t, p.logs, "plugin process exited")
	if strings.Contains(line, "error=") {
		t.Errorf("plugin did not exit cleanly: %s", line)
	}
}

// TestWithoutAutoMTLSThePluginRefusesToServe: the plugin serves only over
// go-plugin's mutual TLS. A host that does not ask for it gets no
// handshake, and a log line that says why.
func TestWithoutAutoMTLSThePluginRefusesToServe(t *testing.T) {
	requirePythonGRPC(t)
	logs := &syncBuffer{}
	cfg := clientConfig(t, logs)
	cfg.AutoMTLS = false
	client := plugin.NewClient(cfg)
	defer client.Kill()
	if _, err := client.Client(); err == nil {
		t.Fatal("plugin started without AutoMTLS; want it refused")
	}
	waitLog(t, logs, "[ERROR]", "mutual TLS")
}

// TestThePluginsPortAnswersOnlyTheHostsCertificate: another local process
// that finds the plugin's port can neither talk plain gRPC to it nor TLS
// with a certificate of its own; the host's certificate gets through.
func TestThePluginsPortAnswersOnlyTheHostsCertificate(t *testing.T) {
	p := start(t)
	addr := p.client.ReattachConfig().Addr.String()
	other, err := tls.X509KeyPair(selfSigned(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		creds credentials.TransportCredentials
	}{
		{"plain text", insecure.NewCredentials()},
		{"TLS without a client certificate", credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})},
		{"TLS with another certificate", credentials.NewTLS(&tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{other}})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(c.creds))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			_, err = grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
			if status.Code(err) != codes.Unavailable {
				t.Errorf("health check = %v, want Unavailable (refused at the handshake)", err)
			}
		})
	}
	if err := p.rpc.Ping(); err != nil {
		t.Errorf("the host's own connection: %v", err)
	}
}

// selfSigned returns a PEM certificate and key that nobody trusts.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// TestDescribeFailsWhenTheHostServiceIsUnreachable: a plugin that cannot
// reach the Host service it was given must not start as if it could (its
// KV, locks and jobs would all fail later): Describe fails, naming why.
func TestDescribeFailsWhenTheHostServiceIsUnreachable(t *testing.T) {
	p := launch(t) // the host announces no Host service on the broker
	ctx, cancel := context.WithTimeout(context.Background(), 3*guard)
	defer cancel()
	_, err := p.conn.Plugin.Describe(ctx, &pluginv1.DescribeRequest{HostServiceId: 7, ProtocolMinor: wire.ProtocolMinor})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "connection info of broker id 7") {
		t.Fatalf("Describe = %v, want Unavailable for want of the Host service's connection info", err)
	}
	waitLog(t, p.logs, "[ERROR]", "cannot reach the Host service")
}

// TestWrongCookieExplainsItself: run by hand, without the handshake cookie,
// the script says what it is and exits 1 without printing a handshake.
func TestWrongCookieExplainsItself(t *testing.T) {
	requirePython(t) // the check runs before gRPC is imported
	for name, env := range map[string][]string{
		"no environment": {},
		"wrong cookie":   {wire.Handshake.MagicCookieKey + "=nope"},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			cmd := exec.CommandContext(ctx, python, script(t))
			cmd.Env = env
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("run = %v, want exit status 1; stderr:\n%s", err, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing (no handshake)", stdout.String())
			}
			msg := stderr.String()
			for _, want := range []string{"Chima plugin", "not meant to be run", wire.Handshake.MagicCookieKey, "path: "} {
				if !strings.Contains(msg, want) {
					t.Errorf("stderr lacks %q:\n%s", want, msg)
				}
			}
		})
	}
}
