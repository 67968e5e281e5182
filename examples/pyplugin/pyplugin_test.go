package pyplugin_test

// These tests run plugin.py, the Python plugin, through go-plugin's real
// client, configured as core/pluginhost configures it (handshake, versioned
// plugin sets, gRPC only, clean environment, a Host service offered over the
// broker), and talk to it through the generated Go client of the protocol.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
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
		out, err := exec.Command(python, "-c", "import grpc, google.protobuf").CombinedOutput()
		if err != nil {
			grpcErr = fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
		}
	})
	if grpcErr != nil {
		sdktest.Missing(t, "%s cannot import grpc (install Debian's python3-grpcio and python3-protobuf): %v", python, grpcErr)
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

// pyPlugin is one running plugin.py.
type pyPlugin struct {
	client *plugin.Client
	rpc    *plugin.GRPCClient
	conn   *wire.Conn
	pid    int
	hostID uint32
	logs   *syncBuffer
}

func clientConfig(t *testing.T, logs *syncBuffer) *plugin.ClientConfig {
	cmd := exec.Command(python, script(t))
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
// offers it a Host service over the broker, as core/pluginhost does. Cleanup
// kills it and checks that the Python process is gone.
func start(t *testing.T) *pyPlugin {
	t.Helper()
	requirePythonGRPC(t)
	logs := &syncBuffer{}
	client := plugin.NewClient(clientConfig(t, logs))
	p := &pyPlugin{client: client, logs: logs}
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
	p.hostID = p.conn.Broker.NextId()
	go p.conn.Broker.AcceptAndServe(p.hostID, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(append(opts, wire.GRPCOptions()...)...)
		pluginv1.RegisterHostServer(s, pluginv1.UnimplementedHostServer{})
		return s
	})
	return p
}

func (p *pyPlugin) describe(t *testing.T) *pluginv1.Manifest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	man, err := p.conn.Plugin.Describe(ctx, &pluginv1.DescribeRequest{
		HostServiceId: p.hostID,
		Settings:      map[string]string{"greeting": "hi"},
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

	t.Run("Describe", func(t *testing.T) {
		man := p.describe(t)
		if man.GetName() != "pyhello" || man.GetVersion() != "1.0.0" || man.GetDescription() == "" {
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
		if len(cmds) != 2 {
			t.Fatalf("commands = %v, want pyhello and pycount", man.GetCommands())
		}
		hello, count := cmds["pyhello"], cmds["pycount"]
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
		// The plugin received the Host service's broker id and the
		// connection info the host sent for it over go-plugin's broker.
		waitLog(t, p.logs, "described to host", fmt.Sprintf("host_service_id=%d", p.hostID))
		waitLog(t, p.logs, "host service announced", fmt.Sprintf("broker_id=%d", p.hostID))
	})

	t.Run("pyhello replies", func(t *testing.T) {
		for _, name := range []string{"world", "Ada Lovelace", "Zoë 🐍"} {
			events := p.handle(t, "pyhello", map[string]string{"name": name})
			if d := done(t, events); d.GetOutcome() != "" || d.GetDetail() != "" {
				t.Errorf("pyhello %q: Done = %v, want empty outcome", name, d)
			}
			if len(events) != 2 {
				t.Fatalf("pyhello %q: events = %v, want a reply and Done", name, events)
			}
			if got, want := events[0].GetReply().GetOutput().GetText(), "Hello from Python, "+name+"!"; got != want {
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

	t.Run("events and jobs are unsupported", func(t *testing.T) {
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
		if d := done(t, collect(t, job)); d.GetOutcome() != "error" || !strings.Contains(d.GetDetail(), "no jobs") {
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

// TestAutoMTLSIsRefusedClearly: plugin.py does not do go-plugin's automatic
// mTLS. When the host asks for it, the plugin says so and exits, rather than
// leaving the host to fail a TLS handshake against a plain-text server.
func TestAutoMTLSIsRefusedClearly(t *testing.T) {
	requirePythonGRPC(t)
	logs := &syncBuffer{}
	cfg := clientConfig(t, logs)
	cfg.AutoMTLS = true
	client := plugin.NewClient(cfg)
	defer client.Kill()
	if _, err := client.Client(); err == nil {
		t.Fatal("plugin started with AutoMTLS; want it refused")
	}
	waitLog(t, logs, "[ERROR]", "auto_mtls: false")
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
			for _, want := range []string{"Chima plugin", "not meant to be run", wire.Handshake.MagicCookieKey, "auto_mtls: false"} {
				if !strings.Contains(msg, want) {
					t.Errorf("stderr lacks %q:\n%s", want, msg)
				}
			}
		})
	}
}
