package bot_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/chimaops/chima/core/redact"
	"github.com/chimaops/chima/core/store"
)

func TestCommandOfAPluginThatCrashedTooOftenSaysItIsDownAndWhatAnOperatorCanDo(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"crashy"}})
	for range 3 { // max_restarts 3: three crashes are restarted
		tb.say("chima exit")
		tb.expect("about to exit")
		tb.expect("The crashy plugin crashed while handling `exit`; it was restarted.")
	}
	tb.say("chima exit")
	tb.expect("about to exit")
	tb.expect("The crashy plugin crashed while handling `exit`, and is down now (it crashed 4 times within 1m0s; next restart in ")
	tb.say("chima echo hi")
	s := tb.expect("The crashy plugin is down (it crashed 4 times within 1m0s; next restart in ")
	if text := s.Out.PlainText(); !strings.Contains(text, "An operator can see why with `chima plugins` and the bot's log.") ||
		strings.Contains(text, "try again later") || strings.Contains(text, "crashed while handling") {
		t.Fatalf("bot said %q", text)
	}
}

func TestCommandsOfAPluginThatCouldNotStartSayWhy(t *testing.T) {
	bad := map[string]map[string]any{"crashy": {"fail_configure": "yes"}}
	t.Run("named by the plugin's name, never started", func(t *testing.T) {
		tb := startBot(t, botOptions{plugins: []string{"crashy"}, settings: bad, startErrsOK: true})
		tb.say("chima crashy:echo hi")
		tb.expect("The crashy plugin could not start: configure crashy: configure refused on purpose; next try in ")
	})
	t.Run("a command of its last manifest", func(t *testing.T) {
		db := t.TempDir() + "/chima.db"
		good := startBot(t, botOptions{plugins: []string{"crashy"}, dbPath: db})
		good.say("chima echo once")
		good.expect("once")
		good.stop()

		tb := startBot(t, botOptions{plugins: []string{"crashy"}, settings: bad, startErrsOK: true, dbPath: db})
		tb.say("chima echo hi")
		tb.expect("The crashy plugin could not start: configure crashy: configure refused on purpose; next try in ")
		tb.say("chima help")
		tb.expect("crashy (not running: failed)")
	})
}

func TestSecretValuesAreMaskedInRepliesAuditAndStoredText(t *testing.T) {
	const secret = "hunter2-s3cr3t"
	tb := startBot(t, botOptions{plugins: []string{"crashy"}, redactor: redact.New(secret)})
	tb.say("chima echo the token is " + secret)
	if s := tb.expect("the token is [redacted]"); strings.Contains(s.Out.PlainText(), secret) {
		t.Fatalf("reply holds the secret: %q", s.Out.PlainText())
	}
	tb.say("chima kv note " + secret)
	tb.expect("note=[redacted]")
	tb.stop()
	st, err := store.Open(context.Background(), "sqlite", tb.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	entries, err := st.Audit(context.Background(), 10)
	if err != nil || len(entries) != 2 {
		t.Fatalf("audit = %+v, %v", entries, err)
	}
	for _, e := range entries {
		if strings.Contains(e.Text, secret) || !strings.Contains(e.Text, "[redacted]") {
			t.Errorf("audit text %q", e.Text)
		}
	}
	v, ok, err := st.KVGet(context.Background(), "crashy", "note")
	if err != nil || !ok || bytes.Contains(v, []byte(secret)) {
		t.Fatalf("kv note = %q %v %v", v, ok, err)
	}
}
