package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// skipFiles parses without looking at the file system, as unit tests have no
// plugin binaries.
var skipFiles = ParseOptions{SkipFileChecks: true}

// valid is a minimal valid config; cases append to it or replace parts.
const valid = `bot:
  name: chima
adapters:
  - name: shell
    type: shell
plugins:
  - name: hello
    path: bin/hello
`

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := ParseWithOptions([]byte(src), "chima.yaml", "/etc/chima", skipFiles)
	if err != nil {
		t.Fatalf("parse failed:\n%v", err)
	}
	return c
}

// problems parses src and returns its problems rendered, failing when it parses.
func problems(t *testing.T, src string) []string {
	t.Helper()
	c, err := ParseWithOptions([]byte(src), "chima.yaml", "/etc/chima", skipFiles)
	if err == nil {
		t.Fatalf("parse succeeded, want problems; got %+v", c)
	}
	if c != nil {
		t.Errorf("got a Config along with the error; nothing may start half-configured")
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error is %T, want *ValidationError: %v", err, err)
	}
	var out []string
	for _, p := range ve.Problems {
		out = append(out, p.String())
	}
	if got := strings.Join(out, "\n"); got != err.Error() {
		t.Errorf("Error() = %q, want the problems one per line %q", err.Error(), got)
	}
	return out
}

func TestExampleConfigLoads(t *testing.T) {
	data, err := os.ReadFile("../../examples/config/chima.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base := "/repo/examples/config"
	c, err := ParseWithOptions(data, "chima.yaml", base, skipFiles)
	if err != nil {
		t.Fatalf("example config does not parse:\n%v", err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"bot name", c.Bot.Name, "chima"},
		{"prefix", c.Bot.Prefix, "!"},
		{"command timeout", c.Bot.CommandTimeout, 30 * time.Second},
		{"adapters", c.AdapterNames(), []string{"console"}},
		{"console type", c.Adapters[0].Type, "shell"},
		{"store driver", c.Store.Driver, "sqlite"},
		{"store path resolved beside the config", c.Store.Path, "/repo/bin/chima.db"},
		{"http addr", c.HTTP.Addr, "127.0.0.1:8080"},
		{"plugin count", len(c.Plugins), 4},
		{"cistatus plugin", c.Plugins[2].Name, "cistatus"},
		{"backup plugin", c.Plugins[3].Name, "backup"},
		{"plugin name", c.Plugins[0].Name, "hello"},
		{"deploy plugin", c.Plugins[1].Name, "deploy"},
		{"deploy apps file", c.Plugins[1].Settings["apps_file"], "apps.json"},
		{"ci-status plugin", c.Plugins[2].Name, "cistatus"},
		{"ci-status apps file", c.Plugins[2].Settings["apps_file"], "apps.json"},
		{"plugin path resolved beside the config", c.Plugins[0].Path, "/repo/bin/plugins/hello"},
		{"admin", c.Roles["admin"], Role{Users: []string{"console:alice"}, Permissions: []string{"*"}}},
		{"deployer", c.Roles["deployer"], Role{Users: []string{"console:bob"}, Permissions: []string{"deploy", "deploy:*"}}},
		{"policies", c.Policies, []Policy{{Command: "deploy", AllowedRooms: []string{"general", "deployment"}}}},
		{"release managers approve", c.Roles["release-managers"], Role{People: []string{"bob"}}},
		{"people", c.People, map[string][]string{"alice": {"console:alice"}, "bob": {"console:bob"}}},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.what, ch.got, ch.want)
		}
	}
}

func TestLoadChecksPluginExecutables(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bin", "hello"), "#!/bin/sh\n", 0o755)
	writeFile(t, filepath.Join(dir, "bin", "readme"), "text\n", 0o644)
	if err := os.MkdirAll(filepath.Join(dir, "bin", "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("#!/bin/sh\n"))
	pin := hex.EncodeToString(sum[:])

	tests := []struct {
		name    string
		plugins string
		want    []string // problems; none means Load succeeds
	}{
		{"an executable file is accepted", "  - {name: hello, path: bin/hello}\n", nil},
		{"a matching sha256 pin is accepted", "  - {name: hello, path: bin/hello, sha256: " + strings.ToUpper(pin) + "}\n", nil},
		{"a disabled plugin needs no binary", "  - {name: nope, path: bin/nope, disabled: true}\n", nil},
		{"a missing file is named as written", "  - {name: hello, path: bin/hello}\n  - {name: nope, path: bin/nope}\n",
			[]string{"chima.yaml:12: plugins[1].path: file not found: bin/nope"}},
		{"a file without the executable bit is refused", "  - {name: readme, path: bin/readme}\n",
			[]string{"chima.yaml:11: plugins[0].path: bin/readme is not executable (chmod +x it)"}},
		{"a directory is refused", "  - {name: adir, path: bin/adir}\n",
			[]string{"chima.yaml:11: plugins[0].path: bin/adir is a directory, not an executable"}},
		{"a wrong sha256 pin is refused", "  - {name: hello, path: bin/hello, sha256: " + strings.Repeat("0", 64) + "}\n",
			[]string{"chima.yaml:11: plugins[0].sha256: bin/hello does not match the pin: its sha256 is " + pin}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "chima.yaml")
			src := "# test config\nbot:\n  name: chima\nstore:\n  path: state/chima.db\nadapters:\n  - name: shell\n    type: shell\n\nplugins:\n" + tt.plugins
			writeFile(t, path, src, 0o644)
			c, err := Load(path)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Load failed:\n%v", err)
				}
				if want := filepath.Join(dir, "state", "chima.db"); c.Store.Path != want {
					t.Errorf("store path = %q, want %q", c.Store.Path, want)
				}
				if !filepath.IsAbs(c.Plugins[0].Path) || !strings.HasPrefix(c.Plugins[0].Path, dir) {
					t.Errorf("plugin path %q is not resolved against %s", c.Plugins[0].Path, dir)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load succeeded, want %q", tt.want)
			}
			got := strings.Split(strings.ReplaceAll(err.Error(), path, "chima.yaml"), "\n")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestLoadReportsAMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want one wrapping os.ErrNotExist", err)
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultsAreAppliedToAbsentKeys(t *testing.T) {
	t.Setenv("USER", "carol")
	c := mustParse(t, valid)
	checks := []struct {
		what      string
		got, want any
	}{
		{"command timeout", c.Bot.CommandTimeout, DefaultCommandTimeout},
		{"max concurrency", c.Bot.MaxConcurrency, DefaultMaxConcurrency},
		{"max message bytes", c.Bot.MaxMessageBytes, DefaultMaxMessageBytes},
		{"no prefix", c.Bot.Prefix, ""},
		{"store driver", c.Store.Driver, "sqlite"},
		{"store path beside the config", c.Store.Path, "/etc/chima/chima.db"},
		{"http disabled", c.HTTP, HTTPConfig{}},
		{"plugin path resolved", c.Plugins[0].Path, "/etc/chima/bin/hello"},
		{"max restarts", c.Plugins[0].MaxRestarts, DefaultMaxRestarts},
		{"restart window", c.Plugins[0].RestartWindow, DefaultRestartWindow},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.what, ch.got, ch.want)
		}
	}
}

func TestDefaultsDoNotOverrideExplicitValues(t *testing.T) {
	tests := []struct {
		name string
		src  string
		get  func(*Config) any
		want any
	}{
		{"max_restarts 0 means never restart", valid + "    max_restarts: 0\n", func(c *Config) any { return c.Plugins[0].MaxRestarts }, 0},
		{"auto_mtls true still loads", valid + "    auto_mtls: true\n", func(c *Config) any { return c.Plugins[0].Name }, "hello"},
		{"null keys count as absent", strings.Replace(valid, "  name: chima\n", "  name: chima\n  command_timeout:\n", 1),
			func(c *Config) any { return c.Bot.CommandTimeout }, DefaultCommandTimeout},
		{"durations parse", strings.Replace(valid, "  name: chima\n", "  name: chima\n  command_timeout: 1m30s\n", 1),
			func(c *Config) any { return c.Bot.CommandTimeout }, 90 * time.Second},
		{"base_url derives from addr", valid + "http: {addr: '127.0.0.1:9090'}\n", func(c *Config) any { return c.HTTP.BaseURL }, "http://127.0.0.1:9090"},
		{"base_url from a wildcard addr uses localhost", valid + "http: {addr: ':9090'}\n", func(c *Config) any { return c.HTTP.BaseURL }, "http://localhost:9090"},
		{"base_url loses its trailing slash", valid + "http: {addr: ':80', base_url: 'https://chima.example.com/'}\n", func(c *Config) any { return c.HTTP.BaseURL }, "https://chima.example.com"},
		{"absolute paths stay", strings.Replace(valid, "bin/hello", "/opt/hello", 1), func(c *Config) any { return c.Plugins[0].Path }, "/opt/hello"},
		{"sqlite in memory is not a path", valid + "store: {path: ':memory:'}\n", func(c *Config) any { return c.Store.Path }, ":memory:"},
		{"postgres has no sqlite path", valid + "store: {driver: postgres, dsn_env: CHIMA_DSN}\n", func(c *Config) any { return c.Store }, StoreConfig{Driver: "postgres", DSNEnv: "CHIMA_DSN"}},
		{"merge keys are honoured", valid + "    <<: &common {max_restarts: 2, args: [-v]}\n  - {<<: *common, name: two, path: two}\n",
			func(c *Config) any { return [2]any{c.Plugins[1].MaxRestarts, c.Plugins[1].Args} }, [2]any{2, []string{"-v"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("USER", "")
			if got := tt.get(mustParse(t, tt.src)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestEveryProblemIsListedWithLineAndKey(t *testing.T) {
	src := `bot:
  nmae: chima
  command_timeout: soon
adapters:
  - {name: shell, type: shell}
enironments: [live]
plugins:
  - name: hello
    path: bin/hello
  - name: hello
    path: bin/other
roles:
  admin:
    users: [alice]
    permissions: ["*"]
`
	want := []string{
		`chima.yaml:2: bot.nmae: unknown key (did you mean "name"?)`,
		`chima.yaml:3: bot.command_timeout: invalid duration "soon" (write it like 30s, 5m or 1h30m)`,
		`chima.yaml:6: enironments: unknown key`,
		`chima.yaml:10: plugins[1].name: duplicate plugin name "hello" (first used at line 8)`,
		`chima.yaml:14: roles.admin.users[0]: "alice": users are written adapter:userid, like shell:alice or slack:U024BE7LH`,
	}
	got := problems(t, src)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestFourMistakesMakeFourProblems(t *testing.T) {
	src := `bot:
  name: Chima Bot
  max_concurrency: lots
adapters: [{name: shell, type: shell}]
plugins:
  - {name: hello, path: bin/hello, restart_window: 10}
policies:
  - {command: deploy, allowed_rooms: [irc:ops]}
`
	got := problems(t, src)
	want := []string{
		`chima.yaml:2: bot.name: "Chima Bot": use lowercase letters, digits, '-' and '_' only`,
		`chima.yaml:3: bot.max_concurrency: expected a whole number, got "lots"`,
		`chima.yaml:6: plugins[0].restart_window: duration 10 needs a unit, like 10s or 10m`,
		`chima.yaml:8: policies[0].allowed_rooms[0]: "irc:ops": no adapter named "irc" is configured (write room or adapter:room; adapters: shell)`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestEachMistakeIsReportedOnce checks one mistake at a time: each must give
// exactly the one problem shown.
func TestEachMistakeIsReportedOnce(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"unknown top-level key", valid + "enironments: [live]\n",
			`chima.yaml:9: enironments: unknown key`},
		{"unknown nested key with suggestion", strings.Replace(valid, "    path:", "    paht:", 1),
			`chima.yaml:8: plugins[0].paht: unknown key (did you mean "path"?)`},
		{"the old mapping form of adapters", strings.Replace(valid, "  - name: shell\n    type: shell\n", "  shell: {enabled: true, room: ops}\n", 1) + "roles:\n  admin: {users: ['shell:alice']}\n",
			`chima.yaml:4: adapters: is a list now, one entry per adapter with a name and a type (the old form adapters: {shell: {enabled: true}} is gone); write instead: adapters: [{name: shell, type: shell, room: ops}]`},
		{"adapter without a name", strings.Replace(valid, "  - name: shell\n", "  - room: x\n", 1),
			`chima.yaml:4: adapters[0].name: required: the adapter's name, used in rooms (name:room) and users (name:userid), like console or slack`},
		{"adapter without a type", strings.Replace(valid, "    type: shell\n", "", 1),
			`chima.yaml:4: adapters[0].type: required: the kind of chat service, like shell, slack, mattermost or webhook`},
		{"adapter name with an underscore", strings.Replace(valid, "name: shell", "name: my_shell", 1),
			`chima.yaml:4: adapters[0].name: "my_shell": start with a lowercase letter, then use lowercase letters, digits and '-' only`},
		{"adapter name starting with a digit", strings.Replace(valid, "name: shell", "name: 2shell", 1),
			`chima.yaml:4: adapters[0].name: "2shell": start with a lowercase letter, then use lowercase letters, digits and '-' only`},
		{"two adapters of one name", strings.Replace(valid, "    type: shell\n", "    type: shell\n  - {name: shell, type: slack}\n", 1),
			`chima.yaml:6: adapters[1].name: duplicate adapter name "shell" (first used at line 4)`},
		{"adapters that is not a list", strings.Replace(valid, "adapters:\n  - name: shell\n    type: shell\n", "adapters: shell\n", 1),
			`chima.yaml:3: adapters: expected a list, got "shell"`},
		{"an adapter entry that is not a mapping", strings.Replace(valid, "  - name: shell\n    type: shell\n", "  - shell\n", 1),
			`chima.yaml:4: adapters[0]: expected a mapping with a name and a type, like {name: console, type: shell}, got "shell"`},
		{"bot name missing", strings.Replace(valid, "  name: chima\n", "  prefix: '!'\n", 1),
			`chima.yaml:1: bot.name: required: the name people address the bot by, like chima`},
		{"bad duration", valid + "    restart_window: 1 minute\n",
			`chima.yaml:9: plugins[0].restart_window: invalid duration "1 minute" (write it like 30s, 5m or 1h30m)`},
		{"negative duration", strings.Replace(valid, "  name: chima\n", "  name: chima\n  command_timeout: -5s\n", 1),
			`chima.yaml:3: bot.command_timeout: must be more than 0, got -5s`},
		{"duplicate plugin names", valid + "  - name: hello\n    path: bin/hello2\n",
			`chima.yaml:9: plugins[1].name: duplicate plugin name "hello" (first used at line 7)`},
		{"plugin without path", valid + "  - name: bye\n",
			`chima.yaml:9: plugins[1].path: required: the plugin executable`},
		{"bad plugin name", strings.Replace(valid, "name: hello", "name: Hello World", 1),
			`chima.yaml:7: plugins[0].name: "Hello World": use lowercase letters, digits, '-' and '_' only`},
		{"user without adapter", valid + "roles:\n  admin:\n    users: [alice]\n",
			`chima.yaml:11: roles.admin.users[0]: "alice": users are written adapter:userid, like shell:alice or slack:U024BE7LH`},
		{"user of unknown adapter", valid + "roles:\n  admin:\n    users: ['irc:alice']\n",
			`chima.yaml:11: roles.admin.users[0]: "irc:alice": no adapter named "irc" is configured (adapters: shell)`},
		{"bad permission wildcard", valid + "roles:\n  admin:\n    permissions: ['deploy*']\n",
			`chima.yaml:11: roles.admin.permissions[0]: "deploy*": a permission is a name like deploy or deploy:lock, a wildcard like deploy:*, or "*"`},
		{"wildcard in a policy permission", valid + "policies:\n  - {command: deploy, permission: 'deploy:*'}\n",
			`chima.yaml:10: policies[0].permission: "deploy:*": a permission is a name like deploy or deploy:lock (no wildcards here)`},
		{"policy for an unknown plugin", valid + "policies:\n  - command: helo/greet\n",
			`chima.yaml:10: policies[0].command: "helo/greet": no plugin named "helo" is configured`},
		{"two policies for one command", valid + "policies:\n  - command: deploy\n  - command: deploy\n",
			`chima.yaml:11: policies[1].command: another policy for "deploy" with the same when is at line 10; merge them, or narrow one with when`},
		{"two policies for one command with the same when", valid + "policies:\n  - {command: deploy, when: {env: [b, a]}}\n  - {command: deploy, when: {env: [a, b]}}\n",
			`chima.yaml:11: policies[1].command: another policy for "deploy" with the same when is at line 10; merge them, or narrow one with when`},
		{"a when with no values", valid + "policies:\n  - {command: deploy, when: {env: []}}\n",
			`chima.yaml:10: policies[0].when.env: list the values of env the policy applies to, like [production]`},
		{"an approval without approvers", valid + "policies:\n  - {command: deploy, approval: {count: 1}}\n",
			`chima.yaml:10: policies[0].approval.approvers: required: the roles or people who may approve, like [release-managers]`},
		{"an approver that is no role or person", valid + "roles:\n  ops: {users: ['shell:bob']}\npolicies:\n  - command: deploy\n    approval: {approvers: [ops, release-managers]}\n",
			`chima.yaml:13: policies[0].approval.approvers[1]: "release-managers": no role or person of that name (roles: ops; people: none)`},
		{"an approval count of 0", valid + "people:\n  bob: ['shell:bob']\npolicies:\n  - command: deploy\n    approval: {approvers: [bob], count: 0}\n",
			`chima.yaml:13: policies[0].approval.count: 0: how many people must approve is 1 or more (leave it out for 1)`},
		{"a bad approval ttl", valid + "people:\n  bob: ['shell:bob']\npolicies:\n  - command: deploy\n    approval: {approvers: [bob], ttl: soon}\n",
			`chima.yaml:13: policies[0].approval.ttl: invalid duration "soon" (write it like 30s, 5m or 1h30m)`},
		{"a negative approval ttl", valid + "people:\n  bob: ['shell:bob']\npolicies:\n  - command: deploy\n    approval: {approvers: [bob], ttl: -1m}\n",
			`chima.yaml:13: policies[0].approval.ttl: -1m0s: how long a request stays open must be positive, like 30m`},
		{"bare ! prefix", strings.Replace(valid, "  name: chima\n", "  name: chima\n  prefix: !\n", 1),
			`chima.yaml:3: bot.prefix: is empty; a bare ! starts a YAML tag, so quote it: prefix: "!"`},
		{"prefix too long", strings.Replace(valid, "  name: chima\n", "  name: chima\n  prefix: '!!!!'\n", 1),
			`chima.yaml:3: bot.prefix: "!!!!": at most 3 characters`},
		{"prefix with letters", strings.Replace(valid, "  name: chima\n", "  name: chima\n  prefix: 'c!'\n", 1),
			`chima.yaml:3: bot.prefix: "c!": a prefix is made of symbols like ! or . (no letters, digits or spaces)`},
		{"no adapter configured", strings.Replace(valid, "adapters:\n  - name: shell\n    type: shell\n", "adapters: []\n", 1),
			`chima.yaml:3: adapters: no chat adapter is configured; add one, e.g. adapters: [{name: console, type: shell}]`},
		{"postgres without dsn_env", valid + "store: {driver: postgres}\n",
			`chima.yaml:9: store.dsn_env: required for driver postgres: the name of the environment variable holding the DSN`},
		{"a DSN where its variable name goes", valid + "store: {driver: postgres, dsn_env: 'postgres://u:p@h/db'}\n",
			`chima.yaml:9: store.dsn_env: is not an upper-case environment variable name; name the variable holding the DSN (like CHIMA_DSN), the DSN itself never goes in the file`},
		{"unknown store driver", valid + "store: {driver: mysql}\n",
			`chima.yaml:9: store.driver: "mysql": must be sqlite or postgres`},
		{"http addr without port", valid + "http: {addr: localhost}\n",
			`chima.yaml:9: http.addr: "localhost": must be host:port, like 127.0.0.1:8080 or :8080`},
		{"secret value instead of variable name", valid + "    secrets: {TOKEN: 'ghp_abc123'}\n",
			`chima.yaml:9: plugins[0].secrets.TOKEN: is not an upper-case environment variable name; name the host variable holding the secret (like CHIMA_TOKEN), the secret itself never goes in the file`},
		{"a variable set twice", valid + "    env: {HOME: /tmp}\n    pass_env: [HOME]\n",
			`chima.yaml:10: plugins[0].pass_env[0]: HOME is already set by plugins[0].env.HOME`},
		{"handshake variables are reserved", valid + "    env: {PLUGIN_MIN_PORT: '1'}\n",
			`chima.yaml:9: plugins[0].env.PLUGIN_MIN_PORT: PLUGIN_MIN_PORT is reserved for the plugin handshake`},
		{"bad sha256", valid + "    sha256: abc\n",
			`chima.yaml:9: plugins[0].sha256: must be 64 hex digits (the output of sha256sum)`},
		{"auto_mtls off", valid + "    auto_mtls: false\n",
			`chima.yaml:9: plugins[0].auto_mtls: false is no longer supported: every plugin connection uses go-plugin's automatic mutual TLS, ` +
				`which the Go SDK and the Python one (sdk/python) speak; remove the key`},
		{"wrong type", valid + "    args: -v\n",
			`chima.yaml:9: plugins[0].args: expected a list, got "-v"`},
		{"mapping where a string goes", strings.Replace(valid, "name: chima", "name: {first: chima}", 1),
			`chima.yaml:2: bot.name: expected a string, got a mapping`},
		{"duplicate key", strings.Replace(valid, "  name: chima\n", "  name: chima\n  name: other\n", 1),
			`chima.yaml:3: bot.name: duplicate key (first set at line 2)`},
		{"syntax error", valid + "    args: x: y\n",
			`chima.yaml:9: invalid YAML: mapping values are not allowed in this context`},
		{"two documents", valid + "---\nbot: {name: other}\n",
			`chima.yaml:9: only one YAML document is allowed (remove the second ---)`},
		{"not a mapping", "- bot\n",
			`chima.yaml:1: expected a mapping of keys (bot:, plugins:, …) at the top level, got a list`},
		{"default adapter that is not one", strings.Replace(valid, "  name: chima\n", "  name: chima\n  default_adapter: irc\n", 1),
			`chima.yaml:3: bot.default_adapter: "irc" is not the name of a configured adapter; adapters: shell`},
		{"self-referencing merge", valid + "roles:\n  admin: &a {<<: *a}\n",
			`chima.yaml:10: roles.admin: merge refers to a mapping that contains it`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, tt.src)
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("problems:\n%s\nwant exactly:\n%s", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}

func TestAnEmptyFileListsWhatIsRequired(t *testing.T) {
	for _, src := range []string{"", "# nothing yet\n", "---\n"} {
		got := problems(t, src)
		want := []string{
			"chima.yaml: bot.name: required: the name people address the bot by, like chima",
			"chima.yaml: adapters: no chat adapter is configured; add one, e.g. adapters: [{name: console, type: shell}]",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: problems:\n%s\nwant:\n%s", src, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

func TestValidateWorksOnConfigsBuiltInCode(t *testing.T) {
	c := &Config{
		Bot:      BotConfig{Name: "chima", CommandTimeout: time.Second, MaxConcurrency: 1, MaxMessageBytes: 100},
		Adapters: []AdapterConfig{{Name: "console", Type: "shell"}},
		Store:    StoreConfig{Driver: DriverSQLite, Path: "x.db"},
		Plugins:  []PluginConfig{{Name: "a", Path: "/a", RestartWindow: time.Minute}},
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	c.Plugins = append(c.Plugins, PluginConfig{Name: "a", Path: "/b"})
	err := c.Validate()
	want := "plugins[1].name: duplicate plugin name \"a\" (first used at plugins[0].name)\n" +
		"plugins[1].restart_window: must be more than 0, got 0s"
	if err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want %q", err, want)
	}
}

func TestEnviron(t *testing.T) {
	host := map[string]string{
		"PATH":               "/usr/bin:/bin",
		"HOME":               "/home/alice",
		"AWS_SECRET":         "host-only-secret",
		"CHIMA_GITHUB_TOKEN": "ghp_s3cr3t",
		"CHIMA_EMPTY":        "",
	}
	lookup := func(k string) (string, bool) { v, ok := host[k]; return v, ok }

	tests := []struct {
		name        string
		plugin      PluginConfig
		wantEnv     []string
		wantSecrets []string
		wantErr     string
	}{
		{"only PATH reaches a plugin that asks for nothing",
			PluginConfig{Name: "p"}, []string{"PATH=/usr/bin:/bin"}, nil, ""},
		{"literals, passed-through variables and secrets, in that order",
			PluginConfig{
				Name:    "p",
				Env:     map[string]string{"GREETING": "hi", "A": "1"},
				PassEnv: []string{"HOME", "NOT_ON_HOST"},
				Secrets: map[string]string{"GITHUB_TOKEN": "CHIMA_GITHUB_TOKEN"},
			},
			[]string{"PATH=/usr/bin:/bin", "A=1", "GREETING=hi", "HOME=/home/alice", "GITHUB_TOKEN=ghp_s3cr3t"},
			[]string{"ghp_s3cr3t"}, ""},
		{"a literal PATH overrides the host's",
			PluginConfig{Name: "p", Env: map[string]string{"PATH": "/opt/bin"}}, []string{"PATH=/opt/bin"}, nil, ""},
		{"missing secrets are all named, without any value",
			PluginConfig{Name: "deploy", Secrets: map[string]string{
				"GITHUB_TOKEN": "CHIMA_GITHUB_TOKEN", "SLACK": "CHIMA_SLACK_TOKEN", "E": "CHIMA_EMPTY"}},
			nil, nil,
			"plugin deploy: secret E: environment variable CHIMA_EMPTY is empty\n" +
				"plugin deploy: secret SLACK: environment variable CHIMA_SLACK_TOKEN is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, secrets, err := tt.plugin.Environ(lookup)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "ghp_s3cr3t") {
					t.Errorf("error leaks a secret value: %v", err)
				}
				if env != nil || secrets != nil {
					t.Errorf("got env %q and secrets alongside an error", env)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(env, tt.wantEnv) {
				t.Errorf("env = %q, want %q", env, tt.wantEnv)
			}
			if !reflect.DeepEqual(secrets, tt.wantSecrets) {
				t.Errorf("secret values = %q, want %q", secrets, tt.wantSecrets)
			}
			for _, kv := range env {
				if strings.Contains(kv, "host-only-secret") {
					t.Errorf("host variable leaked into the plugin environment: %s", kv)
				}
			}
		})
	}
}

func TestEnvironDefaultsToTheProcessEnvironment(t *testing.T) {
	t.Setenv("CHIMA_TEST_SECRET", "v")
	t.Setenv("CHIMA_TEST_UNRELATED", "leak")
	env, _, err := PluginConfig{Secrets: map[string]string{"S": "CHIMA_TEST_SECRET"}}.Environ(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "CHIMA_TEST_UNRELATED=") {
			t.Errorf("unrelated host variable leaked: %s", kv)
		}
	}
	if env[len(env)-1] != "S=v" {
		t.Errorf("env = %q, want it to end with S=v", env)
	}
}

func TestAliasBombsFailInsteadOfHanging(t *testing.T) {
	// Each role merges the previous one ten times: walked naively, the last
	// one costs 10^7 merges.
	var b strings.Builder
	b.WriteString(valid)
	b.WriteString("roles:\n  r0: &r0 {users: ['shell:a']}\n")
	for i := 1; i < 8; i++ {
		prev := fmt.Sprintf("*r%d", i-1)
		fmt.Fprintf(&b, "  r%d: &r%d {<<: [%s%s]}\n", i, i, strings.Repeat(prev+", ", 9), prev)
	}
	// The guard refusing the document is what keeps it from hanging; the
	// test's own -timeout catches a hang, no clock is read here.
	got := problems(t, b.String())
	if len(got) != 1 || !strings.Contains(got[0], "too many aliases") {
		t.Errorf("problems = %q, want one about too many aliases", got)
	}
}

func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("../../examples/config/chima.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(example), valid, "", "---\n", "bot: [", "a: &a [*a]\n", "roles: {r: &r {<<: *r}}\n",
		"plugins: [{name: x, path: y, restart_window: 1h, secrets: {A: B}}]\n", "bot: !!binary aGk=\n",
		"bot: {name: 1, max_concurrency: 1e9999}\n", "? [a]\n: b\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseWithOptions(data, "f.yaml", "/base", skipFiles)
		if (c == nil) == (err == nil) {
			t.Fatalf("want exactly one of config and error, got %v and %v", c, err)
		}
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("error %T %v is not a non-empty *ValidationError", err, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed config fails Validate: %v", err)
		}
	})
}

func TestGitHubWebhookNeedsASecretVariableAndHTTP(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"no secret_env", "webhooks:\n  github: {}\n", "webhooks.github.secret_env: required"},
		{"a secret pasted in", "webhooks:\n  github: {secret_env: \"s3cret-value\"}\n", "is not an upper-case environment variable name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := strings.Join(problems(t, valid+c.yaml), "\n")
			if !strings.Contains(got, c.want) || strings.Contains(got, "s3cret-value") {
				t.Fatalf("problems:\n%s\nwant %q, without the pasted value", got, c.want)
			}
		})
	}
}

func TestWebhookRetryIsReadAndItsMistakesNamed(t *testing.T) {
	c := mustParse(t, valid+"webhooks:\n  retry: {attempts: 3, backoff: 50ms, max_backoff: 2s}\n")
	if r := c.Webhooks.Retry; r.Attempts != 3 || r.Backoff != 50*time.Millisecond || r.MaxBackoff != 2*time.Second {
		t.Fatalf("webhooks.retry = %+v", r)
	}
	cases := []struct {
		name, yaml, want string
	}{
		{"negative attempts", "webhooks:\n  retry: {attempts: -1}\n", "webhooks.retry.attempts: must be at least 1"},
		{"a cap below the backoff", "webhooks:\n  retry: {backoff: 10s, max_backoff: 1s}\n", "webhooks.retry.max_backoff: must be at least the backoff"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := strings.Join(problems(t, valid+c.yaml), "\n"); !strings.Contains(got, c.want) {
				t.Fatalf("problems:\n%s\nwant %q", got, c.want)
			}
		})
	}
}

func TestABareRoomMeansTheDefaultOrTheOnlyAdapter(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"the only adapter", valid, "shell"},
		{"the one named", strings.Replace(valid, "  name: chima\n", "  name: chima\n  default_adapter: shell\n", 1), "shell"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustParse(t, tt.src).DefaultAdapter(); got != tt.want {
				t.Fatalf("DefaultAdapter() = %q, want %q", got, tt.want)
			}
		})
	}
	c := &Config{}
	if got := c.DefaultAdapter(); got != "" {
		t.Fatalf("with no adapter configured DefaultAdapter() = %q", got)
	}
}

func TestSeveralPoliciesForOneCommandWithApprovalDefaults(t *testing.T) {
	src := `bot: {name: chima}
adapters: [{name: shell, type: shell}]
plugins: []
roles:
  release-managers: {users: ["shell:bob"]}
policies:
  - command: deploy
    allowed_rooms: [deployment]
  - command: deploy
    when: {env: [production]}
    approval: {approvers: [release-managers]}
`
	cfg, err := Parse([]byte(src), "chima.yaml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Policies[1].Approval
	if a == nil || a.Count != DefaultApprovalCount || a.TTL != DefaultApprovalTTL || !reflect.DeepEqual(cfg.Policies[1].When, map[string][]string{"env": {"production"}}) {
		t.Errorf("policies[1] = %+v, approval %+v; want when env=[production], count 1, ttl 30m", cfg.Policies[1], a)
	}
}
