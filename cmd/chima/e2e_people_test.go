package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// peopleConfig is writeConfig with the admin role granted to the person
// alice, who speaks as shell:alice and shell:al.
func peopleConfig(t *testing.T) string {
	t.Helper()
	path := writeConfig(t, "people:\n  alice: [shell:alice, shell:al]\n")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const before = `admin: {users: ["shell:alice"], permissions: ["*"]}`
	if !strings.Contains(string(data), before) {
		t.Fatalf("writeConfig no longer grants admin as %s", before)
	}
	cfg := strings.Replace(string(data), before, `admin: {people: [alice], permissions: ["*"]}`, 1)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// lines reads output lines up to and including the first that contains
// last (a failure guard of 10s applies; it asserts no duration).
func (c *console) lines(t *testing.T, last string) []string {
	t.Helper()
	got := make(chan []string, 1)
	go func() {
		var out []string
		for c.out.Scan() {
			out = append(out, c.out.Text())
			if os.Getenv("CHIMA_TEST_ECHO") != "" {
				fmt.Println("OUT:", c.out.Text())
			}
			if strings.Contains(c.out.Text(), last) {
				got <- out
				return
			}
		}
		got <- nil
	}()
	select {
	case out := <-got:
		if out == nil {
			t.Fatalf("output ended without %q", last)
		}
		return out
	case <-time.After(10 * time.Second):
		t.Fatalf("no output line with %q", last)
	}
	return nil
}

// listsAdmin reports whether help's lines list crashy's admin command.
func listsAdmin(lines []string) bool {
	for _, l := range lines {
		if strings.TrimSpace(l) == "admin" || strings.HasPrefix(strings.TrimSpace(l), "admin — ") {
			return true
		}
	}
	return false
}

func TestPeopleOneRoleOnEveryAccountOfAPerson(t *testing.T) {
	c := startConsole(t, peopleConfig(t))

	// al is alice: the admin role granted to the person holds.
	c.say(t, "/user al")
	c.say(t, "chima admin")
	c.expect(t, "admin done")
	c.say(t, "chima help")
	if help := c.lines(t, "for the details of one command"); !listsAdmin(help) {
		t.Errorf("help to al does not list admin:\n%s", strings.Join(help, "\n"))
	}

	// bob is nobody in people and has no role.
	c.say(t, "/user bob")
	c.say(t, "chima admin")
	c.expect(t, "you need the admin:do permission")
	c.say(t, "chima help")
	if help := c.lines(t, "not listed"); listsAdmin(help) {
		t.Errorf("help to bob lists admin:\n%s", strings.Join(help, "\n"))
	}
	c.say(t, "chima help admin")
	c.expect(t, "You cannot run it: you need the admin:do permission")
}
