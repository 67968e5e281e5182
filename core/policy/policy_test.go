package policy

import (
	"os"
	"reflect"
	"testing"

	"github.com/chimaops/chima/core/config"
)

var roles = map[string]config.Role{
	"admin":    {Users: []string{"shell:alice", "slack:U024BE7LH"}, Permissions: []string{"*"}},
	"deployer": {Users: []string{"shell:bob", "slack:U0BOB"}, Permissions: []string{"deploy", "deploy:*"}},
	"locker":   {Users: []string{"shell:carol", "shell:bob"}, Permissions: []string{"deploy:lock"}},
	"ops":      {Users: []string{"mattermost:dave"}, Permissions: []string{"ci:*"}},
}

var policies = []config.Policy{
	{Command: "deploy", AllowedRooms: []string{"general", "#deployment", "slack:C123"}},
	{Command: "deploy/rollback", AllowedRooms: []string{"slack:C999"}, Permission: "deploy:rollback"},
	{Command: "lock", Permission: "deploy:lock"},
	{Command: "ci/status", AllowedRooms: []string{"mattermost:town-square"}},
	{Command: "backup/run", AllowedRooms: []string{"ops"}},
}

func TestCheck(t *testing.T) {
	p := New(roles, policies)
	// A user in the right room and role; cases change one thing.
	deploy := Request{Adapter: "shell", Room: "general", UserID: "bob", Plugin: "deploy", Command: "deploy", Permission: "deploy"}
	with := func(f func(*Request)) Request { r := deploy; f(&r); return r }

	tests := []struct {
		name string
		req  Request
		want Decision
	}{
		{"a deployer may deploy in an allowed room", deploy,
			Decision{Allowed: true, Permission: "deploy", Roles: []string{"deployer", "locker"}}},
		{"a room name without adapter matches on any adapter",
			with(func(r *Request) { r.Adapter, r.Room, r.UserID = "slack", "deployment", "U0BOB" }),
			Decision{Allowed: true, Permission: "deploy", Roles: []string{"deployer"}}},
		{"an adapter-qualified room matches on its adapter",
			with(func(r *Request) { r.Adapter, r.Room, r.UserID = "slack", "C123", "U0BOB" }),
			Decision{Allowed: true, Permission: "deploy", Roles: []string{"deployer"}}},
		{"an adapter-qualified room does not match on another adapter",
			with(func(r *Request) { r.Room = "C123" }),
			Decision{Reason: "deploy is only allowed in #general or #deployment", Permission: "deploy", Roles: []string{"deployer", "locker"}}},
		{"other rooms are refused, naming the rooms usable from this adapter",
			with(func(r *Request) { r.Adapter, r.Room, r.UserID = "slack", "random", "U0BOB" }),
			Decision{Reason: "deploy is only allowed in #general, #deployment or #C123", Permission: "deploy", Roles: []string{"deployer"}}},
		{"a direct message is not an allowed room",
			with(func(r *Request) { r.Room, r.Direct = "D42", true }),
			Decision{Reason: "deploy is only allowed in #general or #deployment, not in a direct message", Permission: "deploy", Roles: []string{"deployer", "locker"}}},
		{"the room is checked before the permission, even for admins",
			with(func(r *Request) { r.Room, r.UserID = "random", "alice" }),
			Decision{Reason: "deploy is only allowed in #general or #deployment", Permission: "deploy", Roles: []string{"admin"}}},
		{"a user without the permission is told which roles have it",
			with(func(r *Request) { r.UserID = "carol" }),
			Decision{Reason: "you need the deploy permission (roles that have it: deployer, admin)", Permission: "deploy", Roles: []string{"locker"}}},
		{"an unknown user has no roles",
			with(func(r *Request) { r.UserID = "mallory" }),
			Decision{Reason: "you need the deploy permission (roles that have it: deployer, admin)", Permission: "deploy"}},
		{"users are per adapter",
			with(func(r *Request) { r.Adapter, r.UserID = "slack", "bob" }),
			Decision{Reason: "you need the deploy permission (roles that have it: deployer, admin)", Permission: "deploy"}},
		{"* grants every permission",
			with(func(r *Request) { r.UserID = "alice" }),
			Decision{Allowed: true, Permission: "deploy", Roles: []string{"admin"}}},
		{"prefix:* grants what is under the prefix",
			with(func(r *Request) { r.Command, r.Permission = "unlock", "deploy:unlock" }),
			Decision{Allowed: true, Permission: "deploy:unlock", Roles: []string{"deployer", "locker"}}},
		{"prefix:* does not grant the bare prefix",
			Request{Adapter: "mattermost", Room: "x", UserID: "dave", Plugin: "ci", Command: "ci", Permission: "ci"},
			Decision{Reason: "you need the ci permission (roles that have it: admin)", Permission: "ci", Roles: []string{"ops"}}},
		{"roles granting by name come before wildcards in reasons",
			Request{Adapter: "shell", Room: "x", UserID: "nobody", Plugin: "deploy", Command: "lock", Permission: "deploy:lock"},
			Decision{Reason: "you need the deploy:lock permission (roles that have it: locker, deployer, admin)", Permission: "deploy:lock"}},
		{"a policy's permission overrides the manifest's",
			Request{Adapter: "shell", Room: "x", UserID: "carol", Plugin: "deploy", Command: "lock", Permission: "deploy"},
			Decision{Allowed: true, Permission: "deploy:lock", Roles: []string{"locker"}}},
		{"plugin/command is more specific than command",
			with(func(r *Request) { r.Command, r.Adapter, r.Room, r.UserID = "rollback", "slack", "C999", "U0BOB" }),
			Decision{Allowed: true, Permission: "deploy:rollback", Roles: []string{"deployer"}}},
		{"plugin/command restricts only that plugin's command",
			Request{Adapter: "slack", Room: "random", UserID: "U0BOB", Plugin: "other", Command: "rollback", Permission: ""},
			Decision{Allowed: true, Roles: []string{"deployer"}}},
		{"a room allowed only on another adapter is explained",
			Request{Adapter: "shell", Room: "general", UserID: "alice", Plugin: "ci", Command: "status"},
			Decision{Reason: "status cannot be run from shell; it is only allowed in mattermost:town-square", Roles: []string{"admin"}}},
		{"a leading # in the request room is ignored",
			with(func(r *Request) { r.Room = "#deployment" }),
			Decision{Allowed: true, Permission: "deploy", Roles: []string{"deployer", "locker"}}},
		{"command names are case-insensitive",
			with(func(r *Request) { r.Command, r.Room = "DEPLOY", "random" }),
			Decision{Reason: "DEPLOY is only allowed in #general or #deployment", Permission: "deploy", Roles: []string{"deployer", "locker"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Check(tt.req); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Check(%+v)\n got %#v\nwant %#v", tt.req, got, tt.want)
			}
		})
	}
}

func TestTheMostSpecificPolicyWins(t *testing.T) {
	p := New(roles, []config.Policy{
		{Command: "*", AllowedRooms: []string{"ops"}, Permission: "chat"},
		{Command: "deploy", AllowedRooms: []string{"deployment"}},
		{Command: "deploy/deploy", AllowedRooms: []string{"slack:C123"}},
	})
	tests := []struct {
		name string
		req  Request
		want Decision
	}{
		{"plugin/command over command",
			Request{Adapter: "slack", Room: "C123", UserID: "U0BOB", Plugin: "deploy", Command: "deploy", Permission: "deploy"},
			Decision{Allowed: true, Permission: "deploy", Roles: []string{"deployer"}}},
		{"plugin/command over command, refusing the command's rooms",
			Request{Adapter: "slack", Room: "deployment", UserID: "U0BOB", Plugin: "deploy", Command: "deploy", Permission: "deploy"},
			Decision{Reason: "deploy is only allowed in #C123", Permission: "deploy", Roles: []string{"deployer"}}},
		{"command over *, for another plugin's command of that name",
			Request{Adapter: "slack", Room: "deployment", UserID: "U0BOB", Plugin: "heroku", Command: "deploy", Permission: "deploy"},
			Decision{Allowed: true, Permission: "deploy", Roles: []string{"deployer"}}},
		{"* for commands without a policy of their own, with its permission",
			Request{Adapter: "shell", Room: "ops", UserID: "alice", Plugin: "hello", Command: "hello"},
			Decision{Allowed: true, Permission: "chat", Roles: []string{"admin"}}},
		{"*'s permission replaces the manifest's",
			Request{Adapter: "shell", Room: "ops", UserID: "bob", Plugin: "hello", Command: "hello", Permission: "hello"},
			Decision{Reason: "you need the chat permission (roles that have it: admin)", Permission: "chat", Roles: []string{"deployer", "locker"}}},
		{"*'s rooms",
			Request{Adapter: "shell", Room: "general", UserID: "alice", Plugin: "hello", Command: "hello"},
			Decision{Reason: "hello is only allowed in #ops", Permission: "chat", Roles: []string{"admin"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Check(tt.req); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestCommandsWithoutPermissionAreOpenToAll(t *testing.T) {
	p := New(nil, []config.Policy{{Command: "backup/run", AllowedRooms: []string{"ops"}}})
	tests := []struct {
		name string
		req  Request
		want Decision
	}{
		{"anyone, anywhere, when no policy matches",
			Request{Adapter: "shell", Room: "x", UserID: "anyone", Plugin: "hello", Command: "hello"},
			Decision{Allowed: true}},
		{"anyone in the allowed room",
			Request{Adapter: "slack", Room: "ops", UserID: "anyone", Plugin: "backup", Command: "run"},
			Decision{Allowed: true}},
		{"nobody elsewhere",
			Request{Adapter: "slack", Room: "general", UserID: "anyone", Plugin: "backup", Command: "run"},
			Decision{Reason: "run is only allowed in #ops"}},
		{"a manifest permission with no role having it",
			Request{Adapter: "shell", Room: "x", UserID: "anyone", Plugin: "hello", Command: "hello", Permission: "hello"},
			Decision{Reason: "you need the hello permission, and no role has it yet (an admin can grant it to a role in chima.yaml)", Permission: "hello"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Check(tt.req); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestExampleConfigPolicy(t *testing.T) {
	data, err := os.ReadFile("../../examples/config/chima.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.ParseWithOptions(data, "chima.yaml", "", config.ParseOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	p := New(c.Roles, c.Policies)
	tests := []struct {
		user, room string
		want       string // reason; "" = allowed
	}{
		{"alice", "general", ""},
		{"bob", "deployment", ""},
		{"bob", "random", "deploy is only allowed in #general or #deployment"},
		{"carol", "general", "you need the deploy permission (roles that have it: deployer, admin)"},
	}
	for _, tt := range tests {
		d := p.Check(Request{Adapter: c.Adapters[0].Name, Room: tt.room, UserID: tt.user, Plugin: "deploy", Command: "deploy", Permission: "deploy"})
		if d.Allowed != (tt.want == "") || d.Reason != tt.want {
			t.Errorf("%s in #%s: got %+v, want reason %q", tt.user, tt.room, d, tt.want)
		}
	}
}

func TestRoles(t *testing.T) {
	p := New(roles, nil)
	tests := []struct {
		adapter, user string
		want          []string
	}{
		{"shell", "bob", []string{"deployer", "locker"}},
		{"slack", "U024BE7LH", []string{"admin"}},
		{"slack", "alice", nil},
		{"irc", "bob", nil},
	}
	for _, tt := range tests {
		got := p.Roles(tt.adapter, tt.user)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Roles(%q, %q) = %q, want %q", tt.adapter, tt.user, got, tt.want)
		}
	}
	// The result is the caller's to keep.
	p.Roles("shell", "bob")[0] = "admin"
	if got := p.Roles("shell", "bob"); got[0] != "deployer" {
		t.Errorf("modifying a Roles result changed the policy: %q", got)
	}
}

func TestAllowedChecksDoNotAllocate(t *testing.T) {
	p := New(roles, policies)
	reqs := []Request{
		{Adapter: "slack", Room: "C123", UserID: "U0BOB", Plugin: "deploy", Command: "deploy", Permission: "deploy"},
		{Adapter: "shell", Room: "x", UserID: "alice", Plugin: "hello", Command: "hello", Permission: "hello"},
		{Adapter: "shell", Room: "general", UserID: "bob", Plugin: "deploy", Command: "unlock", Permission: "deploy:unlock"},
	}
	for _, r := range reqs {
		if !p.Check(r).Allowed {
			t.Fatalf("%+v not allowed", r)
		}
		if n := testing.AllocsPerRun(100, func() { p.Check(r) }); n != 0 {
			t.Errorf("Check(%+v) allocates %v times", r, n)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	p := New(roles, policies)
	cases := []struct {
		name string
		req  Request
	}{
		{"allowed", Request{Adapter: "slack", Room: "C123", UserID: "U0BOB", Plugin: "deploy", Command: "deploy", Permission: "deploy"}},
		{"allowed-wildcard", Request{Adapter: "shell", Room: "general", UserID: "bob", Plugin: "deploy", Command: "unlock", Permission: "deploy:unlock"}},
		{"denied-room", Request{Adapter: "slack", Room: "random", UserID: "U0BOB", Plugin: "deploy", Command: "deploy", Permission: "deploy"}},
		{"denied-permission", Request{Adapter: "shell", Room: "general", UserID: "carol", Plugin: "deploy", Command: "deploy", Permission: "deploy"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Check(c.req)
			}
		})
	}
}

func TestAllowedRoomsMatchARoomByItsIdOrItsName(t *testing.T) {
	p := New(roles, []config.Policy{{Command: "deploy", AllowedRooms: []string{"deployment", "slack:ops", "slack:C0SHIP"}}})
	tests := []struct {
		name           string
		adapter        string
		room, roomName string
		allowed        bool
	}{
		{"an id whose name is listed", "slack", "C024BE91L", "deployment", true},
		{"an id whose name is listed for its adapter", "slack", "C0OPS", "ops", true},
		{"an id whose name is listed for another adapter", "mattermost", "x1", "ops", false},
		{"an id listed as such", "slack", "C0SHIP", "shipping", true},
		{"an id whose name is not listed", "slack", "C0GENERAL", "general", false},
		{"an id without a known name", "slack", "C024BE91L", "", false},
		{"a name, as adapters without a directory give", "shell", "deployment", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Check(Request{Adapter: tt.adapter, Room: tt.room, RoomName: tt.roomName, UserID: "U024BE7LH", Plugin: "deploy", Command: "deploy"})
			if d.Allowed != tt.allowed {
				t.Fatalf("allowed = %v (%s), want %v", d.Allowed, d.Reason, tt.allowed)
			}
		})
	}
}
