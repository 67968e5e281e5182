package bot_test

import (
	"strings"
	"testing"

	"github.com/chimaops/chima/core/config"
)

func TestHelpListsOnlyTheCommandsTheCallerMayRun(t *testing.T) {
	tb := startBot(t, botOptions{
		plugins: []string{"crashy"},
		people:  map[string][]string{"alice": {"mem:alice", "mem:al"}},
		roles:   map[string]config.Role{"admin": {People: []string{"alice"}, Permissions: []string{"admin:*"}}},
	})
	const adminLine = "\n  admin" // the line of crashy's admin command, which needs admin:do
	tests := []struct {
		name, user, text string
		want             []string // in the one reply
		notWant          []string
	}{
		{"a person's other account sees the command the person may run", "al", "chima help",
			[]string{adminLine, "\n  echo"}, []string{"not listed"}},
		{"someone without the permission does not see it", "bob", "chima help",
			[]string{"\n  echo", "1 command you do not have the permission for is not listed."}, []string{adminLine}},
		{"help on the command still explains it, and says why they may not run it", "bob", "chima help admin",
			[]string{"Permission: admin:do", "You cannot run it: you need the admin:do permission (roles that have it: admin)."}, nil},
		{"help on the command to one who may run it has no refusal", "al", "chima help admin",
			[]string{"Permission: admin:do"}, []string{"You cannot run it"}},
		{"the person may run it from that account", "al", "chima admin", []string{"admin done"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb.t = t
			tb.sayAs(tt.user, "general", tt.text)
			text := tb.expect(tt.want[0]).Out.PlainText()
			for _, w := range tt.want[1:] {
				if !strings.Contains(text, w) {
					t.Errorf("reply lacks %q:\n%s", w, text)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(text, w) {
					t.Errorf("reply has %q:\n%s", w, text)
				}
			}
		})
	}
}
