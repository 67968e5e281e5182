package bot_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/core/config"
	"github.com/chimaops/chima/core/store"
)

// runnerBot runs the runner fixture, which runs commands with RunCommand,
// allowed to act as the person alice and the account mem:bob.
func runnerBot(t *testing.T) *testBot {
	return startBot(t, botOptions{
		plugins: []string{"runner", "crashy"},
		people:  map[string][]string{"alice": {"mem:alice", "mem:al"}, "carol": {"mem:carol"}},
		roles:   map[string]config.Role{"admin": {People: []string{"alice"}, Permissions: []string{"admin:*"}}},
		runAs:   map[string][]string{"runner": {"alice", "mem:bob"}},
	})
}

// auditUntil waits, bounded, for an audit entry that match accepts (the
// audit is written in batches, outcomes after the reply).
func (tb *testBot) auditUntil(what string, match func(store.AuditEntry) bool) store.AuditEntry {
	tb.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, err := tb.store.AuditWhere(context.Background(), store.AuditFilter{Limit: 200})
		if err != nil {
			tb.t.Fatal(err)
		}
		for _, e := range entries {
			if match(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			var lines []string
			for _, e := range entries {
				lines = append(lines, e.Via+" | "+e.Plugin+"/"+e.Command+" | "+e.UserID+" | "+e.Person+" | "+e.Outcome+" | "+e.Detail)
			}
			tb.t.Fatalf("no audit entry %s in:\n%s", what, strings.Join(lines, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAPluginRunsACommandAsAPersonItMayActAs(t *testing.T) {
	tb := runnerBot(t)
	tests := []struct {
		name, as, text string
		wantSaid       []string
		wantUser       string
		wantPerson     string
	}{
		{"a person, as their account in the room's adapter", "alice", "whoami",
			[]string{"whoami id=alice person=alice triggered_by=runner", "runas "}, "alice", "alice"},
		{"a person runs a command their role allows", "alice", "admin",
			[]string{"admin done", ": ok"}, "alice", "alice"},
		{"an account listed as such", "mem:bob", "whoami",
			[]string{"whoami id=bob person= triggered_by=runner", ": ok"}, "bob", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb.t = t
			tb.sayAs("dave", "general", "chima runas "+tt.as+" "+tt.text)
			tb.expectAll(tt.wantSaid...)
			e := tb.auditUntil("of "+tt.text+" triggered by runner", func(e store.AuditEntry) bool {
				return e.TriggeredBy == "runner" && e.Command == tt.text && e.UserID == tt.wantUser && e.Outcome == "ok"
			})
			if e.Person != tt.wantPerson || e.Via != "plugin runner: asked by dave" || e.Room != "general" || e.Adapter != "mem" {
				t.Errorf("audit entry = %+v; want person %q, via plugin runner: asked by dave, in mem:general", e, tt.wantPerson)
			}
		})
	}
}

func TestARunCommandAsSomeoneTheConfigDoesNotAllowIsDeniedAndAudited(t *testing.T) {
	tb := runnerBot(t)
	tests := []struct{ name, as, want string }{
		{"a person not in run_as", "carol", "the runner plugin may not run commands as carol (chima.yaml: plugins[].run_as of runner allows alice, mem:bob)"},
		{"an account not in run_as", "mem:dave", "may not run commands as mem:dave"},
		{"a bare id that is no person", "bob", "may not run commands as bob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb.t = t
			tb.sayAs("dave", "general", "chima runas "+tt.as+" whoami")
			said := tb.expect("runas failed").Out.PlainText()
			if !strings.Contains(said, "PermissionDenied") || !strings.Contains(said, tt.want) {
				t.Errorf("runner said %q; want PermissionDenied and %q", said, tt.want)
			}
			tb.auditUntil("denying "+tt.as, func(e store.AuditEntry) bool {
				return e.TriggeredBy == "runner" && e.Outcome == "denied" && strings.Contains(e.Detail, tt.want) && e.Text == "whoami"
			})
		})
	}
}

func TestAPluginRunningItselfStopsAtTheDepthLimit(t *testing.T) {
	tb := runnerBot(t)
	tb.sayAs("dave", "general", "chima recurse alice")
	tb.expect("recursion stopped")
	tb.auditUntil("refusing the recursion", func(e store.AuditEntry) bool {
		return e.Outcome == "denied" && strings.Contains(e.Detail, "nest 4 deep at most")
	})
	// Each level ran, and returned.
	for range 4 {
		tb.expect("recurse returned ok")
	}
	n := 0
	entries, _ := tb.store.AuditWhere(context.Background(), store.AuditFilter{Command: "runner/recurse", TriggeredBy: "runner"})
	for _, e := range entries {
		if e.Outcome != "denied" {
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d recurse commands ran triggered by the plugin; want 4 (the depth limit)", n)
	}
}

func TestACommandAPluginRunsThatNeedsApprovalWaitsAndNamesTheRequest(t *testing.T) {
	tb := startBot(t, botOptions{
		plugins: []string{"runner", "crashy"},
		people:  map[string][]string{"alice": {"mem:alice"}, "bob": {"mem:bob"}},
		roles: map[string]config.Role{
			"admin":            {People: []string{"alice"}, Permissions: []string{"admin:*"}},
			"release-managers": {People: []string{"bob"}},
		},
		policies: []config.Policy{{Command: "whoami",
			Approval: &config.ApprovalRule{Approvers: []string{"release-managers"}, Count: 1, TTL: 30 * time.Minute}}},
		runAs: map[string][]string{"runner": {"alice"}},
	})
	tb.sayAs("dave", "general", "chima runas alice whoami")
	// The room and the approver (by DM) are asked; the runner's reply
	// carries RunCommand's answer: outcome approval, and the request.
	tb.expectAll("Asked in mem:general", "Approval needed (request 1)", "(approval #1)")
	e := tb.auditUntil("of whoami waiting for approval", func(e store.AuditEntry) bool {
		return e.Command == "whoami" && e.Outcome == "approval" && e.TriggeredBy == "runner"
	})
	if e.Person != "alice" {
		t.Errorf("audit entry = %+v; want alice's request", e)
	}
}
