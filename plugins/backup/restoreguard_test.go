package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chimaops/chima/sdk/sdktest"
)

func TestRestoreGrammarTakesTheTargetsNameTypedBackAfterInPlace(t *testing.T) {
	re := regexp.MustCompile(`^` + restorePattern + `$`)
	cases := []struct {
		name, line       string
		inplace, confirm string
		matches          bool
	}{
		{"in place alone", "backup:restore demo-db in place", "in place", "", true},
		{"in place with the name typed back", "backup:restore demo-db in place confirm demo-db", "in place", "demo-db", true},
		{"a snapshot, in place, the name typed back", "backup:restore demo-db 4f1c2a9e in place confirm demo-db", "in place", "demo-db", true},
		{"another name typed back still parses (the handler refuses it)", "backup:restore demo-db in place confirm other", "in place", "other", true},
		{"confirm without a name", "backup:restore demo-db in place confirm", "", "", false},
		{"confirm without in place", "backup:restore demo-db confirm demo-db", "", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := re.FindStringSubmatch(c.line)
			if (m != nil) != c.matches {
				t.Fatalf("%q matched = %v, want %v", c.line, m != nil, c.matches)
			}
			if m == nil {
				return
			}
			if got := m[re.SubexpIndex("inplace")]; got != c.inplace {
				t.Errorf("inplace = %q, want %q", got, c.inplace)
			}
			if got := m[re.SubexpIndex("confirm")]; got != c.confirm {
				t.Errorf("confirm = %q, want %q", got, c.confirm)
			}
		})
	}
}

func TestInPlaceRestoreWithoutTheTargetsNameTypedBackAnswersWithTheCommandToType(t *testing.T) {
	t.Parallel()
	b := newBed(t, sqliteTargets)
	path := filepath.Join(b.dir, "app.db")
	sqliteExec(t, path, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", "INSERT INTO users (name) VALUES ('a'), ('b'), ('c')")
	if j := b.job("backup", sdktest.Args{"target": "app-db"}); outcome(j) != "success" {
		t.Fatalf("backup: %s", allText(j))
	}
	sqliteExec(t, path, "DELETE FROM users WHERE id > 1")

	cases := []struct {
		name string
		args sdktest.Args
		want string
	}{
		{"no name typed back", sdktest.Args{"target": "app-db", "inplace": "in place"},
			"type its name back to go ahead: `backup:restore app-db in place confirm app-db`"},
		{"another name typed back", sdktest.Args{"target": "app-db", "inplace": "in place", "confirm": "app-dbb"},
			`"app-dbb" is not app-db.`},
		{"the command to type keeps the snapshot", sdktest.Args{"target": "app-db", "snapshot": "latest", "inplace": "in place"},
			"`backup:restore app-db latest in place confirm app-db`"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, approved := range []bool{false, true} {
				res := b.h.Command("backup:restore", c.args)
				if approved { // an approval does not stand in for the name
					res = b.h.ApprovedCommand("backup:restore", c.args, approval())
				}
				if res.ApprovalNeeded != nil {
					t.Fatalf("approved=%v: asked for approval before the name was typed back", approved)
				}
				if text := allText(res); !strings.Contains(text, "Nothing was restored") || !strings.Contains(text, c.want) {
					t.Fatalf("approved=%v: answered %q; want it to contain %q", approved, text, c.want)
				}
			}
		})
	}
	if n := len(b.h.Host.Enqueued()); n != 1 {
		t.Fatalf("%d jobs enqueued; want only the backup's", n)
	}
	if got := sqliteCount(t, path, "users"); got != 1 {
		t.Fatalf("users = %d; want the data untouched (1)", got)
	}

	// Typed back, it asks for approval.
	res := b.h.Command("backup:restore", sdktest.Args{"target": "app-db", "inplace": "in place", "confirm": "app-db"})
	if res.ApprovalNeeded == nil || !strings.Contains(res.ApprovalNeeded.Options.Reason, "in place replaces its live data") {
		t.Fatalf("typed back: %s (approval %v); want an approval asked", allText(res), res.ApprovalNeeded)
	}
}
