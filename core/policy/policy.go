// Package policy decides whether a user may run a command in a room, from the
// roles and policies of chima.yaml.
//
// A command is checked in two steps. First the room: the most specific policy
// that matches the command ("plugin/command", then "command", then "*") may
// restrict it to some rooms. Then the permission: the policy's permission if
// it sets one, else the one the plugin's manifest declares; a command that
// needs none is allowed to anyone who passed the room check, otherwise the
// user must hold a role granting the permission ("deploy", or a wildcard
// "deploy:*" / "*").
//
// A person (config people:) is one identity across adapters: their accounts
// share one set of grants, so a role granted to the person, or to any one of
// their accounts, applies whichever adapter they speak from; Decision.Person
// names them for the audit, locks and approvals.
//
// Several policies may name one command. The policies of the most specific
// level that has any ("plugin/command", then "command", then "*") apply,
// each one whose when matches the command's arguments: every one's rooms
// must allow the room, the last one that sets a permission sets it, and
// the first one with an approval makes the command wait for approval
// (Decision.Approval says by whom).
//
// New precomputes everything; Check does map lookups only and does not
// allocate when it allows, with or without an approval (it is on the
// dispatch path of every command).
package policy

import (
	"slices"
	"strings"
	"time"

	"github.com/chimaops/chima/core/config"
)

// Request is one command to decide on.
type Request struct {
	// Adapter, Room and UserID say where the command was typed and by whom,
	// as the adapter names them ("slack", "C123", "U024BE7LH").
	Adapter, Room, UserID string
	// RoomName is Room's name when Room is an id ("deployment" for
	// "C123"), for policies that name their rooms; "" when unknown.
	// allowed_rooms may list a room by either.
	RoomName string
	// Plugin and Command name the command ("deploy", "deploy").
	Plugin, Command string
	// Permission is what the plugin's manifest requires for the command
	// ("" = none).
	Permission string
	// Direct is true for a direct message to the bot rather than a room.
	Direct bool
	// Args are the command's parsed arguments by name, for policies with
	// when; nil when there are none.
	Args map[string]string
}

// Approval is what a policy requires before a command runs: that Count
// distinct approvers, none of them the requester, approve within TTL.
type Approval struct {
	// Approvers are the roles and people who may approve.
	Approvers []string
	// Count is how many distinct people must approve (at least 1).
	Count int
	// TTL is how long a request stays open.
	TTL time.Duration
}

// Decision is the outcome of Check.
type Decision struct {
	// Allowed is true when the command may run.
	Allowed bool
	// Reason says why not, for the person in chat ("deploy is only allowed in
	// #deployment", "you need the deploy permission (roles that have it:
	// deployer, admin)"). Empty when allowed.
	Reason string
	// Permission is the permission the command needed (policy or manifest),
	// "" for none.
	Permission string
	// Roles are the user's roles, sorted: for the audit log. The slice is
	// shared by every decision for that user; do not modify it.
	Roles []string
	// Person is the person (config people:) the account belongs to, ""
	// when it belongs to none: who asked, whichever adapter they used.
	Person string
	// Approval, when the command is allowed, says that it must be
	// approved before it runs, and by whom; nil when it may run now. It is
	// shared by every decision of its policy; do not modify it.
	Approval *Approval
}

// Policy decides on requests. It is immutable after New and safe for
// concurrent use.
type Policy struct {
	users     map[string]map[string]*grants // adapter → user id → what they hold; a person's accounts share one
	qualified map[commandKey][]*rule        // "plugin/command" policies
	commands  map[string][]*rule            // "command" policies
	star      []*rule                       // the "*" policies
	roles     []namedRole                   // every role, sorted by name
	people    map[string][]string           // person → their "adapter:id" accounts
	members   map[string][]string           // role → the "adapter:id" accounts it is granted to
}

type commandKey struct{ plugin, command string }

type roomKey struct{ adapter, room string }

// rule is a compiled config.Policy.
type rule struct {
	restricted bool                // allowed_rooms was not empty
	anyRooms   map[string]struct{} // "room": that room on any adapter
	rooms      map[roomKey]struct{}
	entries    []roomKey // every allowed room in config order (adapter "" = any), for reasons
	permission string
	when       []condition // all must match; none: the rule always applies
	approval   *Approval
}

// condition is one argument of a policy's when and the values it matches.
type condition struct {
	arg    string
	values []string
}

// grants is a permission set: the union of one user's roles, or one role's.
type grants struct {
	roles    []string // the user's role names, sorted (nil for a role's own grants)
	person   string   // the person whose accounts these are, "" for a lone account
	all      bool     // "*"
	exact    map[string]struct{}
	prefixes []string // "deploy:" for "deploy:*"
}

type namedRole struct {
	name string
	g    *grants
}

// New compiles roles and policies, as validated by config, into a Policy
// with no people: NewWithPeople(nil, roles, policies).
func New(roles map[string]config.Role, policies []config.Policy) *Policy {
	return NewWithPeople(nil, roles, policies)
}

// NewWithPeople compiles people (person → "adapter:userid" accounts), roles
// and policies, as validated by config, into a Policy. Malformed entries
// (which config validation rejects) are ignored; an account listed for two
// people belongs to the first in name order.
func NewWithPeople(people map[string][]string, roles map[string]config.Role, policies []config.Policy) *Policy {
	p := &Policy{
		users:     map[string]map[string]*grants{},
		qualified: map[commandKey][]*rule{},
		commands:  map[string][]*rule{},
		people:    map[string][]string{},
		members:   map[string][]string{},
	}
	// Every account of a person points at the person's one grants, which
	// roles then fill: Check stays one lookup by (adapter, id).
	byPerson := map[string]*grants{}
	for _, person := range sortedKeys(people) {
		g := &grants{person: person, exact: map[string]struct{}{}}
		byPerson[person] = g
		p.people[person] = slices.Clone(people[person])
		for _, u := range people[person] {
			adapter, id, ok := strings.Cut(u, ":")
			if !ok || adapter == "" || id == "" || p.users[adapter][id] != nil {
				continue
			}
			p.account(adapter, id, g)
		}
	}
	for _, name := range sortedKeys(roles) {
		role := roles[name]
		rg := &grants{exact: map[string]struct{}{}}
		rg.add(role.Permissions)
		p.roles = append(p.roles, namedRole{name: name, g: rg})
		for _, person := range role.People {
			if g := byPerson[person]; g != nil {
				g.grant(name, role.Permissions)
				p.members[name] = append(p.members[name], p.people[person]...)
			}
		}
		p.members[name] = append(p.members[name], role.Users...)
		for _, u := range role.Users {
			adapter, id, ok := strings.Cut(u, ":")
			if !ok || adapter == "" || id == "" {
				continue
			}
			g := p.users[adapter][id] // a person's, when the account is one of theirs
			if g == nil {
				g = &grants{exact: map[string]struct{}{}}
				p.account(adapter, id, g)
			}
			g.grant(name, role.Permissions)
		}
	}
	for _, byID := range p.users {
		for _, g := range byID {
			g.roles = slices.Clip(g.roles)
		}
	}
	for _, pol := range policies {
		r := &rule{
			restricted: len(pol.AllowedRooms) > 0,
			anyRooms:   map[string]struct{}{},
			rooms:      map[roomKey]struct{}{},
			permission: pol.Permission,
		}
		for _, arg := range sortedKeys(pol.When) {
			r.when = append(r.when, condition{arg: strings.ToLower(arg), values: slices.Clone(pol.When[arg])})
		}
		if a := pol.Approval; a != nil {
			r.approval = &Approval{Approvers: slices.Clone(a.Approvers), Count: max(a.Count, 1), TTL: a.TTL}
			if r.approval.TTL <= 0 {
				r.approval.TTL = config.DefaultApprovalTTL
			}
		}
		for _, entry := range pol.AllowedRooms {
			adapter, room, qualified := strings.Cut(entry, ":")
			if !qualified {
				adapter, room = "", entry
			}
			room = strings.TrimPrefix(room, "#")
			if room == "" {
				continue
			}
			if adapter == "" {
				r.anyRooms[room] = struct{}{}
			} else {
				r.rooms[roomKey{adapter, room}] = struct{}{}
			}
			r.entries = append(r.entries, roomKey{adapter, room})
		}
		cmd := strings.ToLower(pol.Command)
		switch plugin, command, qualified := strings.Cut(cmd, "/"); {
		case cmd == "*":
			p.star = append(p.star, r)
		case qualified:
			k := commandKey{plugin, command}
			p.qualified[k] = append(p.qualified[k], r)
		case cmd != "":
			p.commands[cmd] = append(p.commands[cmd], r)
		}
	}
	return p
}

// account makes g what the account (adapter, id) holds.
func (p *Policy) account(adapter, id string, g *grants) {
	byID := p.users[adapter]
	if byID == nil {
		byID = map[string]*grants{}
		p.users[adapter] = byID
	}
	byID[id] = g
}

// grant adds the role name with its permissions. Roles are granted in name
// order, so g.roles stays sorted.
func (g *grants) grant(name string, perms []string) {
	if !slices.Contains(g.roles, name) {
		g.roles = append(g.roles, name)
	}
	g.add(perms)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// add grants the permission patterns perms.
func (g *grants) add(perms []string) {
	for _, perm := range perms {
		switch {
		case perm == "*":
			g.all = true
		case strings.HasSuffix(perm, ":*"):
			prefix := strings.TrimSuffix(perm, "*")
			if !slices.Contains(g.prefixes, prefix) {
				g.prefixes = append(g.prefixes, prefix)
			}
		case perm != "":
			g.exact[perm] = struct{}{}
		}
	}
}

// match reports how g grants perm: 0 not at all, 1 by name, 2 by a prefix
// wildcard, 3 by "*".
func (g *grants) match(perm string) int {
	if g == nil {
		return 0
	}
	if _, ok := g.exact[perm]; ok {
		return 1
	}
	for _, prefix := range g.prefixes {
		if strings.HasPrefix(perm, prefix) {
			return 2
		}
	}
	if g.all {
		return 3
	}
	return 0
}

// Roles returns the sorted role names of the user (nil when they have none).
func (p *Policy) Roles(adapter, userID string) []string {
	if g := p.users[adapter][userID]; g != nil {
		return slices.Clone(g.roles)
	}
	return nil
}

// Person returns the person (config people:) the account belongs to, or ""
// when it belongs to none.
func (p *Policy) Person(adapter, userID string) string {
	if g := p.users[adapter][userID]; g != nil {
		return g.person
	}
	return ""
}

// Permitted is the permission step of Check alone, without the room: whether
// the user holds the permission the command needs (the policy's, else
// permission, the manifest's), and if not, why not. Help uses it to show
// each caller the commands they may run, wherever they ask from.
//
// Only policies without when count here: help knows no arguments.
func (p *Policy) Permitted(adapter, userID, plugin, command, permission string) (bool, string) {
	for _, rl := range p.rulesFor(strings.ToLower(plugin), strings.ToLower(command)) {
		if len(rl.when) == 0 && rl.permission != "" {
			permission = rl.permission
		}
	}
	if permission == "" || p.users[adapter][userID].match(permission) > 0 {
		return true, ""
	}
	return false, p.permissionReason(permission)
}

// Check decides whether r may run.
func (p *Policy) Check(r Request) Decision {
	command := strings.ToLower(r.Command) // no allocation when already lower case
	rules := p.rulesFor(strings.ToLower(r.Plugin), command)
	g := p.users[r.Adapter][r.UserID]
	d := Decision{Permission: r.Permission}
	if g != nil {
		d.Roles, d.Person = g.roles, g.person
	}
	var approval *Approval
	for _, rl := range rules {
		if !rl.applies(r.Args) {
			continue
		}
		if rl.permission != "" {
			d.Permission = rl.permission
		}
		if approval == nil {
			approval = rl.approval
		}
		if rl.restricted && !rl.allows(r.Adapter, r.Room) && (r.RoomName == "" || !rl.allows(r.Adapter, r.RoomName)) {
			d.Reason = rl.roomReason(r)
			return d
		}
	}
	if d.Permission == "" || g.match(d.Permission) > 0 {
		d.Allowed, d.Approval = true, approval
		return d
	}
	d.Reason = p.permissionReason(d.Permission)
	return d
}

// rulesFor returns the policies of the most specific level that has any
// for the command.
func (p *Policy) rulesFor(plugin, command string) []*rule {
	if plugin != "" {
		if rules := p.qualified[commandKey{plugin, command}]; rules != nil {
			return rules
		}
	}
	if rules := p.commands[command]; rules != nil {
		return rules
	}
	return p.star
}

// applies reports whether the rule's when matches args: every argument it
// names has one of its values (compared without case).
func (rl *rule) applies(args map[string]string) bool {
	for _, c := range rl.when {
		v, ok := args[c.arg]
		if !ok || !slices.ContainsFunc(c.values, func(want string) bool { return strings.EqualFold(want, v) }) {
			return false
		}
	}
	return true
}

// ApprovalFor returns the approval of the first policy of the command that
// has one, whatever its when, or nil: the approvers of a command whose
// plugin asks for approval without naming any.
func (p *Policy) ApprovalFor(plugin, command string) *Approval {
	for _, rl := range p.rulesFor(strings.ToLower(plugin), strings.ToLower(command)) {
		if rl.approval != nil {
			return rl.approval
		}
	}
	return nil
}

// WhenArgs returns, for each policy with when (by its index in the config's
// policies), the argument names it tests, for checks at start that they are
// arguments of the command.
func WhenArgs(policies []config.Policy) map[int][]string {
	out := map[int][]string{}
	for i, pol := range policies {
		if len(pol.When) > 0 {
			out[i] = sortedKeys(pol.When)
		}
	}
	return out
}

// Identity names who the account is, for approvals and the audit: their
// person, or "adapter:userid" for an account that belongs to none.
func (p *Policy) Identity(adapter, userID string) string {
	if person := p.Person(adapter, userID); person != "" {
		return person
	}
	return adapter + ":" + userID
}

// IsApprover reports whether the account is one of approvers: its person is
// named, or it holds a role that is.
func (p *Policy) IsApprover(approvers []string, adapter, userID string) bool {
	g := p.users[adapter][userID]
	if g == nil {
		return false
	}
	for _, name := range approvers {
		if (g.person != "" && g.person == name) || slices.Contains(g.roles, name) {
			return true
		}
	}
	return false
}

// Known reports whether name is a role or a person, which approvers must
// be.
func (p *Policy) Known(name string) bool {
	if _, ok := p.people[name]; ok {
		return true
	}
	return slices.ContainsFunc(p.roles, func(r namedRole) bool { return r.name == name })
}

// ApproverAccounts returns the "adapter:userid" accounts of approvers (the
// accounts of the people named, and of the members of the roles named),
// sorted, each once: whom to ask.
func (p *Policy) ApproverAccounts(approvers []string) []string {
	var out []string
	for _, name := range approvers {
		out = append(out, p.people[name]...)
		out = append(out, p.members[name]...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (rl *rule) allows(adapter, room string) bool {
	room = strings.TrimPrefix(room, "#")
	if _, ok := rl.anyRooms[room]; ok {
		return true
	}
	_, ok := rl.rooms[roomKey{adapter, room}]
	return ok
}

// roomReason explains a room refusal with the rooms usable from the
// requester's adapter, or, when there are none, every allowed room.
func (rl *rule) roomReason(r Request) string {
	var here, all []string
	for _, e := range rl.entries {
		if e.adapter == "" || e.adapter == r.Adapter {
			here = append(here, "#"+e.room)
		}
		if e.adapter == "" {
			all = append(all, "#"+e.room)
		} else {
			all = append(all, e.adapter+":"+e.room)
		}
	}
	name := r.Command
	if len(here) == 0 {
		if len(all) == 0 {
			return name + " is not allowed in any room"
		}
		return name + " cannot be run from " + r.Adapter + "; it is only allowed in " + orList(all)
	}
	s := name + " is only allowed in " + orList(here)
	if r.Direct {
		s += ", not in a direct message"
	}
	return s
}

// permissionReason tells the user what they lack and which roles have it:
// roles granting it by name first, then by wildcard, then "*".
func (p *Policy) permissionReason(perm string) string {
	type ranked struct {
		name string
		rank int
	}
	var have []ranked
	for _, nr := range p.roles {
		if m := nr.g.match(perm); m > 0 {
			have = append(have, ranked{nr.name, m})
		}
	}
	if len(have) == 0 {
		return "you need the " + perm + " permission, and no role has it yet (an admin can grant it to a role in chima.yaml)"
	}
	slices.SortStableFunc(have, func(a, b ranked) int { return a.rank - b.rank })
	names := make([]string, len(have))
	for i, h := range have {
		names[i] = h.name
	}
	return "you need the " + perm + " permission (roles that have it: " + strings.Join(names, ", ") + ")"
}

// orList renders ["#a"] as "#a", ["#a", "#b"] as "#a or #b" and longer lists
// as "#a, #b or #c".
func orList(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
