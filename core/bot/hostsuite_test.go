package bot_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/chimaops/chima/core/bot"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
	"github.com/chimaops/chima/core/pluginhost"
	"github.com/chimaops/chima/core/policy"
	"github.com/chimaops/chima/core/router"
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/core/store/storetest"
	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/sdktest/hostsuite"
)

// TestHostServiceKeepsTheHostSuiteContract runs the Host-service suite that
// sdktest's FakeHost also passes against the bot's real Host service, on
// each store: what plugin authors test against is what the bot does.
func TestHostServiceKeepsTheHostSuiteContract(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T) *store.Store
	}{
		{"sqlite", func(t *testing.T) *store.Store {
			st, err := store.Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "chima.db"))
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
		{"postgres", func(t *testing.T) *store.Store {
			storetest.NeedServicesEnv(t, "CHIMA_TEST_POSTGRES_URL")
			st, err := store.Open(context.Background(), "postgres", storetest.PostgresSchema(t, "hostsuite"))
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
	}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			hostsuite.Run(t, suiteHost(t, s.open(t)))
		})
	}
}

// suiteHost runs a bot on st with an in-memory chat and one plugin, "suite",
// whose jobs run until they are cancelled, and returns the suite's harness
// of its Host service.
func suiteHost(t *testing.T, st *store.Store) hostsuite.Harness {
	const plugin = "suite"
	plugins := &suitePlugins{m: &pluginv1.Manifest{
		Name:     plugin,
		JobKinds: []string{hostsuite.JobKind, hostsuite.OtherJobKind},
		Actions:  []*pluginv1.ActionSpec{{Name: hostsuite.Action}},
	}}
	mem := chattest.NewMemory("mem")
	b := bot.New(bot.Options{
		Router: router.New(router.Options{Name: "chima", Prefix: "!"}), Policy: policy.NewWithPeople(nil, nil, nil),
		Plugins: plugins, Store: st, Adapters: []chat.Adapter{mem},
	})
	b.PluginChanged(plugin, plugins.m, pluginhost.StateRunning)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bot run: %v", err)
		}
		st.Close()
	})
	return hostsuite.Harness{
		Host: hostsuite.Serve(t, b.HostService(plugin)),
		Room: &sdk.MessageRef{Adapter: "mem", Room: "general"},
		Posted: func() []string {
			var out []string
			for _, s := range mem.Sent() {
				out = append(out, s.Out.Text)
			}
			return out
		},
	}
}

// suitePlugins is one running plugin whose every job runs until cancelled.
type suitePlugins struct{ m *pluginv1.Manifest }

func (p *suitePlugins) Call(ctx context.Context, _ string, call *pluginv1.Call, fn func(*pluginv1.Event)) error {
	if _, ok := call.GetKind().(*pluginv1.Call_Job); ok {
		<-ctx.Done()
		return ctx.Err()
	}
	fn(&pluginv1.Event{Kind: &pluginv1.Event_Done{Done: &pluginv1.Done{Outcome: "success"}}})
	return nil
}

func (p *suitePlugins) State(string) pluginhost.State { return pluginhost.StateRunning }

func (p *suitePlugins) PluginStatus(name string) (pluginhost.Status, bool) {
	return pluginhost.Status{Name: name, State: pluginhost.StateRunning}, name == p.m.GetName()
}

func (p *suitePlugins) Manifest(name string) *pluginv1.Manifest {
	if name != p.m.GetName() {
		return nil
	}
	return p.m
}

func (p *suitePlugins) Plugins() []string { return []string{p.m.GetName()} }

func (p *suitePlugins) HTTP(context.Context, string, *pluginv1.HTTPRequest) (*pluginv1.HTTPResponse, error) {
	return &pluginv1.HTTPResponse{Status: 404}, nil
}
