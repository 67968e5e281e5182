package bot_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chimaops/chima/core/bot"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
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
