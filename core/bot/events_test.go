package bot_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chimaops/chima/core/bot"
	"github.com/chimaops/chima/core/pluginhost"
	"github.com/chimaops/chima/core/redact"
	"github.com/chimaops/chima/core/webhook"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// eventPlugins is a Plugins whose plugins answer events as told: "ok",
// "refuse" (an error outcome), "usererr" (a user error), or "down" (the
// call fails as for a plugin that is not running).
type eventPlugins struct {
	mu        sync.Mutex
	answer    map[string]string
	manifests map[string]*pluginv1.Manifest
	asked     []string
}

func (f *eventPlugins) Call(_ context.Context, plugin string, _ *pluginv1.Call, fn func(*pluginv1.Event)) error {
	f.mu.Lock()
	f.asked = append(f.asked, plugin)
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
	var out []string
	for p := range f.answer {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (f *eventPlugins) HTTP(context.Context, string, *pluginv1.HTTPRequest) (*pluginv1.HTTPResponse, error) {
	return nil, errors.New("no pages")
}

func TestWebhookEventHandledOnlyByThePluginsThatTookIt(t *testing.T) {
	deployment := &pluginv1.Manifest{Events: []string{"github:deployment"}}
	tests := []struct {
		name    string
		answer  map[string]string
		done    []string
		handled []string
		asked   []string
		refused bool // the error is a refusal
		failed  bool // some error at all
	}{
		{"every subscriber took it", map[string]string{"a": "ok", "b": "ok"}, nil, []string{"a", "b"}, []string{"a", "b"}, false, false},
		{"a plugin's error outcome is a refusal", map[string]string{"a": "ok", "b": "refuse"}, nil, []string{"a"}, []string{"a", "b"}, true, true},
		{"a plugin's user error is a refusal", map[string]string{"a": "usererr"}, nil, nil, []string{"a"}, true, true},
		{"a plugin that cannot be asked failed", map[string]string{"a": "down", "b": "ok"}, nil, []string{"b"}, []string{"a", "b"}, false, true},
		{"plugins that took it already are not asked again", map[string]string{"a": "ok", "b": "ok"}, []string{"a"}, []string{"b"}, []string{"b"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &eventPlugins{answer: tt.answer, manifests: map[string]*pluginv1.Manifest{}}
			for p := range tt.answer {
				f.manifests[p] = deployment
			}
			b := bot.New(bot.Options{Plugins: f})
			handled, err := b.DispatchEvent(context.Background(), &pluginv1.WebhookEvent{Type: "github:deployment", DeliveryId: "d1"}, tt.done)
			var refused *webhook.RefusedError
			if !slices.Equal(handled, tt.handled) || (err != nil) != tt.failed || errors.As(err, &refused) != tt.refused {
				t.Fatalf("handled %v, err %v; want %v, failed=%v refused=%v", handled, err, tt.handled, tt.failed, tt.refused)
			}
			if !slices.Equal(f.asked, tt.asked) {
				t.Fatalf("asked %v, want %v", f.asked, tt.asked)
			}
		})
	}
}

// A refusal's reason goes to GitHub's delivery page and the store: a secret
// value a plugin put in it is masked like everything else Chima writes.
func TestARefusalOfAWebhookMasksSecretValues(t *testing.T) {
	f := &eventPlugins{answer: map[string]string{"a": "leaky"},
		manifests: map[string]*pluginv1.Manifest{"a": {Events: []string{"github:deployment"}}}}
	b := bot.New(bot.Options{Plugins: f, Redactor: redact.New("ghp_S3CRETVALUE")})
	_, err := b.DispatchEvent(context.Background(), &pluginv1.WebhookEvent{Type: "github:deployment", DeliveryId: "d1"}, nil)
	var refused *webhook.RefusedError
	if !errors.As(err, &refused) || strings.Contains(refused.Reason, "S3CRET") || !strings.Contains(refused.Reason, "refused") {
		t.Fatalf("refusal = %v, want its reason with the secret masked", err)
	}
}

func TestAPluginRestartingWhenAnEventArrivesIsStillAsked(t *testing.T) {
	f := &eventPlugins{answer: map[string]string{"deploy": "ok"},
		manifests: map[string]*pluginv1.Manifest{"deploy": {Events: []string{"github:*"}}}}
	b := bot.New(bot.Options{Plugins: f})
	ev := &pluginv1.WebhookEvent{Type: "github:deployment", DeliveryId: "d1"}
	if handled, err := b.DispatchEvent(context.Background(), ev, nil); err != nil || len(handled) != 1 {
		t.Fatalf("running plugin: %v %v", handled, err)
	}
	// It crashed: no manifest while it restarts, and the call fails.
	f.mu.Lock()
	f.manifests["deploy"], f.answer["deploy"] = nil, "down"
	f.mu.Unlock()
	handled, err := b.DispatchEvent(context.Background(), ev, nil)
	if err == nil || len(handled) != 0 {
		t.Fatalf("an event reaching a restarting subscriber was taken as handled: %v %v", handled, err)
	}
}
