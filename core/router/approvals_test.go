package router

import (
	"testing"

	"github.com/chimaops/chima/sdk/pluginv1"
)

func TestApproveDenyAndApprovalsAreBuiltInCommands(t *testing.T) {
	r := New(Options{Name: "chima"})
	tests := []struct {
		text    string
		kind    Kind
		id      int64
		reason  string
		problem bool
	}{
		{"approve 12", Approve, 12, "", false},
		{"Approve #12 looks fine", Approve, 12, "looks fine", false},
		{"deny 12 not on a Friday", Deny, 12, "not on a Friday", false},
		{"deny 12", Deny, 12, "", true},
		{"approve", Approve, 0, "", true},
		{"approve twelve", Approve, 0, "", true},
		{"approvals", Approvals, 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got := r.Parse(tt.text)
			if got.Kind != tt.kind || got.ApprovalID != tt.id || got.Reason != tt.reason || (got.Problem != "") != tt.problem {
				t.Errorf("Parse(%q) = kind %s id %d reason %q problem %q; want %s %d %q problem %v",
					tt.text, got.Kind, got.ApprovalID, got.Reason, got.Problem, tt.kind, tt.id, tt.reason, tt.problem)
			}
		})
	}
	for _, name := range []string{"approve", "deny", "approvals"} {
		if err := r.SetPlugin("x", &pluginv1.Manifest{Commands: []*pluginv1.CommandSpec{{Name: name}}}); err == nil {
			t.Errorf("a plugin command named %s was taken; want ErrConflict", name)
		}
	}
}
