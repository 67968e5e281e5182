package policy

import (
	"reflect"
	"testing"

	"github.com/chimaops/chima/core/config"
)

var people = map[string][]string{
	"alice": {"slack:U024BE7LH", "mattermost:9xk3h1c4fjr8", "shell:alice"},
	"bob":   {"shell:bob"},
	"erin":  {"shell:erin", "slack:UERIN"}, // no role at all
}

var peopleRoles = map[string]config.Role{
	"deployer": {People: []string{"alice", "bob"}, Permissions: []string{"deploy", "deploy:*"}},
	// One account of a person in users: grants the role to the person.
	"locker": {Users: []string{"slack:U024BE7LH", "shell:carol"}, Permissions: []string{"lock"}},
	"ops":    {Users: []string{"mattermost:dave"}, People: []string{"nobody"}, Permissions: []string{"ci"}},
}

func TestAPersonsRolesApplyOnEveryAdapter(t *testing.T) {
	p := NewWithPeople(people, peopleRoles, nil)
	req := func(adapter, user, perm string) Request {
		return Request{Adapter: adapter, Room: "general", UserID: user, Plugin: "deploy", Command: "deploy", Permission: perm}
	}
	need := func(perm, roles string) string {
		return "you need the " + perm + " permission (roles that have it: " + roles + ")"
	}
	tests := []struct {
		name string
		req  Request
		want Decision
	}{
		{"a role granted to a person holds on one adapter", req("shell", "alice", "deploy"),
			Decision{Allowed: true, Permission: "deploy", Roles: []string{"deployer", "locker"}, Person: "alice"}},
		{"and on another", req("mattermost", "9xk3h1c4fjr8", "deploy:lock"),
			Decision{Allowed: true, Permission: "deploy:lock", Roles: []string{"deployer", "locker"}, Person: "alice"}},
		{"a role granted to one account of a person holds on the others", req("shell", "alice", "lock"),
			Decision{Allowed: true, Permission: "lock", Roles: []string{"deployer", "locker"}, Person: "alice"}},
		{"a person without the role is refused and named", req("shell", "bob", "lock"),
			Decision{Reason: need("lock", "locker"), Permission: "lock", Roles: []string{"deployer"}, Person: "bob"}},
		{"a person with no role is still named", req("slack", "UERIN", "deploy"),
			Decision{Reason: need("deploy", "deployer"), Permission: "deploy", Person: "erin"}},
		{"an account in users that is nobody's keeps its role", req("shell", "carol", "lock"),
			Decision{Allowed: true, Permission: "lock", Roles: []string{"locker"}}},
		{"a person's id on an adapter they do not use is someone else", req("slack", "alice", "deploy"),
			Decision{Reason: need("deploy", "deployer"), Permission: "deploy"}},
		{"an unknown person in a role grants nothing to anyone", req("mattermost", "dave", "ci"),
			Decision{Allowed: true, Permission: "ci", Roles: []string{"ops"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Check(tt.req); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Check(%+v)\n got %+v\nwant %+v", tt.req, got, tt.want)
			}
		})
	}
}

func TestPersonNamesTheOwnerOfAnAccount(t *testing.T) {
	p := NewWithPeople(people, peopleRoles, nil)
	tests := []struct{ adapter, user, want string }{
		{"slack", "U024BE7LH", "alice"},
		{"mattermost", "9xk3h1c4fjr8", "alice"},
		{"shell", "alice", "alice"},
		{"shell", "erin", "erin"},
		{"shell", "carol", ""}, // in a role's users, but nobody's account
		{"shell", "mallory", ""},
		{"irc", "alice", ""},
	}
	for _, tt := range tests {
		if got := p.Person(tt.adapter, tt.user); got != tt.want {
			t.Errorf("Person(%q, %q) = %q, want %q", tt.adapter, tt.user, got, tt.want)
		}
	}
	if got := New(roles, policies).Person("shell", "alice"); got != "" {
		t.Errorf("without people, Person = %q, want \"\"", got)
	}
}

func TestPermittedChecksThePermissionWhereverAsked(t *testing.T) {
	p := NewWithPeople(people, peopleRoles, []config.Policy{
		{Command: "deploy", AllowedRooms: []string{"deployment"}},
		{Command: "unlock", Permission: "lock"},
	})
	tests := []struct {
		name                         string
		adapter, user, command, perm string
		wantOK                       bool
		wantReason                   string
	}{
		{"room restrictions do not hide a command", "slack", "U024BE7LH", "deploy", "deploy", true, ""},
		{"a command needing nothing is open", "shell", "mallory", "hello", "", true, ""},
		{"a missing permission is explained", "shell", "mallory", "deploy", "deploy",
			false, "you need the deploy permission (roles that have it: deployer)"},
		{"a policy's permission replaces the manifest's", "shell", "bob", "unlock", "deploy:unlock",
			false, "you need the lock permission (roles that have it: locker)"},
		{"which another account of the person holds", "shell", "alice", "unlock", "deploy:unlock", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason := p.Permitted(tt.adapter, tt.user, "deploy", tt.command, tt.perm)
			if ok != tt.wantOK || reason != tt.wantReason {
				t.Errorf("Permitted = %v, %q; want %v, %q", ok, reason, tt.wantOK, tt.wantReason)
			}
		})
	}
}

func TestAnAccountListedForTwoPeopleBelongsToTheFirst(t *testing.T) {
	// config rejects this; policy must still be deterministic.
	p := NewWithPeople(map[string][]string{"zed": {"shell:x"}, "amy": {"shell:x"}}, nil, nil)
	if got := p.Person("shell", "x"); got != "amy" {
		t.Errorf("Person = %q, want amy", got)
	}
}

func TestAllowedChecksOfPeopleDoNotAllocate(t *testing.T) {
	p := NewWithPeople(people, peopleRoles, policies)
	r := Request{Adapter: "mattermost", Room: "general", UserID: "9xk3h1c4fjr8", Plugin: "deploy", Command: "deploy", Permission: "deploy"}
	if !p.Check(r).Allowed {
		t.Fatalf("%+v not allowed", r)
	}
	if n := testing.AllocsPerRun(100, func() { p.Check(r) }); n != 0 {
		t.Errorf("Check(%+v) allocates %v times", r, n)
	}
}

func BenchmarkCheckPerson(b *testing.B) {
	p := NewWithPeople(people, peopleRoles, policies)
	r := Request{Adapter: "mattermost", Room: "general", UserID: "9xk3h1c4fjr8", Plugin: "deploy", Command: "deploy", Permission: "deploy"}
	b.ReportAllocs()
	for b.Loop() {
		p.Check(r)
	}
}

func TestAPersonsAccountOnAnAdapterIsTheFirstListedThere(t *testing.T) {
	p := NewWithPeople(map[string][]string{"alice": {"shell:alice", "slack:U1", "shell:al"}}, nil, nil)
	tests := []struct {
		name, person, adapter, want string
		ok                          bool
	}{
		{"the first of two on one adapter", "alice", "shell", "alice", true},
		{"the only one on another", "alice", "slack", "U1", true},
		{"none on an adapter", "alice", "mattermost", "", false},
		{"nobody of that name", "bob", "shell", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := p.Account(tt.person, tt.adapter)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Account(%s, %s) = %q, %v; want %q, %v", tt.person, tt.adapter, got, ok, tt.want, tt.ok)
			}
		})
	}
	if !p.IsPerson("alice") || p.IsPerson("bob") {
		t.Error("IsPerson: want alice and not bob")
	}
}
