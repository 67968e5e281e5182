package router

import (
	"strings"
	"testing"
)

func TestParsePositional(t *testing.T) {
	r := newTestRouter(t)
	const scaleUsage = "scale <app> <replicas> [wait] [force] [tier]"
	tests := []struct {
		name string
		text string
		want want
	}{
		{"optional argument falls back to its default", "hello",
			want{kind: Matched, plugin: "tools", command: "hello", args: map[string]string{"name": "world"}}},
		{"optional argument given", "hello Ada",
			want{kind: Matched, plugin: "tools", command: "hello", args: map[string]string{"name": "Ada"}}},
		{"alias and keyword case are ignored, value case is kept", "HI Ada",
			want{kind: Matched, plugin: "tools", command: "hello", args: map[string]string{"name": "Ada"}}},
		{"quoted argument keeps its spaces", `hello "Ada Lovelace"`,
			want{kind: Matched, plugin: "tools", command: "hello", args: map[string]string{"name": "Ada Lovelace"}}},
		{"curly quotes from a phone keyboard work too", "hello “Ada Lovelace”",
			want{kind: Matched, plugin: "tools", command: "hello", args: map[string]string{"name": "Ada Lovelace"}}},
		{"empty quotes mean absent", `hello ""`,
			want{kind: Matched, plugin: "tools", command: "hello", args: map[string]string{"name": "world"}}},
		{"unterminated quote is malformed", `hello "Ada Lovelace`,
			want{kind: Malformed, plugin: "tools", command: "hello", usage: "hello [name]", problem: "missing closing quote", argument: "name"}},
		{"text glued to a closing quote is malformed", `hello "Ada"x`,
			want{kind: Malformed, plugin: "tools", command: "hello", usage: "hello [name]", problem: "put a space after the closing quote", argument: "name"}},
		{"extra token is too many", "hello Ada Lovelace",
			want{kind: Malformed, plugin: "tools", command: "hello", usage: "hello [name]", problem: "too many arguments"}},

		{"all types with defaults", "scale web 3",
			want{kind: Matched, plugin: "tools", command: "scale", args: map[string]string{"app": "web", "replicas": "3", "wait": "5m0s", "tier": "small"}}},
		{"all types given and normalised", "scale web +03 90s YES large",
			want{kind: Matched, plugin: "tools", command: "scale", args: map[string]string{"app": "web", "replicas": "3", "wait": "1m30s", "force": "true", "tier": "Large"}}},
		{"bool words", "scale web -1 1h off small",
			want{kind: Matched, plugin: "tools", command: "scale", args: map[string]string{"app": "web", "replicas": "-1", "wait": "1h0m0s", "force": "false", "tier": "small"}}},
		{"int that is not a number", "scale web x",
			want{kind: Malformed, plugin: "tools", command: "scale", usage: scaleUsage, problem: `replicas must be a whole number, got "x"`, argument: "replicas"}},
		{"int that overflows", "scale web 99999999999999999999",
			want{kind: Malformed, plugin: "tools", command: "scale", usage: scaleUsage, problem: `replicas is too big, got "99999999999999999999"`, argument: "replicas"}},
		{"bad duration", "scale web 2 soon",
			want{kind: Malformed, plugin: "tools", command: "scale", usage: scaleUsage, problem: `wait must be a duration such as 90s, 5m or 1h30m, got "soon"`, argument: "wait"}},
		{"bad bool", "scale web 2 1m maybe",
			want{kind: Malformed, plugin: "tools", command: "scale", usage: scaleUsage, problem: `force must be yes or no, got "maybe"`, argument: "force"}},
		{"bad enum", "scale web 2 1m no huge",
			want{kind: Malformed, plugin: "tools", command: "scale", usage: scaleUsage, problem: `tier must be one of small, Large, got "huge"`, argument: "tier"}},
		{"missing required", "scale web",
			want{kind: Malformed, plugin: "tools", command: "scale", usage: scaleUsage, problem: "missing <replicas>", argument: "replicas"}},
		{"missing first required", "scale",
			want{kind: Malformed, plugin: "tools", command: "scale", usage: scaleUsage, problem: "missing <app>", argument: "app"}},
		{"too many", "scale web 2 1m no small extra",
			want{kind: Malformed, plugin: "tools", command: "scale", usage: scaleUsage, problem: "too many arguments"}},

		{"rest takes the raw text verbatim", `echo  Hello,   "world"  !`,
			want{kind: Matched, plugin: "tools", command: "echo", args: map[string]string{"msg": `Hello,   "world"  !`}}},
		{"rest may hold an unbalanced quote", `echo it's 5" long`,
			want{kind: Matched, plugin: "tools", command: "echo", args: map[string]string{"msg": `it's 5" long`}}},
		{"required rest missing", "echo",
			want{kind: Malformed, plugin: "tools", command: "echo", usage: "echo <msg...>", problem: "missing <msg>", argument: "msg"}},
		{"rest after a quoted argument", `note "Release plan" ship on Friday, then rest`,
			want{kind: Matched, plugin: "tools", command: "note", args: map[string]string{"title": "Release plan", "body": "ship on Friday, then rest"}}},
		{"optional rest absent", `note todo`,
			want{kind: Matched, plugin: "tools", command: "note", args: map[string]string{"title": "todo"}}},

		{"argument pattern accepts", "login ada 0123abcd",
			want{kind: Matched, plugin: "tools", command: "login", args: map[string]string{"user": "ada", "token": "0123abcd"}}},
		{"argument pattern is a full match", "login ada1 0123abcd",
			want{kind: Malformed, plugin: "tools", command: "login", usage: "login <user> <token>", problem: `user is not in the expected form, got "ada1"`, argument: "user"}},
		{"secret values are never echoed", "login ada hunter2",
			want{kind: Malformed, plugin: "tools", command: "login", usage: "login <user> <token>", problem: "token is not in the expected form", argument: "token"}},

		{"default that is not a typed value", "ci web",
			want{kind: Matched, plugin: "ci", command: "ci-status", args: map[string]string{"app": "web", "ref": "main"}}},
		{"git refs keep their case", "CI web Feature/ABC",
			want{kind: Matched, plugin: "ci", command: "ci-status", args: map[string]string{"app": "web", "ref": "Feature/ABC"}}},
		{"pattern command without arguments", "Are you there?",
			want{kind: Matched, plugin: "ci", command: "ping", args: map[string]string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkResult(t, tt.text, r.Parse(tt.text), tt.want)
		})
	}
}

func TestParseBuiltinsAndLimits(t *testing.T) {
	r := newTestRouter(t)
	tests := []struct {
		name string
		text string
		want want
	}{
		{"help alone", "help", want{kind: Help}},
		{"help with a topic", "help Deploy:Lock", want{kind: Help, topic: "deploy:lock"}},
		{"commands is help too", "commands", want{kind: Help}},
		{"help topic is the first word", "HELP deploy to edge", want{kind: Help, topic: "deploy"}},
		{"empty", "", want{kind: Empty}},
		{"only spaces", " \t ", want{kind: Empty}},
		{"too long is not parsed", "echo " + strings.Repeat("x", 196),
			want{kind: TooLong, problem: "that is too long for me (201 bytes, at most 200)"}},
		{"exactly at the limit", "echo " + strings.Repeat("x", 195),
			want{kind: Matched, plugin: "tools", command: "echo", args: map[string]string{"msg": strings.Repeat("x", 195)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkResult(t, tt.text, r.Parse(tt.text), tt.want)
		})
	}
}

func TestParseUnknown(t *testing.T) {
	r := newTestRouter(t)
	tests := []struct {
		name string
		text string
		want want
	}{
		{"typo of a short command", "helo",
			want{kind: Unknown, problem: `I don't know the command "helo"`, suggestion: "hello", usage: "hello [name]"}},
		{"prefix of a command", "sca web 2",
			want{kind: Unknown, problem: `I don't know the command "sca"`, suggestion: "scale", usage: "scale <app> <replicas> [wait] [force] [tier]"}},
		{"unknown suffix of a known command is malformed, not unknown", "deploy:lokc",
			want{kind: Malformed, plugin: "deploy", command: "deploy", problem: `I didn't understand "deploy:lokc"`,
				usage: "deploy[:task][!] <app>[/<ref>] [to <env>[/<hosts>]]"}},
		{"typo in both halves suggests the suffixed command", "deplo:lokc",
			want{kind: Unknown, problem: `I don't know the command "deplo:lokc"`, suggestion: "deploy:lock", usage: "deploy:lock <app> in <env> [reason]"}},
		{"nothing close", "xyzzy plugh",
			want{kind: Unknown, problem: `I don't know the command "xyzzy"`}},
		{"two letters are not close to anything", "zq",
			want{kind: Unknown, problem: `I don't know the command "zq"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkResult(t, tt.text, r.Parse(tt.text), tt.want)
		})
	}
}

func TestParseEmptyRouter(t *testing.T) {
	r := New(Options{Name: "chima"})
	checkResult(t, "deploy x", r.Parse("deploy x"), want{kind: Unknown, problem: `I don't know the command "deploy"`})
	checkResult(t, "help", r.Parse("help"), want{kind: Help})
}

func TestResultReply(t *testing.T) {
	r := newTestRouter(t)
	tests := []struct {
		name     string
		text     string
		contains []string
	}{
		{"unknown with a suggestion", "deplyo x", []string{`I don't know the command "deplyo".`, `Did you mean "deploy"?`, "Usage: deploy[:task][!]"}},
		{"unknown without a suggestion", "xyzzy", []string{`I don't know the command "xyzzy".`, `Say "help"`}},
		{"malformed", "scale web x", []string{`Replicas must be a whole number, got "x".`, `Say "help scale" for details.`, "Usage: scale <app>"}},
		{"empty", "", []string{"Yes?"}},
		{"too long", strings.Repeat("x", 300), []string{"That is too long for me"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.Parse(tt.text).Reply().PlainText()
			for _, s := range tt.contains {
				if !strings.Contains(got, s) {
					t.Errorf("Reply for %q = %q, want it to contain %q", tt.text, got, s)
				}
			}
		})
	}
	if got := r.Parse("hello").Reply(); got.PlainText() != "" {
		t.Errorf("Reply for a match = %+v, want the zero Output", got)
	}
}

func TestMaskSecretsHidesSecretArgumentsOnly(t *testing.T) {
	r := newTestRouter(t)
	tests := []struct{ text, want string }{
		{"login alice deadbeef", "login alice [redacted]"},
		{"note deadbeef in a note", "note deadbeef in a note"}, // not a secret argument there
		{"nosuch deadbeef", "nosuch deadbeef"},                 // no command: nothing known to be secret
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			if got := r.Parse(tt.text).MaskSecrets(tt.text); got != tt.want {
				t.Fatalf("MaskSecrets(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}
