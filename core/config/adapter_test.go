package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

const twoAdapters = `bot:
  name: chima
adapters:
  - {name: console, type: shell, room: ops, user: alice}
  - name: slack
    type: slack
    bot_token_env: SLACK_BOT_TOKEN
    retries: 3
    timeout: 5s
    channels: [ops, deployment]
plugins:
  - {name: hello, path: bin/hello}
roles:
  admin: {users: ["console:alice", "slack:U024BE7LH"]}
policies:
  - {command: deploy, allowed_rooms: [deployment, "slack:ops", "console:general"]}
`

type slackOptions struct {
	BotTokenEnv string        `yaml:"bot_token_env"`
	Retries     int           `yaml:"retries"`
	Timeout     time.Duration `yaml:"timeout"`
	Channels    []string      `yaml:"channels"`
	APIURL      string        `yaml:"api_url"`
}

func TestAdaptersAreANamedListWhoseOtherKeysGoToTheFactory(t *testing.T) {
	c := mustParse(t, twoAdapters)
	if got, want := c.AdapterNames(), []string{"console", "slack"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("AdapterNames() = %v, want %v", got, want)
	}
	if c.Adapters[1].Type != "slack" || c.Adapters[1].Key() != "adapters[1]" {
		t.Fatalf("second adapter = %+v", c.Adapters[1])
	}
	opts := slackOptions{APIURL: "https://slack.com/api/"}
	if err := c.Adapters[1].Decode(&opts); err != nil {
		t.Fatal(err)
	}
	want := slackOptions{BotTokenEnv: "SLACK_BOT_TOKEN", Retries: 3, Timeout: 5 * time.Second,
		Channels: []string{"ops", "deployment"}, APIURL: "https://slack.com/api/"}
	if !reflect.DeepEqual(opts, want) {
		t.Fatalf("decoded %+v, want %+v (absent keys keep their defaults)", opts, want)
	}
	var shell struct {
		Room string `yaml:"room"`
		User string `yaml:"user"`
	}
	if err := c.Adapters[0].Decode(&shell); err != nil || shell.Room != "ops" || shell.User != "alice" {
		t.Fatalf("console options %+v, %v", shell, err)
	}
	if d := c.DefaultAdapter(); d != "" {
		t.Fatalf("with two adapters and no default_adapter, DefaultAdapter() = %q", d)
	}
}

func TestAdapterOptionsDecodeStrictlyNamingTheKey(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"misspelt key", strings.Replace(twoAdapters, "retries: 3", "retires: 3", 1),
			[]string{`chima.yaml:8: adapters[1].retires: unknown key (did you mean "retries"?)`}},
		{"wrong type", strings.Replace(twoAdapters, "retries: 3", "retries: many", 1),
			[]string{`chima.yaml:8: adapters[1].retries: expected a whole number, got "many"`}},
		{"every problem at once", strings.Replace(strings.Replace(twoAdapters, "retries: 3", "retries: many", 1), "timeout: 5s", "timeout: 5", 1),
			[]string{`chima.yaml:8: adapters[1].retries: expected a whole number, got "many"`,
				`chima.yaml:9: adapters[1].timeout: duration 5 needs a unit, like 5s or 5m`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.src) // the core does not know the keys: it parses
			err := c.Adapters[1].Decode(&slackOptions{})
			ve, ok := err.(*ValidationError)
			if !ok {
				t.Fatalf("Decode = %T %v, want *ValidationError", err, err)
			}
			var got []string
			for _, p := range ve.Problems {
				got = append(got, p.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestAnAdapterProblemNamesTheKeyThatHoldsAValue(t *testing.T) {
	a := mustParse(t, twoAdapters).Adapters[1]
	key := a.OptionWithValue("SLACK_BOT_TOKEN")
	if key != "bot_token_env" {
		t.Fatalf("OptionWithValue = %q", key)
	}
	if got, want := a.Problem(key, "environment variable SLACK_BOT_TOKEN is empty").String(),
		"chima.yaml:7: adapters[1].bot_token_env: environment variable SLACK_BOT_TOKEN is empty"; got != want {
		t.Fatalf("Problem = %q, want %q", got, want)
	}
	if got, want := a.Problem("", "no such type").String(), "chima.yaml:5: adapters[1]: no such type"; got != want {
		t.Fatalf("Problem = %q, want %q", got, want)
	}
	if k := a.OptionWithValue("NOPE"); k != "" {
		t.Fatalf("OptionWithValue of an absent value = %q", k)
	}
}

func TestReferencesToAdaptersUseTheConfiguredNames(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"a role user of an adapter not configured", `"slack:U024BE7LH"`, `"mattermost:U1"`,
			`chima.yaml:14: roles.admin.users[1]: "mattermost:U1": no adapter named "mattermost" is configured (adapters: console, slack)`},
		{"a type is not a name", `"console:alice"`, `"shell:alice"`,
			`chima.yaml:14: roles.admin.users[0]: "shell:alice": no adapter named "shell" is configured (adapters: console, slack)`},
		{"a policy room of an adapter not configured", `"slack:ops"`, `"irc:ops"`,
			`chima.yaml:16: policies[0].allowed_rooms[1]: "irc:ops": no adapter named "irc" is configured (write room or adapter:room; adapters: console, slack)`},
		{"a default adapter not configured", "  name: chima\n", "  name: chima\n  default_adapter: shell\n",
			`chima.yaml:3: bot.default_adapter: "shell" is not the name of a configured adapter; adapters: console, slack`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, strings.Replace(twoAdapters, tt.old, tt.new, 1))
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("problems:\n%s\nwant exactly:\n%s", strings.Join(got, "\n"), tt.want)
			}
		})
	}
	c := mustParse(t, strings.Replace(twoAdapters, "  name: chima\n", "  name: chima\n  default_adapter: slack\n", 1))
	if d := c.DefaultAdapter(); d != "slack" {
		t.Fatalf("DefaultAdapter() = %q", d)
	}
}

func TestTheOldAdaptersFormSaysWhatToWrite(t *testing.T) {
	src := "bot: {name: chima}\nadapters:\n  shell:\n    enabled: true\n    room: general  # where it starts\n    user: alice\n  slack: {enabled: false}\n"
	got := problems(t, src)
	want := `chima.yaml:3: adapters: is a list now, one entry per adapter with a name and a type (the old form adapters: {shell: {enabled: true}} is gone); write instead: adapters: [{name: shell, type: shell, room: general, user: alice}]`
	if len(got) != 1 || got[0] != want {
		t.Fatalf("problems:\n%s\nwant exactly:\n%s", strings.Join(got, "\n"), want)
	}
	// What it says to write is a valid config.
	line := want[strings.Index(want, "write instead: ")+len("write instead: "):]
	c := mustParse(t, "bot: {name: chima}\n"+line+"\n")
	if c.Adapters[0].Name != "shell" || c.Adapters[0].Type != "shell" {
		t.Fatalf("the suggested line parses to %+v", c.Adapters)
	}
}

// The configuration reference in README.md is a config that parses.
func TestTheReadmeReferenceConfigParses(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, ref, ok := strings.Cut(string(data), "## Configuration reference")
	if !ok {
		t.Fatal("README.md has no configuration reference")
	}
	_, ref, _ = strings.Cut(ref, "```yaml\n")
	ref, _, _ = strings.Cut(ref, "```")
	c := mustParse(t, ref)
	if got := strings.Join(c.AdapterNames(), ","); got != "console,slack" {
		t.Fatalf("the reference's adapters: %s", got)
	}
}
