package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/sdktest"
	"github.com/chimaops/chima/sdk/wire"
)

// newHarness starts p in-process through the real gRPC glue.
func newHarness(t testing.TB, p *sdk.Plugin, settings ...map[string]string) *sdktest.Harness {
	t.Helper()
	return sdktest.New(t, p, settings...)
}

func TestHarnessTeardownIsRaceFree(t *testing.T) {
	for i := range 20 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			h := sdktest.New(t, &sdk.Plugin{Name: "teardown", Commands: []sdk.Command{
				{Name: "ping", Run: func(c *sdk.Context) error { return c.Reply("pong") }},
			}})
			if res := h.Command("ping", nil); res.Text() != "pong" {
				t.Fatalf("ping = %q", res.Text())
			}
		})
	}
}

// describe renders an event compactly, so a whole call reads as one list.
func describe(ev *pluginv1.Event) string {
	switch k := ev.GetKind().(type) {
	case *pluginv1.Event_Reply:
		if k.Reply.GetInThread() {
			return "thread:" + k.Reply.GetOutput().GetText()
		}
		return "reply:" + k.Reply.GetOutput().GetText()
	case *pluginv1.Event_Progress:
		return "progress:" + k.Progress.GetKey() + "=" + k.Progress.GetOutput().GetText()
	case *pluginv1.Event_Error:
		return "user-error:" + k.Error.GetSummary()
	case *pluginv1.Event_Done:
		return "done:" + k.Done.GetOutcome()
	}
	return fmt.Sprintf("unknown:%T", ev.GetKind())
}

func describeAll(evs []*pluginv1.Event) []string {
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		out = append(out, describe(ev))
	}
	return out
}

// requireDoneLast fails unless the call's last event is its Done.
func requireDoneLast(t *testing.T, res sdktest.Result) {
	t.Helper()
	if len(res.Events) == 0 {
		t.Fatal("call produced no events")
	}
	if _, ok := res.Events[len(res.Events)-1].GetKind().(*pluginv1.Event_Done); !ok {
		t.Fatalf("last event is not Done: %v", describeAll(res.Events))
	}
	for _, ev := range res.Events[:len(res.Events)-1] {
		if _, ok := ev.GetKind().(*pluginv1.Event_Done); ok {
			t.Fatalf("Done before the end of the call: %v", describeAll(res.Events))
		}
	}
}

// probe is a command whose handler each test step supplies, so a test can
// drive the Context API (KV, locks, jobs, logs) through the real gRPC glue
// and the FakeHost, one command per step.
type probe struct {
	mu   sync.Mutex
	body func(c *sdk.Context) error
}

// newProbe adds the "probe" command to p (a bare plugin when nil) and starts
// it in a harness.
func newProbe(t *testing.T, p *sdk.Plugin, settings ...map[string]string) (*probe, *sdktest.Harness) {
	t.Helper()
	pr := &probe{}
	if p == nil {
		p = &sdk.Plugin{Name: "probe", Version: "0.0.1"}
	}
	p.Commands = append(p.Commands, sdk.Command{Name: "probe", Run: func(c *sdk.Context) error {
		pr.mu.Lock()
		body := pr.body
		pr.mu.Unlock()
		return body(c)
	}})
	return pr, newHarness(t, p, settings...)
}

// do runs body as the probe command and fails the test unless it succeeds.
func (pr *probe) do(t *testing.T, h *sdktest.Harness, body func(c *sdk.Context) error) sdktest.Result {
	t.Helper()
	pr.mu.Lock()
	pr.body = body
	pr.mu.Unlock()
	res := h.Command("probe", nil)
	if got := res.Done.Outcome; got != "" {
		t.Fatalf("probe ended %q: %s", got, res.Done.Detail)
	}
	return res
}

func TestCommandEventsArriveInOrderAndEndWithDone(t *testing.T) {
	h := newHarness(t, &sdk.Plugin{Name: "report", Commands: []sdk.Command{{
		Name: "report",
		Run: func(c *sdk.Context) error {
			steps := []func() error{
				func() error { return c.Reply("building %s", c.Arg("app")) },
				func() error { return c.Progress("build", &sdk.Output{Text: "50%"}) },
				func() error { return c.ReplyOutput(&sdk.Output{Title: "Build", Text: "built", Status: "good"}) },
				func() error { return c.Progress("build", &sdk.Output{Text: "100%"}) },
				func() error { return c.ReplyInThread(&sdk.Output{Text: "log attached"}) },
			}
			for _, step := range steps {
				if err := step(); err != nil {
					return err
				}
			}
			return nil
		},
	}}})

	res := h.Command("report", sdktest.Args{"app": "web"})

	want := []string{
		"reply:building web",
		"progress:build=50%",
		"reply:built",
		"progress:build=100%",
		"thread:log attached",
		"done:",
	}
	if got := describeAll(res.Events); !slices.Equal(got, want) {
		t.Fatalf("events = %q, want %q", got, want)
	}
	requireDoneLast(t, res)
	if got, want := res.Text(), "building web\nbuilt\nlog attached"; got != want {
		t.Errorf("Text() = %q, want %q", got, want)
	}
	if got := res.Replies[1]; got.Title != "Build" || got.Status != "good" {
		t.Errorf("rich reply lost fields: %v", got)
	}
	if len(res.Progress) != 2 || res.Progress[0].Key != "build" || res.Progress[1].Output.Text != "100%" {
		t.Errorf("progress = %v", res.Progress)
	}
	if d := res.Done; d.Outcome != "" || d.Detail != "" {
		t.Errorf("a command that succeeds ends with Done %v, want empty outcome and detail", d)
	}
	if len(res.Errors) != 0 {
		t.Errorf("unexpected user errors: %v", res.Errors)
	}
}

func TestReplyFormatsOnlyWhenGivenArguments(t *testing.T) {
	tests := []struct {
		name  string
		reply func(c *sdk.Context) error
		want  string
	}{
		{"a bare format is sent verbatim", func(c *sdk.Context) error {
			// Through a func value: vet rightly flags a literal "%" with no
			// arguments, but plugins relay text they did not write.
			reply := c.Reply
			return reply("100% done")
		}, "100% done"},
		{"arguments are formatted", func(c *sdk.Context) error { return c.Reply("%d%% of %s", 50, "web") }, "50% of web"},
	}
	pr, h := newProbe(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := pr.do(t, h, tt.reply)
			if got := res.Text(); got != tt.want {
				t.Errorf("reply = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHandlerOutcomes(t *testing.T) {
	tests := []struct {
		name        string
		run         func(c *sdk.Context) error
		wantOutcome sdk.Outcome
		wantDetail  []string // substrings of Done's detail
		wantErrors  []*sdk.UserError
	}{
		{
			name:        "success ends with an empty outcome",
			run:         func(*sdk.Context) error { return nil },
			wantOutcome: "",
		},
		{
			name:        "Errorf is a user error and a failure",
			run:         func(*sdk.Context) error { return sdk.Errorf("no app called %q", "wbe") },
			wantOutcome: "failure",
			wantDetail:  []string{`no app called "wbe"`},
			wantErrors:  []*sdk.UserError{{Summary: `no app called "wbe"`}},
		},
		{
			name: "a UserError keeps its detail and argument",
			run: func(*sdk.Context) error {
				return &sdk.UserError{Summary: "cannot deploy", Detail: "prod is frozen", Argument: "env"}
			},
			wantOutcome: "failure",
			wantDetail:  []string{"cannot deploy: prod is frozen"},
			wantErrors:  []*sdk.UserError{{Summary: "cannot deploy", Detail: "prod is frozen", Argument: "env"}},
		},
		{
			name:        "a wrapped user error is still a user error",
			run:         func(*sdk.Context) error { return fmt.Errorf("deploy: %w", sdk.Errorf("frozen")) },
			wantOutcome: "failure",
			wantDetail:  []string{"frozen"},
			wantErrors:  []*sdk.UserError{{Summary: "frozen"}},
		},
		{
			name:        "a plain error is the plugin failing",
			run:         func(*sdk.Context) error { return errors.New("database is down") },
			wantOutcome: "error",
			wantDetail:  []string{"database is down"},
		},
		{
			name:        "a panic is an error naming the panic",
			run:         func(*sdk.Context) error { panic("boom") },
			wantOutcome: "error",
			wantDetail:  []string{"panic", "boom"},
		},
		{
			name: "a runtime panic is an error too",
			run: func(c *sdk.Context) error {
				words := strings.Fields(c.Arg("key"))
				return c.Reply("%s", words[len(words)+1]) // index out of range
			},
			wantOutcome: "error",
			wantDetail:  []string{"panic", "index out of range"},
		},
	}
	p := &sdk.Plugin{Name: "outcomes"}
	for i, tt := range tests {
		p.Commands = append(p.Commands, sdk.Command{Name: "case" + strconv.Itoa(i), Run: tt.run})
	}
	h := newHarness(t, p)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.Command("case"+strconv.Itoa(i), nil)
			requireDoneLast(t, res)
			if got := res.Done.Outcome; got != tt.wantOutcome {
				t.Errorf("outcome = %q (%s), want %q", got, res.Done.Detail, tt.wantOutcome)
			}
			for _, s := range tt.wantDetail {
				if !strings.Contains(res.Done.Detail, s) {
					t.Errorf("detail %q does not mention %q", res.Done.Detail, s)
				}
			}
			if len(tt.wantDetail) == 0 && res.Done.Detail != "" {
				t.Errorf("detail = %q, want none", res.Done.Detail)
			}
			if len(res.Errors) != len(tt.wantErrors) {
				t.Fatalf("user errors = %v, want %v", res.Errors, tt.wantErrors)
			}
			for j := range tt.wantErrors {
				if *res.Errors[j] != *tt.wantErrors[j] {
					t.Errorf("user error %d = %v, want %v", j, res.Errors[j], tt.wantErrors[j])
				}
			}
		})
	}
}

func TestPanickingHandlerDoesNotStopThePlugin(t *testing.T) {
	h := newHarness(t, &sdk.Plugin{Name: "fragile", Commands: []sdk.Command{
		{Name: "boom", Run: func(*sdk.Context) error { panic("boom") }},
		{Name: "ping", Run: func(c *sdk.Context) error { return c.Reply("pong") }},
	}})
	for i := range 3 {
		if res := h.Command("boom", nil); res.Done.Outcome != "error" {
			t.Fatalf("round %d: boom ended %q, want error", i, res.Done.Outcome)
		}
		res := h.Command("ping", nil)
		if res.Text() != "pong" || res.Done.Outcome != "" {
			t.Fatalf("round %d: after a panic, ping = %q (%v)", i, res.Text(), res.Done)
		}
	}
}

func TestUnknownCommandEndsWithError(t *testing.T) {
	h := newHarness(t, &sdk.Plugin{Name: "small", Commands: []sdk.Command{
		{Name: "known", Run: func(c *sdk.Context) error { return c.Reply("ok") }},
	}})
	res := h.Command("unknown", nil)
	requireDoneLast(t, res)
	if res.Done.Outcome != "error" {
		t.Errorf("outcome = %q, want error", res.Done.Outcome)
	}
	if !strings.Contains(res.Done.Detail, "no handler") {
		t.Errorf("detail = %q, want it to say there is no handler", res.Done.Detail)
	}
	if len(res.Replies) != 0 || len(res.Errors) != 0 {
		t.Errorf("unknown command said something: %v", describeAll(res.Events))
	}
}

func TestTypedArgumentAccessors(t *testing.T) {
	tests := []struct {
		name string
		args sdktest.Args
		want string // Int|Bool|Duration|Arg("app")
	}{
		{"values the host validated", sdktest.Args{"count": "42", "force": "true", "wait": "1h30m0s", "app": "web"}, `42|true|1h30m0s|"web"`},
		{"absent arguments are zero", nil, `0|false|0s|""`},
		{"negative count and false", sdktest.Args{"count": "-7", "force": "false", "wait": "1m30s"}, `-7|false|1m30s|""`},
		{"sub-second and fractional durations", sdktest.Args{"wait": "1.5s"}, `0|false|1.5s|""`},
		{"values the host did not normalise are not reinterpreted", sdktest.Args{"count": "12abc", "force": "yes", "wait": "5"}, `0|false|0s|""`},
	}
	h := newHarness(t, &sdk.Plugin{Name: "typed", Commands: []sdk.Command{{
		Name: "typed",
		Args: []sdk.Arg{{Name: "count", Type: sdk.Int}, {Name: "force", Type: sdk.Bool}, {Name: "wait", Type: sdk.Duration}, {Name: "app"}},
		Run: func(c *sdk.Context) error {
			return c.Reply("%d|%t|%s|%q", c.Int("count"), c.Bool("force"), c.Duration("wait"), c.Arg("app"))
		},
	}}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.Command("typed", tt.args)
			if got := res.Text(); got != tt.want {
				t.Errorf("Int|Bool|Duration|Arg = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCommandContextCarriesRequestUserAndRoom(t *testing.T) {
	pr, h := newProbe(t, nil)
	h.User = &sdk.User{ID: "U42", Name: "Ada", Roles: []string{"deployer"}}
	h.Room = "ops"
	var requestID, command, userID, room string
	var roles []string
	var hasEvent, hasJob bool
	pr.do(t, h, func(c *sdk.Context) error {
		requestID, command = c.RequestID(), c.Command.Command
		userID, roles, room = c.User().ID, c.User().Roles, c.Source().Room
		hasEvent, hasJob = c.Event != nil, c.Job != nil
		return nil
	})
	if requestID == "" || command != "probe" {
		t.Errorf("request id %q, command %q", requestID, command)
	}
	if userID != "U42" || !slices.Equal(roles, []string{"deployer"}) || room != "ops" {
		t.Errorf("user %q roles %v room %q, want U42 [deployer] ops", userID, roles, room)
	}
	if hasEvent || hasJob {
		t.Errorf("a command's context has Event=%v Job=%v, want neither", hasEvent, hasJob)
	}
}

func TestConfigureReceivesSettingsBeforeTheFirstCall(t *testing.T) {
	var mu sync.Mutex
	var got map[string]string
	calls := 0
	p := &sdk.Plugin{Name: "configured", Configure: func(s map[string]string) error {
		mu.Lock()
		defer mu.Unlock()
		got = s
		calls++
		return nil
	}}
	pr, h := newProbe(t, p, map[string]string{"region": "eu-west-1", "team": "ops"})

	mu.Lock()
	if calls != 1 || got["region"] != "eu-west-1" || got["team"] != "ops" || len(got) != 2 {
		t.Errorf("Configure called %d times with %v", calls, got)
	}
	mu.Unlock()

	res := pr.do(t, h, func(c *sdk.Context) error {
		return c.Reply("%s|%s|%q", c.Setting("region"), c.Setting("team"), c.Setting("missing"))
	})
	if want := `eu-west-1|ops|""`; res.Text() != want {
		t.Errorf("settings seen by a command = %s, want %s", res.Text(), want)
	}
}

var errMissingToken = errors.New("token is required")

func strictPlugin() *sdk.Plugin {
	return &sdk.Plugin{Name: "strict", Version: "1.0.0", Configure: func(s map[string]string) error {
		if s["token"] == "" {
			return errMissingToken
		}
		return nil
	}}
}

func TestConfigureErrorFailsDescribe(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]string
		wantErr  bool
	}{
		{"missing setting is refused", nil, true},
		{"empty setting is refused", map[string]string{"token": ""}, true},
		{"valid settings give the manifest", map[string]string{"token": "s3cret"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sdk.NewServer(strictPlugin(), nil, nil)
			m, err := srv.Describe(context.Background(), &pluginv1.DescribeRequest{Settings: tt.settings})
			if !tt.wantErr {
				if err != nil || m.GetName() != "strict" {
					t.Fatalf("Describe = %v, %v; want the manifest", m, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Describe succeeded with %v, want the Configure error", tt.settings)
			}
			if !errors.Is(err, errMissingToken) {
				t.Errorf("error %v does not wrap Configure's error", err)
			}
			if !strings.Contains(err.Error(), "strict") {
				t.Errorf("error %q does not name the plugin", err)
			}
			if m != nil {
				t.Errorf("Describe returned a manifest with its error: %v", m)
			}
		})
	}
}

// fatalRecorder is a testing.TB whose Fatal ends only the goroutine that
// called it and remembers why, to test that a helper fails its test.
type fatalRecorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fatalRecorder) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

func (f *fatalRecorder) fatal() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.msg
}

func TestConfigureErrorMakesHarnessNewFail(t *testing.T) {
	ft := &fatalRecorder{TB: t}
	done := make(chan *sdktest.Harness)
	go func() {
		var h *sdktest.Harness
		defer func() { done <- h }()
		h = sdktest.New(ft, strictPlugin(), map[string]string{"region": "eu"})
	}()
	if h := <-done; h != nil {
		t.Fatalf("sdktest.New returned a harness although Configure failed")
	}
	if msg := ft.fatal(); !strings.Contains(msg, errMissingToken.Error()) {
		t.Errorf("sdktest.New failed with %q, want Configure's error", msg)
	}
}

func TestManifestDeclaresEverythingThePluginOffers(t *testing.T) {
	run := func(*sdk.Context) error { return nil }
	p := &sdk.Plugin{
		Name: "deploy", Version: "2.1.0", Description: "Deploys apps.",
		Commands: []sdk.Command{
			{
				Name: "deploy", Aliases: []string{"ship"}, Usage: "deploy <app> [env]", Help: "Deploys an app.",
				Permission: "deployer", Pattern: `^deploy (?P<app>\S+)$`, Examples: []string{"deploy web prod"},
				Args: []sdk.Arg{
					{Name: "app", Type: sdk.String, Required: true, Pattern: `[a-z]+`, Help: "the app"},
					{Name: "count", Type: sdk.Int, Default: "1"},
					{Name: "force", Type: sdk.Bool},
					{Name: "env", Type: sdk.Enum, Enum: []string{"staging", "prod"}, Default: "staging"},
					{Name: "wait", Type: sdk.Duration},
					{Name: "note", Secret: true, Rest: true},
				},
				Run: run,
			},
			{Name: "status", Run: run},
		},
		Events: []sdk.EventHandler{{Type: "github:deployment", Run: run}, {Type: sdk.EventJobInterrupted, Run: run}},
		Jobs:   []sdk.JobHandler{{Kind: "deploy", Run: run}, {Kind: "rollback", Run: run}},
		Pages:  []sdk.Page{{Prefix: "/deploys/", Handler: http.NotFoundHandler()}, {Prefix: "/locks/", Handler: http.NotFoundHandler()}},
	}
	want := &pluginv1.Manifest{
		Name: "deploy", Version: "2.1.0", Description: "Deploys apps.",
		Commands: []*pluginv1.CommandSpec{
			{
				Name: "deploy", Aliases: []string{"ship"}, Usage: "deploy <app> [env]", Help: "Deploys an app.",
				Permission: "deployer", Pattern: `^deploy (?P<app>\S+)$`, Examples: []string{"deploy web prod"},
				Args: []*pluginv1.ArgSpec{
					{Name: "app", Type: pluginv1.ArgType_ARG_TYPE_STRING, Required: true, Pattern: `[a-z]+`, Help: "the app"},
					{Name: "count", Type: pluginv1.ArgType_ARG_TYPE_INT, Default: "1"},
					{Name: "force", Type: pluginv1.ArgType_ARG_TYPE_BOOL},
					{Name: "env", Type: pluginv1.ArgType_ARG_TYPE_ENUM, Enum: []string{"staging", "prod"}, Default: "staging"},
					{Name: "wait", Type: pluginv1.ArgType_ARG_TYPE_DURATION},
					{Name: "note", Type: pluginv1.ArgType_ARG_TYPE_STRING, Secret: true, Rest: true},
				},
			},
			{Name: "status"},
		},
		Events:        []string{"github:deployment", wire.EventJobInterrupted},
		JobKinds:      []string{"deploy", "rollback"},
		HttpPaths:     []string{"/deploys/", "/locks/"},
		Capabilities:  []string{wire.CapabilityMultiplex, wire.CapabilityHTTP, wire.CapabilityJobInterrupted},
		ProtocolMinor: wire.ProtocolMinor,
	}
	h := newHarness(t, p)
	if !proto.Equal(h.Manifest, want) {
		t.Errorf("manifest:\n%s\nwant:\n%s", prototext.Format(h.Manifest), prototext.Format(want))
	}
}

func TestManifestCapabilities(t *testing.T) {
	tests := []struct {
		name  string
		pages []sdk.Page
		want  []string
	}{
		{"without pages the plugin only multiplexes", nil, []string{"multiplex"}},
		{"pages add the http capability", []sdk.Page{{Prefix: "/x/", Handler: http.NotFoundHandler()}}, []string{"multiplex", "http"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, &sdk.Plugin{Name: "caps", Pages: tt.pages})
			if got := h.Manifest.GetCapabilities(); !slices.Equal(got, tt.want) {
				t.Errorf("capabilities = %q, want %q", got, tt.want)
			}
			if len(h.Manifest.GetHttpPaths()) != len(tt.pages) {
				t.Errorf("http paths = %q for %d pages", h.Manifest.GetHttpPaths(), len(tt.pages))
			}
		})
	}
}

func TestKVRoundTripThroughTheHost(t *testing.T) {
	pr, h := newProbe(t, nil)
	pr.do(t, h, func(c *sdk.Context) error {
		for k, v := range map[string]string{"apps/web": "v1", "apps/api": "v2", "other": "x"} {
			if err := c.KV().Set(k, []byte(v)); err != nil {
				return err
			}
		}
		return c.KV().Set("empty", []byte{})
	})

	type got struct {
		value []byte
		found bool
	}
	read := func(key string) got {
		t.Helper()
		var g got
		pr.do(t, h, func(c *sdk.Context) (err error) {
			g.value, g.found, err = c.KV().Get(key)
			return err
		})
		return g
	}
	list := func(prefix string) []string {
		t.Helper()
		var keys []string
		pr.do(t, h, func(c *sdk.Context) (err error) {
			keys, err = c.KV().List(prefix)
			return err
		})
		return keys
	}

	if g := read("apps/web"); !g.found || string(g.value) != "v1" {
		t.Errorf("Get(apps/web) = %q, %v; want v1, true", g.value, g.found)
	}
	if g := read("missing"); g.found || len(g.value) != 0 {
		t.Errorf("Get(missing) = %q, %v; want nothing", g.value, g.found)
	}
	if g := read("empty"); !g.found || len(g.value) != 0 {
		t.Errorf("Get(empty) = %q, %v; want an empty value that exists", g.value, g.found)
	}
	if keys := list("apps/"); !slices.Equal(keys, []string{"apps/api", "apps/web"}) {
		t.Errorf("List(apps/) = %q", keys)
	}
	if keys := list(""); !slices.Equal(keys, []string{"apps/api", "apps/web", "empty", "other"}) {
		t.Errorf("List() = %q, want every key sorted", keys)
	}
	if keys := list("nothing/"); len(keys) != 0 {
		t.Errorf("List(nothing/) = %q, want none", keys)
	}

	pr.do(t, h, func(c *sdk.Context) error {
		if err := c.KV().Delete("apps/web"); err != nil {
			return err
		}
		if err := c.KV().Delete("never-set"); err != nil {
			return fmt.Errorf("deleting an absent key: %w", err)
		}
		return c.KV().Set("apps/api", []byte("v3"))
	})
	if g := read("apps/web"); g.found {
		t.Errorf("Get after Delete = %q, found", g.value)
	}
	if keys := list("apps/"); !slices.Equal(keys, []string{"apps/api"}) {
		t.Errorf("List(apps/) after Delete = %q", keys)
	}
	if v, ok := h.Host.KVValue("apps/api"); !ok || string(v) != "v3" {
		t.Errorf("host holds apps/api = %q, %v; want the overwritten v3", v, ok)
	}
}

func TestLockIsExclusiveBetweenOwners(t *testing.T) {
	const name = "deploy/web/prod"
	lock := func(owner string) func(c *sdk.Context) (bool, *sdk.LockInfo, error) {
		return func(c *sdk.Context) (bool, *sdk.LockInfo, error) {
			return c.Lock(name, sdk.LockOptions{Owner: owner, Reason: "release by " + owner})
		}
	}
	unlock := func(owner string, force bool) func(c *sdk.Context) (bool, *sdk.LockInfo, error) {
		return func(c *sdk.Context) (bool, *sdk.LockInfo, error) { return c.Unlock(name, owner, force) }
	}
	steps := []struct {
		name       string
		op         func(c *sdk.Context) (bool, *sdk.LockInfo, error)
		wantOK     bool
		wantHolder string
		wantReason string
	}{
		{"alice takes the free lock", lock("alice"), true, "alice", "release by alice"},
		{"bob is refused and told alice holds it and why", lock("bob"), false, "alice", "release by alice"},
		{"alice may take her own lock again", lock("alice"), true, "alice", "release by alice"},
		{"bob cannot unlock alice's lock", unlock("bob", false), false, "alice", "release by alice"},
		{"so bob is still refused", lock("bob"), false, "alice", "release by alice"},
		{"bob can force the unlock", unlock("bob", true), true, "alice", "release by alice"},
		{"bob then takes it", lock("bob"), true, "bob", "release by bob"},
		{"alice is refused in turn", lock("alice"), false, "bob", "release by bob"},
		{"bob releases his own lock", unlock("bob", false), true, "bob", "release by bob"},
		{"releasing a free lock releases nothing", unlock("bob", false), false, "", ""},
	}
	pr, h := newProbe(t, nil)
	for _, st := range steps {
		var ok bool
		var holder *sdk.LockInfo
		pr.do(t, h, func(c *sdk.Context) (err error) {
			ok, holder, err = st.op(c)
			return err
		})
		var owner, reason string
		if holder != nil {
			owner, reason = holder.Owner, holder.Reason
		}
		if ok != st.wantOK || owner != st.wantHolder || reason != st.wantReason {
			t.Errorf("%s: got ok=%v holder=%q reason=%q; want ok=%v holder=%q reason=%q",
				st.name, ok, owner, reason, st.wantOK, st.wantHolder, st.wantReason)
		}
		if holder != nil && holder.Name != name {
			t.Errorf("%s: holder names lock %q", st.name, holder.Name)
		}
	}
}

func TestLocksListsHeldLocksByPrefix(t *testing.T) {
	pr, h := newProbe(t, nil)
	var deploys, others []*sdk.LockInfo
	pr.do(t, h, func(c *sdk.Context) (err error) {
		for _, n := range []string{"deploy/web", "deploy/api", "maintenance"} {
			if ok, _, err := c.Lock(n, sdk.LockOptions{Owner: "ci", TTL: 10 * time.Minute, JobID: 7}); err != nil || !ok {
				return fmt.Errorf("lock %s: %v %v", n, ok, err)
			}
		}
		if deploys, err = c.Locks("deploy/"); err != nil {
			return err
		}
		others, err = c.Locks("nothing/")
		return err
	})
	var names []string
	for _, l := range deploys {
		names = append(names, l.Name)
		if l.JobID != 7 || l.ExpiresAt.Before(time.Now().Add(590*time.Second)) {
			t.Errorf("lock %s: job %d expires %v; want job 7 and a ten-minute TTL", l.Name, l.JobID, l.ExpiresAt)
		}
	}
	if !slices.Equal(names, []string{"deploy/api", "deploy/web"}) {
		t.Errorf("Locks(deploy/) = %q", names)
	}
	if len(others) != 0 {
		t.Errorf("Locks(nothing/) = %v", others)
	}
}

func TestLockWithSubSecondTTLStillExpires(t *testing.T) {
	pr, h := newProbe(t, nil)
	var holder *sdk.LockInfo
	pr.do(t, h, func(c *sdk.Context) (err error) {
		_, holder, err = c.Lock("brief", sdk.LockOptions{Owner: "ci", TTL: 500 * time.Millisecond})
		return err
	})
	if holder.ExpiresAt.IsZero() {
		t.Errorf("a lock taken with TTL 500ms never expires (no ExpiresAt)")
	}
}

// deployPlugin enqueues "deploy" jobs from a command and runs them.
func deployPlugin(jobRun func(c *sdk.Context) error) *sdk.Plugin {
	return &sdk.Plugin{
		Name: "deploy",
		Commands: []sdk.Command{{
			Name: "deploy",
			Run: func(c *sdk.Context) error {
				id, err := c.Enqueue("deploy", []byte(`{"app":"`+c.Arg("app")+`"}`), sdk.EnqueueOptions{QueueKey: "deploy/" + c.Arg("app")})
				if err != nil {
					return err
				}
				return c.Reply("queued #%d by %s", id, c.RequestID())
			},
		}},
		Jobs: []sdk.JobHandler{{Kind: "deploy", Run: jobRun}},
	}
}

func TestEnqueuedJobRunsWithItsJobHandler(t *testing.T) {
	type seen struct {
		payload, kind, room string
		jobID               int64
		attempt             int
		command             bool
	}
	var mu sync.Mutex
	var runs []seen
	h := newHarness(t, deployPlugin(func(c *sdk.Context) error {
		mu.Lock()
		runs = append(runs, seen{
			payload: string(c.Job.Payload), kind: c.Job.Kind, room: c.Source().Room,
			jobID: c.Job.JobID, attempt: c.Job.Attempt, command: c.Command != nil,
		})
		mu.Unlock()
		return c.Reply("deployed %s", c.Job.Payload)
	}))

	res := h.Command("deploy", sdktest.Args{"app": "web"})
	if res.Done.Outcome != "" {
		t.Fatalf("deploy ended %v", res.Done)
	}
	var id int64
	var requestID string
	if _, err := fmt.Sscanf(res.Text(), "queued #%d by %s", &id, &requestID); err != nil {
		t.Fatalf("reply %q: %v", res.Text(), err)
	}

	enq := h.Host.Enqueued()
	if len(enq) != 1 {
		t.Fatalf("enqueued %d jobs, want 1", len(enq))
	}
	e := enq[0]
	if e.Kind != "deploy" || string(e.Payload) != `{"app":"web"}` || e.QueueKey != "deploy/web" {
		t.Errorf("enqueued %v", e)
	}
	if e.Notify.Room != "test" || e.OriginRequestID != requestID || e.Delay != 0 {
		t.Errorf("job notifies %v from %q after %v; want the command's room, request %q and no delay",
			e.Notify, e.OriginRequestID, e.Delay, requestID)
	}

	results := h.RunEnqueued()
	if len(results) != 1 {
		t.Fatalf("RunEnqueued ran %d jobs, want 1", len(results))
	}
	if d := results[0].Done; d.Outcome != "success" || d.Detail != "" {
		t.Errorf("job Done = %v, want success", d)
	}
	if got := results[0].Text(); got != `deployed {"app":"web"}` {
		t.Errorf("job replied %q", got)
	}
	mu.Lock()
	want := []seen{{payload: `{"app":"web"}`, kind: "deploy", room: "test", jobID: id, attempt: 1}}
	if !slices.Equal(runs, want) {
		t.Errorf("job handler saw %+v, want %+v", runs, want)
	}
	mu.Unlock()

	if again := h.RunEnqueued(); len(again) != 0 {
		t.Errorf("a finished job ran again: %d results", len(again))
	}
}

func TestEnqueueOptions(t *testing.T) {
	pr, h := newProbe(t, &sdk.Plugin{Name: "opts", Jobs: []sdk.JobHandler{{Kind: "later", Run: func(c *sdk.Context) error {
		return c.Reply("in %s", c.Source().Room)
	}}}})
	pr.do(t, h, func(c *sdk.Context) error {
		_, err := c.Enqueue("later", []byte{0, 1, 0xfe, 0xff}, sdk.EnqueueOptions{
			Notify: &sdk.MessageRef{Adapter: "test", Room: "ops", ThreadID: "t1"},
			Delay:  90 * time.Second,
		})
		return err
	})
	e := h.Host.Enqueued()[0]
	if e.Notify.Room != "ops" || e.Notify.ThreadID != "t1" || e.Delay != 90*time.Second {
		t.Errorf("enqueued with notify %v delay %v; want ops/t1 and 90s", e.Notify, e.Delay)
	}
	if !slices.Equal(e.Payload, []byte{0, 1, 0xfe, 0xff}) {
		t.Errorf("binary payload = %v", e.Payload)
	}
	res := h.RunEnqueued()
	if len(res) != 1 || res[0].Text() != "in ops" {
		t.Errorf("job reported %v, want in its Notify room", res)
	}
}

func TestJobOutcomes(t *testing.T) {
	tests := []struct {
		kind        string
		run         func(c *sdk.Context) error
		wantOutcome sdk.Outcome
		wantState   sdk.JobState
		wantDetail  string
		wantErrors  int
	}{
		{"succeeds", func(*sdk.Context) error { return nil }, "success", "succeeded", "", 0},
		{"fails", func(*sdk.Context) error { return errors.New("exit status 1") }, "failure", "failed", "exit status 1", 0},
		{"refuses", func(*sdk.Context) error { return sdk.Errorf("app is frozen") }, "failure", "failed", "app is frozen", 1},
	}
	p := &sdk.Plugin{Name: "jobs"}
	for _, tt := range tests {
		p.Jobs = append(p.Jobs, sdk.JobHandler{Kind: tt.kind, Run: tt.run})
	}
	pr, h := newProbe(t, p)
	ids := map[string]int64{}
	pr.do(t, h, func(c *sdk.Context) error {
		for _, tt := range tests {
			id, err := c.Enqueue(tt.kind, []byte(tt.kind), sdk.EnqueueOptions{})
			if err != nil {
				return err
			}
			ids[tt.kind] = id
		}
		return nil
	})
	results := h.RunEnqueued()
	if len(results) != len(tests) {
		t.Fatalf("RunEnqueued ran %d jobs, want %d", len(results), len(tests))
	}
	var jobs []*sdk.JobInfo
	pr.do(t, h, func(c *sdk.Context) (err error) {
		jobs, err = c.Jobs(sdk.JobFilter{})
		return err
	})
	state := map[int64]sdk.JobState{}
	for _, j := range jobs {
		state[j.ID] = j.State
	}
	for i, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			res := results[i] // oldest first
			requireDoneLast(t, res)
			if res.Done.Outcome != tt.wantOutcome || !strings.Contains(res.Done.Detail, tt.wantDetail) {
				t.Errorf("Done = %v, want outcome %q detail %q", res.Done, tt.wantOutcome, tt.wantDetail)
			}
			if len(res.Errors) != tt.wantErrors {
				t.Errorf("user errors = %v, want %d", res.Errors, tt.wantErrors)
			}
			if got := state[ids[tt.kind]]; got != tt.wantState {
				t.Errorf("job state = %q, want %q", got, tt.wantState)
			}
		})
	}
}

func TestPanickingJobEndsAsError(t *testing.T) {
	// The host tells a job's room only about ends the plugin could not report
	// itself ("error", interrupted); a panicking job reports nothing.
	pr, h := newProbe(t, &sdk.Plugin{Name: "jobs", Jobs: []sdk.JobHandler{{Kind: "crash", Run: func(*sdk.Context) error { panic("boom") }}}})
	pr.do(t, h, func(c *sdk.Context) error {
		_, err := c.Enqueue("crash", nil, sdk.EnqueueOptions{})
		return err
	})
	res := h.RunEnqueued()
	if len(res) != 1 {
		t.Fatalf("ran %d jobs", len(res))
	}
	if !strings.Contains(res[0].Done.Detail, "boom") {
		t.Errorf("detail %q does not mention the panic", res[0].Done.Detail)
	}
	if got := res[0].Done.Outcome; got != "error" {
		t.Errorf("a panicking job ended %q, want error (the plugin broke, as for a command)", got)
	}
}

func TestEnqueuedJobsRunWithTheirOwnRequestAndTheirOrigin(t *testing.T) {
	var mu sync.Mutex
	var jobRequest string
	p := &sdk.Plugin{Name: "chain", Jobs: []sdk.JobHandler{
		{Kind: "first", Run: func(c *sdk.Context) error {
			mu.Lock()
			jobRequest = c.RequestID()
			mu.Unlock()
			_, err := c.Enqueue("second", nil, sdk.EnqueueOptions{})
			return err
		}},
		{Kind: "second", Run: func(*sdk.Context) error { return nil }},
	}}
	pr, h := newProbe(t, p)
	var origin string
	pr.do(t, h, func(c *sdk.Context) error {
		origin = c.RequestID()
		_, err := c.Enqueue("first", nil, sdk.EnqueueOptions{})
		return err
	})
	var between string
	pr.do(t, h, func(c *sdk.Context) error { between = c.RequestID(); return nil }) // another command in between
	h.RunEnqueued()

	mu.Lock()
	defer mu.Unlock()
	if jobRequest == origin || jobRequest == between {
		t.Errorf("the job ran with request id %q, the id of an earlier command (%q, %q)", jobRequest, origin, between)
	}
	enq := h.Host.Enqueued()
	if len(enq) != 2 {
		t.Fatalf("enqueued %d jobs, want 2", len(enq))
	}
	if got := enq[1].OriginRequestID; got != origin {
		t.Errorf("a job enqueued by a job traces back to %q, want the original command %q", got, origin)
	}
}

func TestCancelJobCancelsOnlyQueuedJobs(t *testing.T) {
	pr, h := newProbe(t, &sdk.Plugin{Name: "cancel", Jobs: []sdk.JobHandler{{Kind: "work", Run: func(c *sdk.Context) error {
		return c.Reply("ran %s", c.Job.Payload)
	}}}})
	var keep, drop int64
	pr.do(t, h, func(c *sdk.Context) (err error) {
		if keep, err = c.Enqueue("work", []byte("keep"), sdk.EnqueueOptions{}); err != nil {
			return err
		}
		drop, err = c.Enqueue("work", []byte("drop"), sdk.EnqueueOptions{})
		return err
	})
	cancel := func(id int64) (bool, *sdk.JobInfo) {
		t.Helper()
		var ok bool
		var job *sdk.JobInfo
		pr.do(t, h, func(c *sdk.Context) (err error) {
			ok, job, err = c.CancelJob(id)
			return err
		})
		return ok, job
	}

	if ok, job := cancel(drop); !ok || job.ID != drop || job.State != "cancelled" {
		t.Errorf("cancel queued job = %v, %v; want cancelled", ok, job)
	}
	if ok, job := cancel(drop); ok || job.State != "cancelled" {
		t.Errorf("cancel it again = %v, %v; want not cancelled, still cancelled", ok, job)
	}
	results := h.RunEnqueued()
	if len(results) != 1 || results[0].Text() != "ran keep" {
		t.Fatalf("RunEnqueued = %d results (%v); want only the kept job", len(results), results)
	}
	if ok, job := cancel(keep); ok || job.State != "succeeded" {
		t.Errorf("cancel a finished job = %v, %v; want not cancelled, succeeded", ok, job)
	}
	if ok, job := cancel(9999); ok || job != nil {
		t.Errorf("cancel an unknown job = %v, %v", ok, job)
	}
}

func TestJobsListsNewestFirstFiltered(t *testing.T) {
	p := &sdk.Plugin{Name: "list", Jobs: []sdk.JobHandler{
		{Kind: "deploy", Run: func(*sdk.Context) error { return nil }},
		{Kind: "cleanup", Run: func(*sdk.Context) error { return errors.New("disk busy") }},
	}}
	pr, h := newProbe(t, p)
	var web, api, clean int64
	pr.do(t, h, func(c *sdk.Context) (err error) {
		if web, err = c.Enqueue("deploy", nil, sdk.EnqueueOptions{QueueKey: "web"}); err != nil {
			return err
		}
		if api, err = c.Enqueue("deploy", nil, sdk.EnqueueOptions{QueueKey: "api"}); err != nil {
			return err
		}
		if clean, err = c.Enqueue("cleanup", nil, sdk.EnqueueOptions{}); err != nil {
			return err
		}
		_, _, err = c.CancelJob(api)
		return err
	})
	h.RunEnqueued() // web succeeds, cleanup fails

	tests := []struct {
		name   string
		filter sdk.JobFilter
		want   []int64
	}{
		{"everything, newest first", sdk.JobFilter{}, []int64{clean, api, web}},
		{"by state", sdk.JobFilter{States: []sdk.JobState{sdk.JobFailed}}, []int64{clean}},
		{"by several states", sdk.JobFilter{States: []sdk.JobState{sdk.JobSucceeded, sdk.JobCancelled}}, []int64{api, web}},
		{"by a state no job is in", sdk.JobFilter{States: []sdk.JobState{sdk.JobRunning}}, nil},
		{"by kind", sdk.JobFilter{Kind: "deploy"}, []int64{api, web}},
		{"by queue key", sdk.JobFilter{QueueKey: "web"}, []int64{web}},
		{"with a limit", sdk.JobFilter{Limit: 2}, []int64{clean, api}},
		{"by kind and state", sdk.JobFilter{Kind: "deploy", States: []sdk.JobState{sdk.JobSucceeded}}, []int64{web}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var jobs []*sdk.JobInfo
			pr.do(t, h, func(c *sdk.Context) (err error) {
				jobs, err = c.Jobs(tt.filter)
				return err
			})
			var got []int64
			for _, j := range jobs {
				got = append(got, j.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Jobs(%+v) = %v, want %v", tt.filter, got, tt.want)
			}
		})
	}
}

func TestAppendLogAndReadLogWithOffsets(t *testing.T) {
	pr, h := newProbe(t, nil)
	var sizes []int64
	pr.do(t, h, func(c *sdk.Context) error {
		for _, chunk := range []string{"line 1\n", "line 2\n", "done\n"} {
			n, err := c.AppendLog("deploy-7", []byte(chunk))
			if err != nil {
				return err
			}
			sizes = append(sizes, n)
		}
		return nil
	})
	if !slices.Equal(sizes, []int64{7, 14, 19}) {
		t.Errorf("AppendLog sizes = %v, want the growing log size 7, 14, 19", sizes)
	}
	if got := h.Host.Log("deploy-7"); got != "line 1\nline 2\ndone\n" {
		t.Errorf("host log = %q", got)
	}

	tests := []struct {
		name          string
		log           string
		offset, limit int64
		want          string
		wantSize      int64
		wantFound     bool
	}{
		{"the whole log", "deploy-7", 0, 0, "line 1\nline 2\ndone\n", 19, true},
		{"from an offset to the end", "deploy-7", 7, 0, "line 2\ndone\n", 19, true},
		{"a window", "deploy-7", 7, 4, "line", 19, true},
		{"a limit past the end", "deploy-7", 14, 100, "done\n", 19, true},
		{"an offset at the end", "deploy-7", 19, 0, "", 19, true},
		{"an offset past the end", "deploy-7", 100, 0, "", 19, true},
		{"a negative offset reads from the start", "deploy-7", -5, 6, "line 1", 19, true},
		{"a log never written", "deploy-8", 0, 0, "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var data []byte
			var size int64
			var found bool
			pr.do(t, h, func(c *sdk.Context) (err error) {
				data, size, found, err = c.ReadLog(tt.log, tt.offset, tt.limit)
				return err
			})
			if string(data) != tt.want || size != tt.wantSize || found != tt.wantFound {
				t.Errorf("ReadLog(%s, %d, %d) = %q, %d, %v; want %q, %d, %v",
					tt.log, tt.offset, tt.limit, data, size, found, tt.want, tt.wantSize, tt.wantFound)
			}
		})
	}
}

// logPage serves a plugin log through the page's Context.
var logPage = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c := sdk.PageContext(r)
	if c == nil {
		http.Error(w, "no page context", http.StatusInternalServerError)
		return
	}
	from, _ := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
	data, size, found, err := c.ReadLog(strings.TrimPrefix(r.URL.Path, "/deploys/"), from, 0)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if !found {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Log-Size", strconv.FormatInt(size, 10))
	w.Header().Set("X-Region", c.Setting("region"))
	_, _ = w.Write(data)
})

func TestPagesServeThroughTheHost(t *testing.T) {
	pr, h := newProbe(t, &sdk.Plugin{Name: "pages", Pages: []sdk.Page{{Prefix: "/deploys/", Handler: logPage}}},
		map[string]string{"region": "eu"})
	pr.do(t, h, func(c *sdk.Context) error {
		_, err := c.AppendLog("deploy-7", []byte("line 1\nline 2\n"))
		return err
	})

	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantBody   string
		wantHeader map[string]string
	}{
		{"a page reads a log through its context", "/deploys/deploy-7", 200, "line 1\nline 2\n",
			map[string]string{"Content-Type": "text/plain; charset=utf-8", "X-Log-Size": "14", "X-Region": "eu"}},
		{"the query reaches the handler", "/deploys/deploy-7?from=7", 200, "line 2\n", nil},
		{"the handler's own not-found", "/deploys/deploy-8", 404, "404 page not found\n", nil},
		{"a path under no page is not found", "/elsewhere/deploy-7", 404, "not found\n", nil},
		{"the prefix without its slash is not under the page", "/deploys", 404, "not found\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.HTTP(tt.path)
			if resp.Status != tt.wantStatus || string(resp.Body) != tt.wantBody {
				t.Errorf("GET %s = %d %q, want %d %q", tt.path, resp.Status, resp.Body, tt.wantStatus, tt.wantBody)
			}
			for k, v := range tt.wantHeader {
				if got := resp.Headers[k]; got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestPageContextIsNilOutsidePages(t *testing.T) {
	if c := sdk.PageContext(httptest.NewRequest(http.MethodGet, "/deploys/1", nil)); c != nil {
		t.Errorf("PageContext of an ordinary request = %v, want nil", c)
	}
}

func TestPagesWithOverlappingPrefixesUseTheLongestMatch(t *testing.T) {
	// core/bot pageOwner picks the plugin by longest prefix; within the
	// plugin the SDK should agree.
	named := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(name)) })
	}
	h := newHarness(t, &sdk.Plugin{Name: "overlap", Pages: []sdk.Page{
		{Prefix: "/deploys/live/", Handler: named("live")},
		{Prefix: "/deploys/", Handler: named("all")},
	}})
	if got := string(h.HTTP("/deploys/live/7").Body); got != "live" {
		t.Errorf("/deploys/live/7 served by %q, want the /deploys/live/ page", got)
	}
	if got := string(h.HTTP("/deploys/7").Body); got != "all" {
		t.Errorf("/deploys/7 served by %q, want the /deploys/ page", got)
	}
}

func TestPanickingPageHandlerDoesNotCrashThePlugin(t *testing.T) {
	if os.Getenv("SDK_TEST_PAGE_PANIC_CHILD") == "1" {
		// In the child: a crash here ends the whole process.
		h := newHarness(t, &sdk.Plugin{
			Name:     "fragile",
			Commands: []sdk.Command{{Name: "ping", Run: func(c *sdk.Context) error { return c.Reply("pong") }}},
			Pages: []sdk.Page{{Prefix: "/boom/", Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				panic("page boom")
			})}},
		})
		resp := h.HTTP("/boom/1")
		if resp.Status < 500 {
			t.Errorf("a panicking page answered %d", resp.Status)
		}
		if res := h.Command("ping", nil); res.Text() != "pong" {
			t.Errorf("after a page panic, ping = %q", res.Text())
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPanickingPageHandlerDoesNotCrashThePlugin$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SDK_TEST_PAGE_PANIC_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("plugin process crashed on a page panic: %v\n%s", err, firstLines(string(out), 15))
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

func TestInterruptedJobDecodesTheEvent(t *testing.T) {
	// The event's payload is the job as the protocol carries it.
	payload, err := proto.Marshal(&pluginv1.JobRequest{
		JobId: 12, Kind: "deploy", Payload: []byte(`{"app":"web"}`), Attempt: 2,
		Notify: &pluginv1.MessageRef{Adapter: "slack", Room: "C1"}, OriginRequestId: "req-9",
	})
	job := &sdk.Job{
		JobID: 12, Kind: "deploy", Payload: []byte(`{"app":"web"}`), Attempt: 2,
		Notify: &sdk.MessageRef{Adapter: "slack", Room: "C1"}, OriginRequestID: "req-9",
	}
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		c       *sdk.Context
		wantErr string
	}{
		{"an interrupted-job event", &sdk.Context{Event: &sdk.Event{Type: sdk.EventJobInterrupted, Payload: payload}}, ""},
		{"another event type is refused", &sdk.Context{Event: &sdk.Event{Type: "github:deployment", Payload: payload}}, "not a " + sdk.EventJobInterrupted},
		{"a command is refused", &sdk.Context{Command: &sdk.CommandRequest{Command: "deploy"}}, "not a " + sdk.EventJobInterrupted},
		{"an undecodable payload is an error", &sdk.Context{Event: &sdk.Event{Type: sdk.EventJobInterrupted, Payload: []byte{0x0a, 0x05, 'a'}}}, "decode interrupted job"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.InterruptedJob()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("InterruptedJob() = %v, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, job) {
				t.Errorf("InterruptedJob() = %v, %v; want %v", got, err, job)
			}
		})
	}
}

func TestInterruptedJobEventReachesItsHandler(t *testing.T) {
	h := newHarness(t, &sdk.Plugin{Name: "deploy", Events: []sdk.EventHandler{{
		Type: sdk.EventJobInterrupted,
		Run: func(c *sdk.Context) error {
			j, err := c.InterruptedJob()
			if err != nil {
				return err
			}
			return c.Reply("job %d (%s) interrupted at attempt %d", j.JobID, j.Kind, j.Attempt)
		},
	}}})
	payload, err := proto.Marshal(&pluginv1.JobRequest{JobId: 3, Kind: "deploy", Attempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	res := h.Event(sdk.EventJobInterrupted, payload)
	if res.Text() != "job 3 (deploy) interrupted at attempt 1" || res.Done.Outcome != "" {
		t.Errorf("handler said %q and ended %v", res.Text(), res.Done)
	}
	if res := h.Event("github:push", nil); res.Done.Outcome != "error" {
		t.Errorf("an event type without handler ended %v, want error", res.Done)
	}
}

type ctxKey struct{}

func TestDetachedIsNotCancelledWithTheOriginal(t *testing.T) {
	parent, cancel := context.WithTimeout(context.WithValue(context.Background(), ctxKey{}, "kept"), time.Hour)
	c := &sdk.Context{Context: parent, Command: &sdk.CommandRequest{Command: "deploy"}}
	d := c.Detached()
	cancel()

	if c.Err() == nil {
		t.Fatal("the original context is not cancelled")
	}
	if err := d.Err(); err != nil {
		t.Errorf("detached context ended with the original: %v", err)
	}
	select {
	case <-d.Done():
		t.Error("detached Done channel is closed")
	default:
	}
	if _, ok := d.Deadline(); ok {
		t.Error("detached context kept the original deadline")
	}
	if d.Value(ctxKey{}) != "kept" {
		t.Error("detached context lost the original's values")
	}
	if d == c || d.Command != c.Command {
		t.Error("Detached should be a copy carrying the same request")
	}
}

func TestDetachedKeepsTheRequestAndTheHost(t *testing.T) {
	pr, h := newProbe(t, nil)
	pr.do(t, h, func(c *sdk.Context) error {
		d := c.Detached()
		if d.RequestID() != c.RequestID() || d.User() != c.User() || d.Source() != c.Source() {
			return fmt.Errorf("detached context changed the request: %q %v %v", d.RequestID(), d.User(), d.Source())
		}
		if err := d.KV().Set("outcome", []byte("recorded")); err != nil {
			return err
		}
		return d.Reply("still answering")
	})
	if v, ok := h.Host.KVValue("outcome"); !ok || string(v) != "recorded" {
		t.Errorf("host KV outcome = %q, %v", v, ok)
	}
}

// eventSink is a server-side Handle stream that records what it is sent.
type eventSink struct {
	grpc.ServerStream
	ctx    context.Context
	events []*pluginv1.Event
}

func (s *eventSink) Context() context.Context      { return s.ctx }
func (s *eventSink) Send(ev *pluginv1.Event) error { s.events = append(s.events, ev); return nil }

func TestHostCallsWithoutAHostReturnErrNoHost(t *testing.T) {
	calls := map[string]func(c *sdk.Context) error{
		"KV get":     func(c *sdk.Context) error { _, _, err := c.KV().Get("k"); return err },
		"KV set":     func(c *sdk.Context) error { return c.KV().Set("k", nil) },
		"lock":       func(c *sdk.Context) error { _, _, err := c.Lock("l", sdk.LockOptions{}); return err },
		"enqueue":    func(c *sdk.Context) error { _, err := c.Enqueue("k", nil, sdk.EnqueueOptions{}); return err },
		"append log": func(c *sdk.Context) error { _, err := c.AppendLog("l", nil); return err },
		"post":       func(c *sdk.Context) error { _, err := c.Post(c.Source(), &sdk.Output{Text: "hi"}); return err },
		"jobs":       func(c *sdk.Context) error { _, err := c.Jobs(sdk.JobFilter{}); return err },
	}
	srv := sdk.NewServer(&sdk.Plugin{Name: "offline", Commands: []sdk.Command{{Name: "try", Run: func(c *sdk.Context) error {
		var wrong []string
		for name, call := range calls {
			if err := call(c); !errors.Is(err, sdk.ErrNoHost) {
				wrong = append(wrong, fmt.Sprintf("%s: %v", name, err))
			}
		}
		if len(wrong) > 0 {
			slices.Sort(wrong)
			return errors.New(strings.Join(wrong, "; "))
		}
		return c.Reply("offline")
	}}}}, nil, nil)
	if _, err := srv.Describe(context.Background(), &pluginv1.DescribeRequest{HostServiceId: 5}); err != nil {
		t.Fatal(err)
	}
	sink := &eventSink{ctx: context.Background()}
	if err := srv.Handle(&pluginv1.CommandRequest{RequestId: "r1", Command: "try"}, sink); err != nil {
		t.Fatal(err)
	}
	if got := describeAll(sink.events); !slices.Equal(got, []string{"reply:offline", "done:"}) {
		t.Errorf("events = %q", got)
		if n := len(sink.events); n > 0 {
			t.Errorf("detail: %s", sink.events[n-1].GetDone().GetDetail())
		}
	}
}

// dialPlugin serves p through go-plugin's in-process gRPC connection, as
// sdktest does, without a host service.
func dialPlugin(t *testing.T, p *sdk.Plugin) pluginv1.PluginClient {
	t.Helper()
	client, srv := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		wire.PluginName: &wire.GRPCPlugin{Impl: func(b *plugin.GRPCBroker) pluginv1.PluginServer {
			return sdk.NewServer(p, b, nil)
		}},
	})
	// Server first, as go-plugin's own tests do: closing the client first
	// races with the server stopping itself (see newHarness).
	t.Cleanup(func() { srv.Stop(); _ = client.Close() })
	raw, err := client.Dispense(wire.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(*wire.Conn).Plugin
}

func TestMultiplexRunsCallsConcurrentlyAndCancelsOne(t *testing.T) {
	cl := dialPlugin(t, &sdk.Plugin{Name: "mux", Commands: []sdk.Command{
		{Name: "wait", Run: func(c *sdk.Context) error {
			if err := c.Reply("waiting"); err != nil {
				return err
			}
			<-c.Done()
			return c.Err()
		}},
		{Name: "echo", Run: func(c *sdk.Context) error { return c.Reply("%s", c.Arg("text")) }},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := cl.Multiplex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	command := func(id uint64, name string, args map[string]string) *pluginv1.Call {
		return &pluginv1.Call{Id: id, Kind: &pluginv1.Call_Command{Command: &pluginv1.CommandRequest{
			RequestId: "r" + strconv.FormatUint(id, 10), Command: name, Args: args,
		}}}
	}
	events := map[uint64][]string{}
	// recvUntilDone reads the stream until call id is Done.
	recvUntilDone := func(id uint64) {
		t.Helper()
		for {
			ce, err := stream.Recv()
			if err != nil {
				t.Fatalf("waiting for call %d: %v (so far %v)", id, err, events)
			}
			events[ce.GetId()] = append(events[ce.GetId()], describe(ce.GetEvent()))
			if ce.GetId() == id && ce.GetEvent().GetDone() != nil {
				return
			}
		}
	}

	for _, call := range []*pluginv1.Call{command(1, "wait", nil), command(2, "echo", map[string]string{"text": "hi"})} {
		if err := stream.Send(call); err != nil {
			t.Fatal(err)
		}
	}
	recvUntilDone(2) // the echo ends while the wait still runs
	if err := stream.Send(&pluginv1.Call{Id: 1, Kind: &pluginv1.Call_Cancel{Cancel: &pluginv1.CancelCall{}}}); err != nil {
		t.Fatal(err)
	}
	recvUntilDone(1)
	if got, want := events[2], []string{"reply:hi", "done:"}; !slices.Equal(got, want) {
		t.Errorf("echo events = %q, want %q", got, want)
	}
	if got, want := events[1], []string{"reply:waiting", "done:cancelled"}; !slices.Equal(got, want) {
		t.Errorf("cancelled wait events = %q, want %q", got, want)
	}

	// Closing the stream stops a call still running, which still ends with Done.
	if err := stream.Send(command(3, "wait", nil)); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	recvUntilDone(3)
	if got, want := events[3], []string{"reply:waiting", "done:cancelled"}; !slices.Equal(got, want) {
		t.Errorf("wait after close events = %q, want %q", got, want)
	}
}

func TestCancelForShutdownIsToldApartFromAPersonsCancel(t *testing.T) {
	cl := dialPlugin(t, &sdk.Plugin{Name: "mux", Commands: []sdk.Command{
		{Name: "wait", Run: func(c *sdk.Context) error {
			<-c.Done()
			return c.Detached().Reply("shutting down: %v", c.ShuttingDown())
		}},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := cl.Multiplex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id     uint64
		reason string
		want   string
	}{
		{1, "", "shutting down: false"},
		{2, wire.CancelReasonShutdown, "shutting down: true"},
	} {
		call := &pluginv1.Call{Id: c.id, Kind: &pluginv1.Call_Command{Command: &pluginv1.CommandRequest{RequestId: "r", Command: "wait"}}}
		if err := stream.Send(call); err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&pluginv1.Call{Id: c.id, Kind: &pluginv1.Call_Cancel{Cancel: &pluginv1.CancelCall{Reason: c.reason}}}); err != nil {
			t.Fatal(err)
		}
		ce, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if got := ce.GetEvent().GetReply().GetOutput().GetText(); got != c.want {
			t.Errorf("cancel with reason %q: handler saw %q, want %q", c.reason, got, c.want)
		}
		if _, err := stream.Recv(); err != nil { // Done
			t.Fatal(err)
		}
	}
}

// go-plugin's broker forgets the connection info of a service that nobody
// dialled within 5 s. A plugin whose first host call comes later (a command
// after the bot sat idle) must still reach the host.
func TestHostCallsWorkAfterThePluginSatIdlePastTheBrokersTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 6 s to reproduce an idle plugin")
	}
	pr, h := newProbe(t, nil)
	time.Sleep(6 * time.Second) // past the broker's 5-s hold on connection info
	pr.do(t, h, func(c *sdk.Context) error { return c.KV().Set("after-idle", []byte("yes")) })
	pr.do(t, h, func(c *sdk.Context) error {
		v, ok, err := c.KV().Get("after-idle")
		if err != nil || !ok || string(v) != "yes" {
			return fmt.Errorf("KV after idle = %q, %v, %v; want the value just set", v, ok, err)
		}
		return nil
	})
}

func TestValidateAnswersWhatThePluginCanSayOfItsSettings(t *testing.T) {
	cases := []struct {
		name        string
		plugin      *sdk.Plugin
		unchecked   bool // answers Unimplemented: "not validated"
		wantProblem string
	}{
		{"a plugin that reads no settings finds any valid", &sdk.Plugin{Name: "plain"}, false, ""},
		{"a plugin that checks only by configuring cannot say", &sdk.Plugin{Name: "strict", Configure: func(map[string]string) error { return nil }}, true, ""},
		{"a plugin with Validate reports its problems", &sdk.Plugin{Name: "checked", Validate: func(map[string]string) error {
			return &sdk.SettingsError{Problems: []sdk.Problem{{File: "apps.json", Line: 3, Key: "demo.x", Message: "unknown key"}}}
		}}, false, "unknown key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := sdk.NewServer(c.plugin, nil, nil).Validate(context.Background(), &pluginv1.ValidateRequest{})
			if c.unchecked {
				if status.Code(err) != codes.Unimplemented {
					t.Fatalf("Validate = %v, %v; want Unimplemented", resp, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got string
			if ps := resp.GetProblems(); len(ps) > 0 {
				got = ps[0].GetMessage()
			}
			if got != c.wantProblem {
				t.Fatalf("problem = %q, want %q", got, c.wantProblem)
			}
		})
	}
}
