package shell

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/chimaops/chima/core/chat"
)

// setup is what cmd/chima hands the factory for an entry whose other keys
// are opts.
func setup(name, opts string) chat.Setup {
	return chat.Setup{
		Name:    name,
		BotName: "robot",
		Decode: func(v any) error {
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(opts), &n); err != nil {
				return err
			}
			if len(n.Content) == 0 {
				return nil
			}
			return n.Content[0].Decode(v)
		},
		Secret: func(env string) (string, error) { return "", errors.New("no secrets here") },
	}
}

func TestTheFactoryBuildsAConsoleNamedAsConfigured(t *testing.T) {
	tests := []struct {
		name, opts       string
		user             string // $USER
		wantRoom, wantAs string
	}{
		{"room and user from the entry", "{room: ops, user: alice}", "carol", "ops", "alice"},
		{"defaults: general, and $USER", "", "carol", DefaultRoom, "carol"},
		{"without $USER the user is you", "{room: ops}", "", "ops", DefaultUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("USER", tt.user)
			a, err := Factory(setup("console", tt.opts))
			if err != nil {
				t.Fatal(err)
			}
			sh := a.(*Adapter)
			if a.Name() != "console" || a.Self().ID != "robot" {
				t.Fatalf("Name() = %q, Self() = %+v", a.Name(), a.Self())
			}
			if sh.room != tt.wantRoom || sh.user != tt.wantAs {
				t.Fatalf("starts in %q as %q, want %q as %q", sh.room, sh.user, tt.wantRoom, tt.wantAs)
			}
		})
	}
}

func TestTheFactoryNamesTheBadKey(t *testing.T) {
	tests := []struct{ opts, key string }{
		{"{room: '  '}", "room"},
		{"{user: 'alice smith'}", "user"},
	}
	for _, tt := range tests {
		_, err := Factory(setup("console", tt.opts))
		var oe *chat.OptionError
		if !errors.As(err, &oe) || oe.Key != tt.key {
			t.Errorf("%s: error %v, want an OptionError for %s", tt.opts, err, tt.key)
		}
	}
	if _, err := Factory(setup("console", "{room: [a, b]}")); err == nil {
		t.Error("a list for room was accepted")
	}
}

func TestMessagesCarryTheConfiguredName(t *testing.T) {
	a := New(Options{Name: "console", In: strings.NewReader("hello\n"), Out: io.Discard})
	var got chat.MessageRef
	if err := a.Run(t.Context(), chat.HandlerFunc(func(_ context.Context, m chat.Message) { got = m.Ref })); err != nil {
		t.Fatal(err)
	}
	if got.Adapter != "console" {
		t.Fatalf("message ref %+v, want adapter console", got)
	}
	ref, err := a.Send(t.Context(), chat.MessageRef{Room: "general"}, chat.Text("hi"))
	if err != nil || ref.Adapter != "console" {
		t.Fatalf("Send ref %+v, %v", ref, err)
	}
}
