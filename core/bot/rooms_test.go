package bot_test

import (
	"context"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chimaops/chima/core/bot"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
	"github.com/chimaops/chima/core/config"
	"github.com/chimaops/chima/core/policy"
	"github.com/chimaops/chima/core/router"
	"github.com/chimaops/chima/sdk/pluginv1"
)

func TestABareRoomReachesTheAdapterItMeans(t *testing.T) {
	tests := []struct {
		name     string
		adapters []string
		def      string
		want     string // adapter that hears it; "" for none
	}{
		{"the only adapter", []string{"shell"}, "", "shell"},
		{"the default adapter of several", []string{"mattermost", "slack"}, "slack", "slack"},
		{"none of several without a default", []string{"mattermost", "slack"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mems := map[string]*chattest.Memory{}
			var adapters []chat.Adapter
			for _, n := range tt.adapters {
				mems[n] = chattest.NewMemory(n)
				adapters = append(adapters, mems[n])
			}
			b := bot.New(bot.Options{Plugins: &eventPlugins{}, Adapters: adapters, DefaultAdapter: tt.def})
			_, err := b.HostService("deploy").Post(context.Background(), &pluginv1.PostRequest{
				Target: &pluginv1.MessageRef{Room: "deployment"},
				Output: &pluginv1.Output{Text: "Deployed demo/main to edge"},
			})
			if tt.want == "" {
				if status.Code(err) != codes.NotFound {
					t.Fatalf("post to a room no adapter is meant for: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for n, m := range mems {
				sent := m.Sent()
				if got := len(sent) == 1 && sent[0].Ref.Room == "deployment"; got != (n == tt.want) {
					t.Fatalf("adapter %s heard %+v", n, sent)
				}
			}
		})
	}
}

// slackish is an in-memory adapter with a directory, as Slack has: rooms are
// ids ("C024BE91L") that have names ("deployment"). lookups counts the
// directory's answers.
type slackish struct {
	*chattest.Memory
	rooms   map[string]string // id → name
	lookups atomic.Int32
}

func newSlackish(name string) *slackish {
	return &slackish{Memory: chattest.NewMemory(name), rooms: map[string]string{"C024BE91L": "deployment", "C0GENERAL": "general"}}
}

func (s *slackish) LookupRoom(_ context.Context, nameOrID string) (chat.Room, error) {
	s.lookups.Add(1)
	for id, name := range s.rooms {
		if nameOrID == id || nameOrID == name {
			return chat.Room{ID: id, Name: name}, nil
		}
	}
	return chat.Room{}, chat.ErrUnknownRoom
}

func (s *slackish) LookupUser(context.Context, string) (chat.User, error) {
	return chat.User{}, chat.ErrUnknownUser
}

var _ chat.Directory = (*slackish)(nil)

// callPlugins is one running plugin, "deploy", that records the calls it
// gets and answers each with done.
type callPlugins struct {
	eventPlugins
	calls []*pluginv1.Call
}

func (f *callPlugins) Call(_ context.Context, _ string, c *pluginv1.Call, fn func(*pluginv1.Event)) error {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	fn(&pluginv1.Event{Kind: &pluginv1.Event_Done{Done: &pluginv1.Done{}}})
	return nil
}

func TestAPolicyNamingARoomAllowsItByItsId(t *testing.T) {
	tests := []struct {
		name     string
		room     string
		allowed  bool
		wantName string // the room's name the plugin is told
	}{
		{"the room named in the policy, by its id", "C024BE91L", true, "deployment"},
		{"another room, by its id", "C0GENERAL", false, ""},
		{"a room the directory does not know", "C0NEW", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slack := newSlackish("slack")
			plugins := &callPlugins{eventPlugins: eventPlugins{answer: map[string]string{"deploy": "ok"}}}
			rt := router.New(router.Options{Name: "chima"})
			if err := rt.SetPlugin("deploy", &pluginv1.Manifest{Commands: []*pluginv1.CommandSpec{{Name: "deploy"}}}); err != nil {
				t.Fatal(err)
			}
			pol := policy.New(nil, []config.Policy{{Command: "deploy", AllowedRooms: []string{"slack:deployment"}}})
			b := bot.New(bot.Options{Router: rt, Policy: pol, Plugins: plugins, Adapters: []chat.Adapter{slack}})
			res, ok := b.Process(context.Background(), chat.Message{
				Ref:  chat.MessageRef{Adapter: "slack", Room: tt.room, MessageID: "1700000000.0001"},
				User: chat.User{ID: "U1"}, Text: "chima deploy",
			})
			if !ok {
				t.Fatal("not addressed")
			}
			if got := res.Outcome == "ok"; got != tt.allowed {
				t.Fatalf("outcome %s, want allowed=%v; said %+v", res.Outcome, tt.allowed, slack.Sent())
			}
			if !tt.allowed {
				return
			}
			msg := plugins.calls[0].GetCommand().GetMessage()
			if msg.GetRoom() != tt.room || msg.GetRoomName() != tt.wantName {
				t.Fatalf("the plugin got room %q named %q, want %q named %q", msg.GetRoom(), msg.GetRoomName(), tt.room, tt.wantName)
			}
		})
	}
}

func TestAPostToANamedRoomReachesItsId(t *testing.T) {
	tests := []struct {
		name     string
		target   *pluginv1.MessageRef
		wantRoom string // where it was sent; "" when refused
	}{
		{"a room by name", &pluginv1.MessageRef{Adapter: "slack", Room: "deployment"}, "C024BE91L"},
		{"a room by name with a hash", &pluginv1.MessageRef{Adapter: "slack", Room: "#deployment"}, "C024BE91L"},
		{"a room by id", &pluginv1.MessageRef{Adapter: "slack", Room: "C0GENERAL"}, "C0GENERAL"},
		{"a bare room on the default adapter", &pluginv1.MessageRef{Room: "deployment"}, "C024BE91L"},
		{"a room the service does not have", &pluginv1.MessageRef{Adapter: "slack", Room: "nope"}, ""},
		{"an adapter without a directory keeps the room as given", &pluginv1.MessageRef{Adapter: "shell", Room: "deployment"}, "deployment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slack, sh := newSlackish("slack"), chattest.NewMemory("shell")
			b := bot.New(bot.Options{Plugins: &eventPlugins{}, Adapters: []chat.Adapter{slack, sh}, DefaultAdapter: "slack"})
			_, err := b.HostService("deploy").Post(context.Background(), &pluginv1.PostRequest{
				Target: tt.target, Output: &pluginv1.Output{Text: "Deployed demo/main to edge"},
			})
			sent := append(slack.Sent(), sh.Sent()...)
			if tt.wantRoom == "" {
				if status.Code(err) != codes.NotFound || len(sent) != 0 {
					t.Fatalf("post to an unknown room: %v, sent %+v", err, sent)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(sent) != 1 || sent[0].Ref.Room != tt.wantRoom {
				t.Fatalf("sent %+v, want one message to %s", sent, tt.wantRoom)
			}
		})
	}
}

func TestRoomLookupsAreCached(t *testing.T) {
	slack := newSlackish("slack")
	b := bot.New(bot.Options{Plugins: &eventPlugins{}, Adapters: []chat.Adapter{slack}})
	for range 5 {
		if _, err := b.HostService("deploy").Post(context.Background(), &pluginv1.PostRequest{
			Target: &pluginv1.MessageRef{Adapter: "slack", Room: "deployment"}, Output: &pluginv1.Output{Text: "hi"},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if n := slack.lookups.Load(); n != 1 {
		t.Fatalf("5 posts to one room looked it up %d times, want once", n)
	}
}
