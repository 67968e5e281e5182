package config

import (
	"strings"
	"testing"
)

func TestAPolicyMayNameACommandWhoseNameHasAColon(t *testing.T) {
	cases := []struct{ name, command string }{
		{"a command", "backup:restore"},
		{"a plugin's command", "hello/backup:restore"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := valid + "people:\n  bob: ['shell:bob']\npolicies:\n  - command: " + c.command + "\n    approval: {approvers: [bob]}\n"
			if p := mustParse(t, src).Policies; len(p) != 1 || p[0].Command != c.command {
				t.Fatalf("policies = %+v; want one for %s", p, c.command)
			}
		})
	}
	for _, bad := range []string{"backup:", ":restore", "backup::restore", "Backup:restore"} {
		t.Run("not "+bad, func(t *testing.T) {
			got := problems(t, valid+"policies:\n  - command: '"+bad+"'\n")
			if len(got) != 1 || !strings.Contains(got[0], "expected command, plugin/command or *") {
				t.Fatalf("problems = %q; want the command refused", got)
			}
		})
	}
}
