package router

import (
	"strings"
	"testing"
)

func TestHelpForLeavesOutWhatTheCallerMayNotRun(t *testing.T) {
	r := newTestRouter(t)
	noDeploy := func(plugin, command, permission string) (bool, string) {
		if permission == "deploy" {
			return false, "you need the deploy permission (roles that have it: deployer)"
		}
		return true, ""
	}
	nothing := func(plugin, command, permission string) (bool, string) {
		return false, "you need the everything permission"
	}
	tests := []struct {
		name     string
		topic    string
		may      Access
		contains []string
		excludes []string
	}{
		{"everything lists only the commands the caller may run", "", noDeploy,
			[]string{"deploy — Deploys apps", "  deploy:unlock <app>", "tools — Small things.\n  hello", "2 commands you do not have the permission for are not listed."},
			[]string{"deploy[:task][!]", "deploy:lock", "You cannot run"}},
		{"a plugin none of whose commands are allowed is left out", "", nothing,
			[]string{"built in\n  help [topic]", "commands you do not have the permission for are not listed."},
			[]string{"tools", "deploy", "hello"}},
		{"a nil Access lists everything", "", nil,
			[]string{"deploy[:task][!]", "deploy:lock", "hello"},
			[]string{"not listed"}},
		{"a refused command is still explained, with why it is refused", "deploy:lock", noDeploy,
			[]string{"deploy:lock <app> in <env> [reason]", "You cannot run it: you need the deploy permission (roles that have it: deployer)."},
			nil},
		{"an allowed command is explained without a refusal", "hello", noDeploy,
			[]string{"hello [name]"}, []string{"You cannot run"}},
		{"a plugin's help leaves out refused commands", "tools", nothing,
			[]string{"The tools plugin", "commands you do not have the permission for are not listed."},
			[]string{"hello [name]", "(no commands)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := r.HelpFor(tt.topic, nil, tt.may).PlainText()
			for _, want := range tt.contains {
				if !strings.Contains(text, want) {
					t.Errorf("help %q lacks %q:\n%s", tt.topic, want, text)
				}
			}
			for _, bad := range tt.excludes {
				if strings.Contains(text, bad) {
					t.Errorf("help %q has %q:\n%s", tt.topic, bad, text)
				}
			}
		})
	}
}
