package main

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
	"github.com/chimaops/chima/core/config"
	"github.com/chimaops/chima/core/redact"
)

// fakeOptions are the keys of the test adapter type "fake".
type fakeOptions struct {
	TokenEnv string `yaml:"token_env"`
	Rooms    int    `yaml:"rooms"`
}

// routed is an adapter that serves one HTTP route.
type routed struct {
	*chattest.Memory
	routes []chat.Route
}

func (r routed) Routes() []chat.Route { return r.routes }

// withFakeType registers adapter type "fake" for one test: it reads the
// secret named by token_env and logs that it was built.
func withFakeType(t *testing.T) {
	t.Helper()
	adapterTypes["fake"] = func(s chat.Setup) (chat.Adapter, error) {
		var o fakeOptions
		if err := s.Decode(&o); err != nil {
			return nil, err
		}
		if o.Rooms < 0 {
			return nil, &chat.OptionError{Key: "rooms", Err: errors.New("must be 0 or more")}
		}
		if o.TokenEnv != "" {
			tok, err := s.Secret(o.TokenEnv)
			if err != nil {
				return nil, err
			}
			s.Logger.Info("built with token " + tok)
		}
		return chattest.NewMemory(s.Name), nil
	}
	t.Cleanup(func() { delete(adapterTypes, "fake") })
}

func parseConfig(t *testing.T, adapters string) *config.Config {
	t.Helper()
	c, err := config.ParseWithOptions([]byte("bot: {name: chima}\nadapters:\n"+adapters), "chima.yaml", "", config.ParseOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEveryConfiguredAdapterIsBuiltByItsTypesFactory(t *testing.T) {
	withFakeType(t)
	t.Setenv("FAKE_TOKEN", "tok-3f9a7c")
	c := parseConfig(t, "  - {name: console, type: shell, room: ops, user: alice}\n  - {name: one, type: fake, token_env: FAKE_TOKEN}\n  - {name: two, type: fake}\n")
	late := newLateHandler()
	built, err := buildAdapters(c, slog.New(late), false)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range built.list {
		names = append(names, a.Name())
	}
	if strings.Join(names, ",") != "console,one,two" {
		t.Fatalf("built %v", names)
	}
	if built.console == nil || built.console.Name() != "console" {
		t.Fatalf("the shell adapter is not the console: %+v", built.console)
	}
	if len(built.secrets) != 1 || built.secrets[0] != "tok-3f9a7c" {
		t.Fatalf("secrets for the redactor: %q", built.secrets)
	}
	// The adapters' logger masks what they read, once the redactor is set.
	var logs bytes.Buffer
	late.Set(redact.New(built.secrets...).Handler(slog.NewTextHandler(&logs, nil)))
	slog.New(late).With("adapter", "one").Info("token tok-3f9a7c")
	if s := logs.String(); strings.Contains(s, "tok-3f9a7c") || !strings.Contains(s, "adapter=one") {
		t.Fatalf("adapter log: %s", s)
	}
}

func TestAdapterProblemsNameTheirKey(t *testing.T) {
	withFakeType(t)
	t.Setenv("FAKE_EMPTY", "")
	tests := []struct {
		name, adapters, want string
	}{
		{"unknown type lists the known ones", "  - {name: irc, type: irc}\n",
			`chima.yaml:3: adapters[0].type: "irc" is not an adapter type of this Chima; types: fake, mattermost, shell, slack, webhook`},
		{"unknown key", "  - {name: one, type: fake, tokn_env: X}\n",
			`chima.yaml:3: adapters[0].tokn_env: unknown key (did you mean "token_env"?)`},
		{"wrong type", "  - name: one\n    type: fake\n    rooms: many\n",
			`chima.yaml:5: adapters[0].rooms: expected a whole number, got "many"`},
		{"a factory's own check", "  - name: one\n    type: fake\n    rooms: -1\n",
			`chima.yaml:5: adapters[0].rooms: must be 0 or more`},
		{"an empty secret names its variable and key", "  - {name: console, type: shell}\n  - name: one\n    type: fake\n    token_env: FAKE_EMPTY\n",
			`chima.yaml:6: adapters[1].token_env: environment variable FAKE_EMPTY is empty; it must hold the adapter's secret`},
		{"a shell entry's bad user", "  - {name: console, type: shell, user: 'a b'}\n",
			`chima.yaml:3: adapters[0].user: a user id without spaces is required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildAdapters(parseConfig(t, tt.adapters), slog.New(slog.DiscardHandler), false)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

func TestRoutesNeedTheHTTPServer(t *testing.T) {
	ok := func(*http.Request, []byte) error { return nil }
	adapters := []chat.Adapter{
		chattest.NewMemory("console"),
		routed{Memory: chattest.NewMemory("slack"), routes: []chat.Route{{Method: "POST", Path: "events", Verify: ok, Handler: http.NotFoundHandler()}}},
		routed{Memory: chattest.NewMemory("quiet")}, // a RouteProvider with nothing to serve now
	}
	if _, err := adapterRoutes(adapters, ""); err == nil || !strings.Contains(err.Error(), "adapter slack") || !strings.Contains(err.Error(), "http.addr") {
		t.Fatalf("routes without http.addr: %v", err)
	}
	rs, err := adapterRoutes(adapters, "127.0.0.1:0")
	if err != nil || len(rs) != 1 || rs[0].adapter != "slack" {
		t.Fatalf("routes %+v, %v", rs, err)
	}
	if _, err := adapterRoutes(adapters[2:], ""); err != nil {
		t.Fatalf("an adapter with no routes needs no server: %v", err)
	}
}
