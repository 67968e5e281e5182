package router

import (
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chimaops/chima/core/chat"
)

// FuzzParse checks that Parse and Addressed never panic, and that every
// match carries every required argument with a value of its declared type.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "help", "help deploy", "deploy project-x/feature-1 to edge", "deploy! x to live",
		"deploy:migrate! api/v1 in production/web-1", "deploy:lock app in env reason here",
		`hello "Ada Lovelace"`, `hello "unterminated`, "hello “curly”", `note "" body`,
		"scale web 3 90s yes Large", "scale web x", "scale web 1 1h on small extra",
		"echo   raw \"text\"", "login ada 0123abcd", "ci web main", "are you there?",
		"deplyo x", "chima: deploy x", "@chima hello", "!hello", "\u212Aeep", "deploy\u00a0x",
		"\xff\xfe", "dep\x00loy x",
	} {
		f.Add(s)
	}
	r := newTestRouter(f)
	f.Fuzz(func(t *testing.T, text string) {
		if text2, ok := r.Addressed(chat.Message{Text: text}); ok && len(text2) > len(text) {
			t.Fatalf("Addressed(%q) grew the text to %q", text, text2)
		}
		res := r.Parse(text)
		if res.Kind < Matched || res.Kind > TooLong {
			t.Fatalf("Parse(%q) returned kind %v", text, res.Kind)
		}
		if res.Kind != Matched {
			return
		}
		if res.Command == nil || res.Args == nil {
			t.Fatalf("Parse(%q) matched without a command or args: %+v", text, res)
		}
		tab := r.tab.Load()
		c := tab.byKey[res.Command.GetName()]
		if c == nil || c.plugin != res.Plugin {
			t.Fatalf("Parse(%q) matched %q of %q, which is not registered", text, res.Command.GetName(), res.Plugin)
		}
		for _, a := range c.args {
			v, ok := res.Args[a.name]
			if a.required && (!ok || v == "") {
				t.Fatalf("Parse(%q) matched %q without required %q: %v", text, c.name, a.name, res.Args)
			}
			if !ok {
				continue
			}
			if !utf8.ValidString(v) && utf8.ValidString(text) {
				t.Fatalf("Parse(%q) produced invalid UTF-8 %q for %q", text, v, a.name)
			}
			switch a.typ {
			case tInt:
				if _, err := strconv.ParseInt(v, 10, 64); err != nil {
					t.Fatalf("Parse(%q): %s = %q is not an int", text, a.name, v)
				}
			case tBool:
				if v != "true" && v != "false" {
					t.Fatalf("Parse(%q): %s = %q is not normalised", text, a.name, v)
				}
			case tDuration:
				if _, err := time.ParseDuration(v); err != nil {
					t.Fatalf("Parse(%q): %s = %q is not a duration", text, a.name, v)
				}
			}
		}
		for name := range res.Args {
			found := false
			for _, a := range c.args {
				found = found || a.name == name
			}
			if !found {
				t.Fatalf("Parse(%q) invented argument %q", text, name)
			}
		}
	})
}
