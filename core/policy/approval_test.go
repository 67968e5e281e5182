package policy

import (
	"reflect"
	"testing"
	"time"

	"github.com/chimaops/chima/core/config"
)

var approvalRoles = map[string]config.Role{
	"deployer":         {People: []string{"alice", "bob"}, Permissions: []string{"deploy", "deploy:*"}},
	"release-managers": {People: []string{"bob"}, Users: []string{"shell:carol"}},
}

var approvalPolicies = []config.Policy{
	{Command: "deploy", AllowedRooms: []string{"deployment"}},
	{Command: "deploy", When: map[string][]string{"env": {"production", "live"}},
		Approval: &config.ApprovalRule{Approvers: []string{"release-managers"}, Count: 1, TTL: 30 * time.Minute}},
	{Command: "deploy", When: map[string][]string{"env": {"live"}}, AllowedRooms: []string{"ops", "deployment"}, Permission: "deploy:live"},
}

func TestPoliciesWithWhenApplyToTheirArgumentValues(t *testing.T) {
	p := NewWithPeople(people, approvalRoles, approvalPolicies)
	deploy := func(room, env string) Request {
		r := Request{Adapter: "shell", Room: room, UserID: "alice", Plugin: "deploy", Command: "deploy", Permission: "deploy"}
		if env != "" {
			r.Args = map[string]string{"app": "demo", "env": env}
		}
		return r
	}
	roles := []string{"deployer"}
	rm := &Approval{Approvers: []string{"release-managers"}, Count: 1, TTL: 30 * time.Minute}
	tests := []struct {
		name string
		req  Request
		want Decision
	}{
		{"a rule without when applies to every value", deploy("deployment", "staging"),
			Decision{Allowed: true, Permission: "deploy", Roles: roles, Person: "alice"}},
		{"and its rooms hold beside a rule with when", deploy("random", "production"),
			Decision{Reason: "deploy is only allowed in #deployment", Permission: "deploy", Roles: roles, Person: "alice"}},
		{"a matching when asks for approval, naming the approvers", deploy("deployment", "production"),
			Decision{Allowed: true, Permission: "deploy", Roles: roles, Person: "alice", Approval: rm}},
		{"values match without case", deploy("deployment", "Production"),
			Decision{Allowed: true, Permission: "deploy", Roles: roles, Person: "alice", Approval: rm}},
		{"a command without the argument is not matched", deploy("deployment", ""),
			Decision{Allowed: true, Permission: "deploy", Roles: roles, Person: "alice"}},
		{"every matching rule applies: one's permission, another's approval", deploy("deployment", "live"),
			Decision{Allowed: true, Permission: "deploy:live", Roles: roles, Person: "alice", Approval: rm}},
		{"every matching rule's rooms must allow the room", deploy("ops", "live"),
			Decision{Reason: "deploy is only allowed in #deployment", Permission: "deploy", Roles: roles, Person: "alice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Check(tt.req); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Check(%+v)\n got %+v\nwant %+v", tt.req, got, tt.want)
			}
		})
	}
}

func TestApproversAreRolesAndPeopleAcrossAdapters(t *testing.T) {
	p := NewWithPeople(people, approvalRoles, approvalPolicies)
	approvers := []string{"release-managers", "erin"}
	tests := []struct {
		name          string
		adapter, user string
		want          bool
	}{
		{"a person holding the role", "shell", "bob", true},
		{"an account in the role's users", "shell", "carol", true},
		{"a person named as approver, on any of their accounts", "slack", "UERIN", true},
		{"a person without the role", "slack", "U024BE7LH", false},
		{"an unknown account", "shell", "mallory", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.IsApprover(approvers, tt.adapter, tt.user); got != tt.want {
				t.Errorf("IsApprover(%s:%s) = %v, want %v", tt.adapter, tt.user, got, tt.want)
			}
		})
	}
	if got, want := p.ApproverAccounts(approvers), []string{"shell:bob", "shell:carol", "shell:erin", "slack:UERIN"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ApproverAccounts = %v, want %v", got, want)
	}
	if got := p.Identity("mattermost", "9xk3h1c4fjr8"); got != "alice" {
		t.Errorf("Identity of alice's Mattermost account = %q, want alice", got)
	}
	if got := p.Identity("shell", "mallory"); got != "shell:mallory" {
		t.Errorf("Identity of an account of nobody = %q, want shell:mallory", got)
	}
	if !p.Known("release-managers") || !p.Known("erin") || p.Known("nobody") {
		t.Errorf("Known: want roles and people known, others not")
	}
}

// BenchmarkCheckApproval is Check on the dispatch path with policies that
// have when and approval: the command that needs no approval and the one
// that does both stay free of allocations.
func BenchmarkCheckApproval(b *testing.B) {
	p := NewWithPeople(people, approvalRoles, approvalPolicies)
	for _, c := range []struct{ name, env string }{{"no-rule-applies", "staging"}, {"approval-required", "production"}} {
		r := Request{Adapter: "mattermost", Room: "deployment", UserID: "9xk3h1c4fjr8", Plugin: "deploy", Command: "deploy", Permission: "deploy",
			Args: map[string]string{"app": "demo", "env": c.env}}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Check(r)
			}
		})
	}
}

func TestCheckWithApprovalRulesDoesNotAllocate(t *testing.T) {
	p := NewWithPeople(people, approvalRoles, approvalPolicies)
	for _, env := range []string{"staging", "production"} {
		r := Request{Adapter: "shell", Room: "deployment", UserID: "alice", Plugin: "deploy", Command: "deploy", Permission: "deploy",
			Args: map[string]string{"env": env}}
		if n := testing.AllocsPerRun(100, func() { p.Check(r) }); n != 0 {
			t.Errorf("Check with env %s allocates %v times, want 0", env, n)
		}
	}
}
