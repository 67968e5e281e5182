package slack_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/chimaops/chima/adapters/slack"
	"github.com/chimaops/chima/core/chat"
)

// setup builds a chat.Setup as cmd/chima does: the entry's keys decoded
// strictly, secrets from env.
func setup(entry string, env map[string]string, asked *[]string) chat.Setup {
	return chat.Setup{
		Name: "ops-slack",
		Decode: func(v any) error {
			dec := yaml.NewDecoder(bytes.NewBufferString(entry))
			dec.KnownFields(true)
			return dec.Decode(v)
		},
		Secret: func(name string) (string, error) {
			*asked = append(*asked, name)
			if env[name] == "" {
				return "", fmt.Errorf("environment variable %s is empty", name)
			}
			return env[name], nil
		},
		BotName: "chima",
		Logger:  quiet,
	}
}

func TestFactory(t *testing.T) {
	env := map[string]string{"SLACK_BOT_TOKEN": botToken, "SLACK_APP_TOKEN": appToken, "SLACK_SIGNING_SECRET": signingSecret,
		"USER_TOKEN": "xoxp-a-user-token", "BOT_AS_APP": "xoxb-x"}
	cases := []struct {
		name, entry string
		wantErr     string // "" builds
		routes      int
		asked       string
	}{
		{"socket mode", "bot_token_env: SLACK_BOT_TOKEN\napp_token_env: SLACK_APP_TOKEN\n", "", 0, "SLACK_BOT_TOKEN,SLACK_APP_TOKEN"},
		{"events API", "bot_token_env: SLACK_BOT_TOKEN\nsigning_secret_env: SLACK_SIGNING_SECRET\napi_url: http://127.0.0.1:1/api\nslash_command: /ops\n", "", 3,
			"SLACK_BOT_TOKEN,SLACK_SIGNING_SECRET"},
		{"both", "bot_token_env: SLACK_BOT_TOKEN\napp_token_env: SLACK_APP_TOKEN\nsigning_secret_env: SLACK_SIGNING_SECRET\n", "", 3, ""},
		{"no bot token", "app_token_env: SLACK_APP_TOKEN\n", "bot_token_env is required", 0, ""},
		{"neither way in", "bot_token_env: SLACK_BOT_TOKEN\n", "app_token_env (Socket Mode) or signing_secret_env", 0, ""},
		{"an empty variable", "bot_token_env: NOT_SET\napp_token_env: SLACK_APP_TOKEN\n", "NOT_SET", 0, ""},
		{"a user token for the bot", "bot_token_env: USER_TOKEN\napp_token_env: SLACK_APP_TOKEN\n", "xoxb-", 0, ""},
		{"a bot token for the app", "bot_token_env: SLACK_BOT_TOKEN\napp_token_env: BOT_AS_APP\n", "xapp-", 0, ""},
		{"an api_url that is no URL", "bot_token_env: SLACK_BOT_TOKEN\napp_token_env: SLACK_APP_TOKEN\napi_url: slack.com\n", "api_url", 0, ""},
		{"an unknown key", "bot_token_env: SLACK_BOT_TOKEN\napp_token_env: SLACK_APP_TOKEN\nbot_token: xoxb-inline\n", "bot_token", 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var asked []string
			a, err := slack.Factory(setup(tc.entry, env, &asked))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Factory: %v, want an error saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Factory: %v", err)
			}
			if a.Name() != "ops-slack" {
				t.Errorf("Name() = %q", a.Name())
			}
			if n := len(a.(chat.RouteProvider).Routes()); n != tc.routes {
				t.Errorf("%d routes, want %d", n, tc.routes)
			}
			if tc.asked != "" && strings.Join(asked, ",") != tc.asked {
				t.Errorf("secrets asked for: %v, want %s", asked, tc.asked)
			}
		})
	}
}

// The factory touches no network: an adapter built against an address
// where nothing listens builds, and only Run finds out.
func TestFactoryTouchesNoNetwork(t *testing.T) {
	var asked []string
	a, err := slack.Factory(setup("bot_token_env: B\napp_token_env: A\napi_url: http://127.0.0.1:1/\n", map[string]string{"B": botToken, "A": appToken}, &asked))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx, chat.HandlerFunc(func(context.Context, chat.Message) {})); err != nil {
		t.Errorf("Run with a cancelled ctx: %v", err)
	}
}
