package router

import (
	"errors"
	"strings"
	"testing"

	"github.com/chimaops/chima/sdk/pluginv1"
)

func TestSetPluginRejects(t *testing.T) {
	cmd := func(c *pluginv1.CommandSpec) *pluginv1.Manifest {
		return &pluginv1.Manifest{Commands: []*pluginv1.CommandSpec{c}}
	}
	tests := []struct {
		name     string
		plugin   string
		manifest *pluginv1.Manifest
		wantErr  error
		wantText string
	}{
		{"a name owned by another plugin", "other", cmd(&pluginv1.CommandSpec{Name: "hello"}),
			ErrConflict, `"hello" is already a command of plugin "tools"`},
		{"an alias owned by another plugin", "other", cmd(&pluginv1.CommandSpec{Name: "greet", Aliases: []string{"hi"}}),
			ErrConflict, `"hi" is already a command of plugin "tools"`},
		{"a name that is another plugin's alias", "other", cmd(&pluginv1.CommandSpec{Name: "ci"}),
			ErrConflict, `"ci" is already a command of plugin "ci"`},
		{"the built-in help", "other", cmd(&pluginv1.CommandSpec{Name: "help"}),
			ErrConflict, `"help" is a built-in command`},
		{"the built-in commands as an alias", "other", cmd(&pluginv1.CommandSpec{Name: "list", Aliases: []string{"commands"}}),
			ErrConflict, `"commands" is a built-in command`},
		{"the same name twice in one plugin", "other", &pluginv1.Manifest{Commands: []*pluginv1.CommandSpec{{Name: "a"}, {Name: "b", Aliases: []string{"a"}}}},
			ErrConflict, `"a" is declared by both "a" and "b"`},

		{"an upper-case name", "other", cmd(&pluginv1.CommandSpec{Name: "Greet"}),
			ErrInvalidManifest, `name "Greet" must be lower case`},
		{"a name with two suffixes", "other", cmd(&pluginv1.CommandSpec{Name: "a:b:c"}),
			ErrInvalidManifest, `name "a:b:c"`},
		{"an empty alias", "other", cmd(&pluginv1.CommandSpec{Name: "greet", Aliases: []string{""}}),
			ErrInvalidManifest, `alias ""`},
		{"a pattern that is not RE2", "other", cmd(&pluginv1.CommandSpec{Name: "look", Pattern: `look(?=ahead)`}),
			ErrInvalidManifest, "pattern is not valid RE2"},
		{"an unbalanced pattern that would only compile once wrapped", "other", cmd(&pluginv1.CommandSpec{Name: "x", Pattern: `a)|(?:b`}),
			ErrInvalidManifest, "pattern is not valid RE2"},
		{"a named group without an argument", "other", cmd(&pluginv1.CommandSpec{Name: "x", Pattern: `x (?P<who>\w+)`}),
			ErrInvalidManifest, `pattern group "who" has no argument of that name`},
		{"a required argument without a group", "other", cmd(&pluginv1.CommandSpec{Name: "x", Pattern: `x`,
			Args: []*pluginv1.ArgSpec{{Name: "who", Required: true}}}),
			ErrInvalidManifest, `required argument "who" has no group`},
		{"rest that is not last", "other", cmd(&pluginv1.CommandSpec{Name: "x",
			Args: []*pluginv1.ArgSpec{{Name: "a", Rest: true}, {Name: "b"}}}),
			ErrInvalidManifest, `argument "a" takes the rest of the line, so it must be the last`},
		{"enum without values", "other", cmd(&pluginv1.CommandSpec{Name: "x",
			Args: []*pluginv1.ArgSpec{{Name: "a", Type: tEnum}}}),
			ErrInvalidManifest, "an enum needs values"},
		{"enum values on a string", "other", cmd(&pluginv1.CommandSpec{Name: "x",
			Args: []*pluginv1.ArgSpec{{Name: "a", Enum: []string{"x"}}}}),
			ErrInvalidManifest, "has enum values but is not an enum"},
		{"enum value listed twice", "other", cmd(&pluginv1.CommandSpec{Name: "x",
			Args: []*pluginv1.ArgSpec{{Name: "a", Type: tEnum, Enum: []string{"live", "LIVE"}}}}),
			ErrInvalidManifest, `enum value "LIVE" is listed twice`},
		{"int default that is not a number", "other", cmd(&pluginv1.CommandSpec{Name: "x",
			Args: []*pluginv1.ArgSpec{{Name: "n", Type: tInt, Default: "many"}}}),
			ErrInvalidManifest, `default "many" is not valid: n must be a whole number`},
		{"enum default outside the values", "other", cmd(&pluginv1.CommandSpec{Name: "x",
			Args: []*pluginv1.ArgSpec{{Name: "env", Type: tEnum, Enum: []string{"live", "edge"}, Default: "prod"}}}),
			ErrInvalidManifest, `default "prod" is not valid`},
		{"duration default that does not parse", "other", cmd(&pluginv1.CommandSpec{Name: "x",
			Args: []*pluginv1.ArgSpec{{Name: "wait", Type: tDuration, Default: "5 minutes"}}}),
			ErrInvalidManifest, `default "5 minutes" is not valid`},
		{"default that fails the argument pattern", "other", cmd(&pluginv1.CommandSpec{Name: "x",
			Args: []*pluginv1.ArgSpec{{Name: "ref", Pattern: `[a-f0-9]{40}`, Default: "main"}}}),
			ErrInvalidManifest, `default "main" is not valid`},
		{"required argument with a default", "other", cmd(&pluginv1.CommandSpec{Name: "x",
			Args: []*pluginv1.ArgSpec{{Name: "a", Required: true, Default: "b"}}}),
			ErrInvalidManifest, "is required, so a default would never be used"},
		{"duplicate argument names", "other", cmd(&pluginv1.CommandSpec{Name: "x",
			Args: []*pluginv1.ArgSpec{{Name: "a"}, {Name: "a"}}}),
			ErrInvalidManifest, `argument "a" is declared twice`},
		{"required positional after an optional one", "other", cmd(&pluginv1.CommandSpec{Name: "x",
			Args: []*pluginv1.ArgSpec{{Name: "a"}, {Name: "b", Required: true}}}),
			ErrInvalidManifest, `required argument "b" follows optional argument "a"`},
		{"an argument pattern that is not RE2", "other", cmd(&pluginv1.CommandSpec{Name: "x",
			Args: []*pluginv1.ArgSpec{{Name: "a", Pattern: `(`}}}),
			ErrInvalidManifest, "pattern is not valid RE2"},
		{"an argument name with spaces", "other", cmd(&pluginv1.CommandSpec{Name: "x",
			Args: []*pluginv1.ArgSpec{{Name: "my arg"}}}),
			ErrInvalidManifest, "name must be letters, digits and _"},
		{"an unknown argument type", "other", cmd(&pluginv1.CommandSpec{Name: "x",
			Args: []*pluginv1.ArgSpec{{Name: "a", Type: 42}}}),
			ErrInvalidManifest, "unknown type 42"},
		{"a nil command", "other", &pluginv1.Manifest{Commands: []*pluginv1.CommandSpec{nil}},
			ErrInvalidManifest, "command 0 is nil"},
		{"a nil manifest", "other", nil, ErrInvalidManifest, "no manifest"},
		{"an empty plugin name", "", &pluginv1.Manifest{}, ErrInvalidManifest, "empty plugin name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRouter(t)
			before := r.Commands()
			err := r.SetPlugin(tt.plugin, tt.manifest)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("SetPlugin() error = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("SetPlugin() error = %q, want it to mention %q", err, tt.wantText)
			}
			if after := r.Commands(); len(after) != len(before) {
				t.Errorf("a rejected plugin changed the commands: %d before, %d after", len(before), len(after))
			}
		})
	}
}

func TestSetPluginReportsEveryProblem(t *testing.T) {
	r := New(Options{})
	err := r.SetPlugin("bad", &pluginv1.Manifest{Commands: []*pluginv1.CommandSpec{
		{Name: "Bad"},
		{Name: "x", Args: []*pluginv1.ArgSpec{{Name: "a", Type: tEnum}}},
	}})
	for _, s := range []string{`name "Bad"`, "an enum needs values"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("SetPlugin() error = %v, want it to mention %q", err, s)
		}
	}
}

func TestSetPluginReplacesAndRemoves(t *testing.T) {
	r := newTestRouter(t)

	// A plugin may rename its own commands and take over its own aliases.
	m := toolsManifest()
	m.Commands[0].Name, m.Commands[0].Aliases = "hi", []string{"hello", "hey"}
	if err := r.SetPlugin("tools", m); err != nil {
		t.Fatalf("replacing tools: %v", err)
	}
	checkResult(t, "hey", r.Parse("hey"), want{kind: Matched, plugin: "tools", command: "hi", args: map[string]string{"name": "world"}})

	// A rejected replacement keeps the previous version.
	bad := toolsManifest()
	bad.Commands[0].Name = "Hi"
	if err := r.SetPlugin("tools", bad); err == nil {
		t.Fatal("SetPlugin accepted an upper-case name")
	}
	checkResult(t, "hey", r.Parse("hey"), want{kind: Matched, plugin: "tools", command: "hi", args: map[string]string{"name": "world"}})

	// Once a plugin is removed, its names are free again.
	r.RemovePlugin("tools")
	r.RemovePlugin("never-registered")
	checkResult(t, "hey", r.Parse("hey"), want{kind: Unknown, problem: `I don't know the command "hey"`})
	if err := r.SetPlugin("other", &pluginv1.Manifest{Commands: []*pluginv1.CommandSpec{{Name: "hello"}}}); err != nil {
		t.Fatalf("taking a removed plugin's name: %v", err)
	}
}

func TestSetPluginCopiesTheManifest(t *testing.T) {
	r := New(Options{})
	m := &pluginv1.Manifest{Commands: []*pluginv1.CommandSpec{{Name: "hello", Args: []*pluginv1.ArgSpec{{Name: "who", Default: "world"}}}}}
	if err := r.SetPlugin("p", m); err != nil {
		t.Fatal(err)
	}
	m.Commands[0].Name = "changed"
	m.Commands[0].Args[0].Default = "changed"
	checkResult(t, "hello", r.Parse("hello"), want{kind: Matched, plugin: "p", command: "hello", args: map[string]string{"who": "world"}})
}

func TestCommandsAreSortedByName(t *testing.T) {
	r := newTestRouter(t)
	var names []string
	for _, e := range r.Commands() {
		names = append(names, e.Plugin+"/"+e.Spec.GetName())
	}
	want := "ci/ci-status deploy/deploy deploy/deploy:lock deploy/deploy:unlock tools/echo tools/hello tools/login tools/note ci/ping tools/scale"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("Commands() = %s\nwant        %s", got, want)
	}
	// The slice is the caller's own.
	r.Commands()[0] = Entry{}
	if r.Commands()[0].Plugin != "ci" {
		t.Error("changing the slice returned by Commands changed the router")
	}
}
