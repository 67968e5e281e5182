package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/core/pluginhost"
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

// `chima plugins` without a running bot starts the plugins just for the
// listing: a plugin that could not start is not retried, so no next try is
// promised, and it has told no protocol minor.
func TestAOneShotListingPromisesNoRetryAndNoProtocolItWasNotTold(t *testing.T) {
	st := []pluginhost.Status{{
		Name: "deploy", State: pluginhost.StateFailed, ProtocolVersion: 1, FailedToStart: true,
		LastError: "configure deploy: apps.json: bad", NextRetry: time.Now().Add(5 * time.Second),
	}}
	var oneShot, live bytes.Buffer
	printPlugins(&oneShot, st, listingSource, true)
	if s := oneShot.String(); strings.Contains(s, "next try") || strings.Contains(s, "1.0") {
		t.Errorf("a one-shot listing says:\n%s", s)
	}
	printPlugins(&live, st, "live, from the bot at http://127.0.0.1:8080", false)
	if s := live.String(); !strings.Contains(s, "next try in") {
		t.Errorf("a live listing lacks the next try:\n%s", s)
	}
}
