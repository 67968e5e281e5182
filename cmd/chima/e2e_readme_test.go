package main

import (
	"strings"
	"testing"
)

// The console greets a new user once: who and where they are, how to get
// help, how to quit; no line repeats what another says.
func TestTheConsoleGreetingSaysEachThingOnce(t *testing.T) {
	tm := startTerminal(t, writeConfig(t, ""))
	tm.waitSeen(t, "/help lists the console commands")
	tm.keys(t, "chima hello world", "Enter")
	tm.waitSeen(t, "Hello, world!")
	// What comes before the first prompt.
	greeting, _, _ := strings.Cut(tm.screen(t), "general alice>")
	for _, want := range []string{"alice", "general", "/help", "Ctrl-C twice"} {
		if n := strings.Count(greeting, want); n != 1 {
			t.Errorf("the greeting says %q %d times, want once:\n%s", want, n, greeting)
		}
	}
}
