package config

import (
	"reflect"
	"strings"
	"testing"
)

// shellAndSlack is valid with a shell and a slack adapter, for people who
// speak from both.
const shellAndSlack = `bot:
  name: chima
adapters:
  - name: shell
    type: shell
  - name: slack
    type: slack
`

func TestPeopleAndTheRolesGrantedToThemAreRead(t *testing.T) {
	c := mustParse(t, shellAndSlack+`people:
  alice: [slack:U024BE7LH, shell:alice]
  bob.smith: [shell:bob]
roles:
  deployer: {people: [alice, bob.smith], users: ['shell:carol'], permissions: [deploy]}
`)
	if want := map[string][]string{"alice": {"slack:U024BE7LH", "shell:alice"}, "bob.smith": {"shell:bob"}}; !reflect.DeepEqual(c.People, want) {
		t.Errorf("People = %v, want %v", c.People, want)
	}
	r := c.Roles["deployer"]
	if want := []string{"alice", "bob.smith"}; !reflect.DeepEqual(r.People, want) {
		t.Errorf("deployer.People = %v, want %v", r.People, want)
	}
	if want := []string{"shell:carol"}; !reflect.DeepEqual(r.Users, want) {
		t.Errorf("deployer.Users = %v, want %v", r.Users, want)
	}
}

func TestMistakesInPeopleAreReportedWithLineAndKey(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"account without adapter", "people:\n  alice: [alice]\n",
			`chima.yaml:9: people.alice[0]: "alice": accounts are written adapter:userid, like shell:alice or slack:U024BE7LH`},
		{"account on an adapter that is not configured", "people:\n  alice: ['irc:alice']\n",
			`chima.yaml:9: people.alice[0]: "irc:alice": no adapter named "irc" is configured (adapters: shell, slack)`},
		{"account id with a space", "people:\n  alice: ['shell:alice smith']\n",
			`chima.yaml:9: people.alice[0]: "shell:alice smith": user ids have no spaces`},
		{"person name with upper case", "people:\n  Alice: ['shell:alice']\n",
			`chima.yaml:9: people.Alice: person name "Alice": start with a lowercase letter, then use lowercase letters, digits, '.', '-' and '_' only`},
		{"person name starting with a digit", "people:\n  1alice: ['shell:alice']\n",
			`chima.yaml:9: people.1alice: person name "1alice": start with a lowercase letter, then use lowercase letters, digits, '.', '-' and '_' only`},
		{"one account for two people", "people:\n  alice: ['shell:al']\n  bob:\n    - shell:bob\n    - shell:al\n",
			`chima.yaml:12: people.bob[1]: "shell:al" is already listed at line 9; an account belongs to one person only`},
		{"one account twice for one person", "people:\n  alice: ['shell:al', 'shell:al']\n",
			`chima.yaml:9: people.alice[1]: "shell:al" is already listed at line 9; an account belongs to one person only`},
		{"role granted to an unknown person", "people:\n  alice: ['shell:alice']\nroles:\n  deployer:\n    people: [alice, bob]\n",
			`chima.yaml:12: roles.deployer.people[1]: "bob": no person of that name is in people: (people: alice)`},
		{"role granted to a person with no people at all", "roles:\n  deployer:\n    people: [bob]\n",
			`chima.yaml:10: roles.deployer.people[0]: "bob": no person of that name is in people: (people: none)`},
		{"people that is not a mapping of lists", "people:\n  alice: shell:alice\n",
			`chima.yaml:9: people.alice: expected a list, got "shell:alice"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, shellAndSlack+tt.src)
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("problems:\n%s\nwant exactly:\n%s", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}

func TestQualifiedUsersStillWorkBesidePeople(t *testing.T) {
	// An account of a person may still be listed in users: (a config from
	// before people: keeps loading); policy grants the role to the person.
	mustParse(t, shellAndSlack+`people:
  alice: [shell:alice]
roles:
  admin: {users: ['shell:alice', 'slack:U1'], permissions: ["*"]}
`)
}

func TestRunAsNamesPeopleAndAccounts(t *testing.T) {
	c := mustParse(t, shellAndSlack+`people:
  alice: [shell:alice]
plugins:
  - {name: ci, path: /bin/true, run_as: [alice, "slack:U123"]}
`)
	if want := []string{"alice", "slack:U123"}; !reflect.DeepEqual(c.Plugins[0].RunAs, want) {
		t.Errorf("RunAs = %v, want %v", c.Plugins[0].RunAs, want)
	}
}

func TestMistakesInRunAsAreReportedWithLineAndKey(t *testing.T) {
	tests := []struct {
		name, runAs, want string
	}{
		{"a person not in people", `[bob]`,
			`chima.yaml:13: plugins[0].run_as[0]: "bob": no person of that name is in people: (people: alice); name a person, or an account as adapter:userid`},
		{"an account on an unknown adapter", `["irc:bob"]`,
			`chima.yaml:13: plugins[0].run_as[0]: "irc:bob": no adapter named "irc" is configured (adapters: shell, slack)`},
		{"an account without an id", `["slack:"]`,
			`chima.yaml:13: plugins[0].run_as[0]: "slack:": accounts are written adapter:userid, like shell:alice or slack:U024BE7LH`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, shellAndSlack+"people:\n  alice: [shell:alice]\nplugins:\n  - name: ci\n    path: /bin/true\n    run_as: "+tt.runAs+"\n")
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("problems:\n%s\nwant exactly:\n%s", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}
