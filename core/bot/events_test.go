package bot_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chimaops/chima/core/bot"
	"github.com/chimaops/chima/core/events"
	"github.com/chimaops/chima/core/pluginhost"
	"github.com/chimaops/chima/core/redact"
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

// eventPlugins is a Plugins whose plugins answer calls as told: "ok",
// "refuse" (an error outcome), "usererr" (a user error), "leaky" (a user
// error with a secret in it) or "down" (the call fails as for a plugin that
// is not running). It records every call.
type eventPlugins struct {
	mu        sync.Mutex
	answer    map[string]string
	manifests map[string]*pluginv1.Manifest
	calls     []*pluginv1.Call
}

func (f *eventPlugins) Call(_ context.Context, plugin string, call *pluginv1.Call, fn func(*pluginv1.Event)) error {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	a := f.answer[plugin]
	f.mu.Unlock()
	switch a {
	case "down":
		return pluginhost.ErrUnavailable
	case "refuse":
		fn(&pluginv1.Event{Kind: &pluginv1.Event_Done{Done: &pluginv1.Done{Outcome: "error", Detail: "decode deployment event: unexpected end of JSON input"}}})
	case "leaky":
		fn(&pluginv1.Event{Kind: &pluginv1.Event_Error{Error: &pluginv1.UserError{Summary: "token ghp_S3CRETVALUE refused"}}})
	case "usererr":
		fn(&pluginv1.Event{Kind: &pluginv1.Event_Error{Error: &pluginv1.UserError{Summary: "no such app"}}})
		fn(&pluginv1.Event{Kind: &pluginv1.Event_Done{Done: &pluginv1.Done{Outcome: "failure", Detail: "no such app"}}})
	default:
		fn(&pluginv1.Event{Kind: &pluginv1.Event_Done{Done: &pluginv1.Done{}}})
	}
	return nil
}

func (f *eventPlugins) State(string) pluginhost.State { return pluginhost.StateRunning }
func (f *eventPlugins) PluginStatus(p string) (pluginhost.Status, bool) {
	return pluginhost.Status{Name: p, State: pluginhost.StateRunning}, true
}

func (f *eventPlugins) Manifest(p string) *pluginv1.Manifest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.manifests[p]
}

func (f *eventPlugins) Plugins() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(func(yield func(string) bool) {
		for p := range f.answer {
			if !yield(p) {
				return
			}
		}
	})
}

func (f *eventPlugins) HTTP(context.Context, string, *pluginv1.HTTPRequest) (*pluginv1.HTTPResponse, error) {
	return nil, errors.New("no pages")
}

func TestDeliverEventSaysWhetherThePluginTookIt(t *testing.T) {
	tests := []struct {
		name    string
		answer  string
		refused bool // the error is a refusal
		failed  bool // some error at all
	}{
		{"a plugin that answers done took it", "ok", false, false},
		{"a plugin's error outcome is a refusal", "refuse", true, true},
		{"a plugin's user error is a refusal", "usererr", true, true},
		{"a plugin that cannot be asked failed, without refusing", "down", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &eventPlugins{answer: map[string]string{"a": tt.answer}}
			b := bot.New(bot.Options{Plugins: f})
			err := b.DeliverEvent(context.Background(), "a", &pluginv1.WebhookEvent{Type: "github:deployment", DeliveryId: "d1", Attempt: 2})
			var refused *events.RefusedError
			if (err != nil) != tt.failed || errors.As(err, &refused) != tt.refused {
				t.Fatalf("err %v; want failed=%v refused=%v", err, tt.failed, tt.refused)
			}
			ev := f.calls[0].GetEvent()
			if ev.GetAttempt() != 2 || ev.GetRequestId() == "" {
				t.Fatalf("the plugin got %v, want attempt 2 and a request id", ev)
			}
		})
	}
}

// A refusal's reason goes to the store, `chima events` and the audit log:
// a secret value a plugin put in it is masked like everything else Chima
// writes.
func TestARefusalOfAWebhookMasksSecretValues(t *testing.T) {
	f := &eventPlugins{answer: map[string]string{"a": "leaky"}}
	b := bot.New(bot.Options{Plugins: f, Redactor: redact.New("ghp_S3CRETVALUE")})
	err := b.DeliverEvent(context.Background(), "a", &pluginv1.WebhookEvent{Type: "github:deployment", DeliveryId: "d1"})
	var refused *events.RefusedError
	if !errors.As(err, &refused) || strings.Contains(refused.Reason, "S3CRET") || !strings.Contains(refused.Reason, "refused") {
		t.Fatalf("refusal = %v, want its reason with the secret masked", err)
	}
}

func TestSubscribersAreFoundByTypeOrSourceAndByTheLastManifestWhileAPluginRestarts(t *testing.T) {
	f := &eventPlugins{answer: map[string]string{"deploy": "ok", "ci": "ok", "other": "ok"},
		manifests: map[string]*pluginv1.Manifest{
			"deploy": {Events: []string{"github:deployment"}},
			"ci":     {Events: []string{"github:*"}},
			"other":  {Events: []string{"generic:build"}},
		}}
	b := bot.New(bot.Options{Plugins: f})
	if got := b.Subscribers("github:deployment"); !slices.Equal(got, []string{"ci", "deploy"}) {
		t.Fatalf("subscribers = %v", got)
	}
	// deploy crashed: no manifest while it restarts.
	f.mu.Lock()
	f.manifests["deploy"] = nil
	f.mu.Unlock()
	if got := b.Subscribers("github:deployment"); !slices.Equal(got, []string{"ci", "deploy"}) {
		t.Fatalf("subscribers while deploy restarts = %v, want it still there", got)
	}
	if got := b.Subscribers("github:push"); !slices.Equal(got, []string{"ci"}) {
		t.Fatalf("subscribers of push = %v", got)
	}
}

// TestAnInterruptedJobIsToldByTheLifecycleCallOrTheOldEvent checks which
// call a plugin gets for its job that was running when the bot died: the
// JobInterrupted call when its manifest says it has it, else the old event
// when it subscribed to that, else nothing.
func TestAnInterruptedJobIsToldByTheLifecycleCallOrTheOldEvent(t *testing.T) {
	tests := []struct {
		name     string
		manifest *pluginv1.Manifest
		want     string // "call", "event" or ""
	}{
		{"a plugin of minor 7 with the capability", &pluginv1.Manifest{ProtocolMinor: 7, Capabilities: []string{wire.CapabilityJobInterrupted}, Events: []string{wire.EventJobInterrupted}}, "call"},
		{"an older plugin that subscribed to the event", &pluginv1.Manifest{ProtocolMinor: 6, Capabilities: []string{wire.CapabilityJobInterrupted}, Events: []string{wire.EventJobInterrupted}}, "event"},
		{"a plugin that asked for neither", &pluginv1.Manifest{ProtocolMinor: 7}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.Open(ctx, "sqlite", filepath.Join(t.TempDir(), "chima.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			id, err := st.EnqueueJob(ctx, store.Job{Plugin: "p", Kind: "deploy", Payload: []byte("7")})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.ClaimJob(ctx, "w", time.Now(), nil); err != nil {
				t.Fatal(err)
			}
			f := &eventPlugins{answer: map[string]string{"p": "ok"}, manifests: map[string]*pluginv1.Manifest{"p": tt.manifest}}
			b := bot.New(bot.Options{Plugins: f, Store: st})
			b.RecoverInterruptedJobs(ctx)
			var got string
			for _, c := range f.calls {
				switch k := c.GetKind().(type) {
				case *pluginv1.Call_JobInterrupted:
					if k.JobInterrupted.GetJob().GetJobId() != id || string(k.JobInterrupted.GetJob().GetPayload()) != "7" ||
						k.JobInterrupted.GetReason() == "" || k.JobInterrupted.GetInterruptedUnix() == 0 {
						t.Fatalf("call = %v", k.JobInterrupted)
					}
					got += "call"
				case *pluginv1.Call_Event:
					if k.Event.GetType() != wire.EventJobInterrupted {
						t.Fatalf("event = %v", k.Event)
					}
					got += "event"
				}
			}
			if got != tt.want {
				t.Fatalf("the plugin got %q, want %q", got, tt.want)
			}
		})
	}
}

// eventLog reads the "<delivery> <attempt>" lines crashy appended for each
// github:push it took.
func eventLog(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(string(b), " ", "@"))
}

// waitHanding waits until the handing of delivery id to plugin is in state.
func waitHanding(t *testing.T, st *store.Store, id, plugin string, state store.EventState) store.EventDelivery {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := st.ListEventDeliveries(context.Background(), store.EventFilter{Plugin: plugin})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range list {
			if e.DeliveryID == id && e.State == state {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the handing of %s to %s never became %s: %+v", id, plugin, state, list)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func receive(t *testing.T, tb *testBot, id, payload string) store.Receipt {
	t.Helper()
	rc, err := tb.bot.Events().Receive(context.Background(), store.Delivery{Source: "github", ID: id, Event: "push", Payload: []byte(payload)})
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// Two real plugin processes subscribe to github:push: crashy refuses every
// event, crashy2 takes it. crashy2 is handed it once; crashy is retried up
// to the cap and ends failed, in the store, the metrics and the audit log.
func TestAPluginThatRefusesIsRetriedThenFailsWhileTheOtherTakesItOnce(t *testing.T) {
	dir := t.TempDir()
	m := bot.NewMetrics()
	tb := startBot(t, botOptions{
		plugins: []string{"crashy"}, copies: map[string]string{"crashy2": "crashy"}, metrics: m,
		settings: map[string]map[string]any{
			"crashy":  {"events_fail": "yes"},
			"crashy2": {"events_log": filepath.Join(dir, "crashy2.log"), "events_only": "yes"},
		},
		eventRetry: store.Retry{MaxAttempts: 3, Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond},
	})
	if rc := receive(t, tb, "d1", `{"ref":"main"}`); !rc.New || !slices.Equal(rc.Queued, []string{"crashy", "crashy2"}) {
		t.Fatalf("receipt = %+v", rc)
	}
	failed := waitHanding(t, tb.store, "d1", "crashy", store.EventFailed)
	if failed.Attempts != 3 || !strings.Contains(failed.LastError, "refused on purpose") {
		t.Fatalf("crashy's handing = %+v, want failed after 3 attempts, saying why", failed)
	}
	waitHanding(t, tb.store, "d1", "crashy2", store.EventHandled)
	if got := eventLog(t, filepath.Join(dir, "crashy2.log")); !slices.Equal(got, []string{"d1@1"}) {
		t.Fatalf("crashy2 took %v, want d1 once, at attempt 1", got)
	}
	d, err := tb.store.GetDelivery(context.Background(), "github", "d1")
	if err != nil || d.State != store.DeliveryFailed || !slices.Equal(d.HandledBy, []string{"crashy2"}) {
		t.Fatalf("delivery = %+v, %v", d, err)
	}
	for outcome, want := range map[string]float64{"retrying": 2, "failed": 1} {
		if got := testutil.ToFloat64(m.EventDeliveries.WithLabelValues("crashy", outcome)); got != want {
			t.Errorf("chima_event_deliveries_total{plugin=crashy,outcome=%s} = %v, want %v", outcome, got, want)
		}
	}
	if got := testutil.ToFloat64(m.EventDeliveries.WithLabelValues("crashy2", "handled")); got != 1 {
		t.Errorf("crashy2 handled = %v, want 1", got)
	}
	// A redelivery is not handed again to crashy2; it re-arms crashy.
	if rc := receive(t, tb, "d1", `{"ref":"main"}`); !slices.Equal(rc.Queued, []string{"crashy"}) {
		t.Fatalf("redelivery receipt = %+v, want crashy queued again", rc)
	}
	waitHanding(t, tb.store, "d1", "crashy", store.EventFailed)
	tb.stop() // flushes the audit log
	st, err := store.Open(context.Background(), "sqlite", tb.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	entries, err := st.AuditWhere(context.Background(), store.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, e := range slices.Backward(entries) {
		if e.Via == "webhook github:d1" {
			outcomes = append(outcomes, e.Plugin+" "+e.Outcome)
		}
	}
	slices.Sort(outcomes)
	want := []string{"crashy failed", "crashy failed", "crashy retrying", "crashy retrying", "crashy retrying", "crashy retrying", "crashy2 ok"}
	if !slices.Equal(outcomes, want) {
		t.Fatalf("audit of the delivery = %v, want %v", outcomes, want)
	}
}

// A delivery that arrives while its plugin is down waits for it, losing no
// attempt, and is handed to it as soon as it is back.
func TestAnEventForAPluginThatIsDownIsDeliveredOnceItIsBack(t *testing.T) {
	dir := t.TempDir()
	down := filepath.Join(dir, "down")
	log := filepath.Join(dir, "crashy.log")
	tb := startBot(t, botOptions{
		plugins:  []string{"crashy"},
		settings: map[string]map[string]any{"crashy": {"events_log": log, "down_while": down}},
	})
	if err := os.WriteFile(down, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st, _ := tb.host.PluginStatus("crashy")
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for tb.host.State("crashy") != pluginhost.StateFailed {
		if time.Now().After(deadline) {
			t.Fatalf("crashy never went down: %s", tb.host.State("crashy"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rc := receive(t, tb, "while-down", `{}`); !slices.Equal(rc.Queued, []string{"crashy"}) {
		t.Fatalf("a delivery for a plugin that is down was queued for %v", rc.Queued)
	}
	time.Sleep(200 * time.Millisecond) // a dispatcher that ignored the state would try now
	if e := waitHanding(t, tb.store, "while-down", "crashy", store.EventPending); e.Attempts != 0 {
		t.Fatalf("the handing lost %d attempts while the plugin was down", e.Attempts)
	}
	if err := os.Remove(down); err != nil {
		t.Fatal(err)
	}
	waitHanding(t, tb.store, "while-down", "crashy", store.EventHandled)
	if got := eventLog(t, log); !slices.Equal(got, []string{"while-down@1"}) {
		t.Fatalf("crashy took %v, want the delivery once, at attempt 1", got)
	}
}
