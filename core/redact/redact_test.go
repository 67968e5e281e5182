package redact_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/chimaops/chima/core/redact"
)

func TestStringMasksEverySecretValue(t *testing.T) {
	r := redact.New("hunter22", "s3cr3t-token", "abc", "", "hunter22", "s3cr3t")
	cases := []struct{ name, in, want string }{
		{"no secret", "deploy demo to staging", "deploy demo to staging"},
		{"one secret", "lock because hunter22", "lock because [redacted]"},
		{"every occurrence", "hunter22 and hunter22", "[redacted] and [redacted]"},
		{"a secret inside another is masked whole", "token=s3cr3t-token!", "token=[redacted]!"},
		{"the shorter one alone", "x s3cr3t y", "x [redacted] y"},
		{"too short to be masked", "abc is a word", "abc is a word"},
		{"glued to other text", "Bearerhunter22xyz", "Bearer[redacted]xyz"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := r.String(c.in); got != c.want {
				t.Fatalf("String(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

// Chima lower-cases keywords, help topics and names before it quotes them
// back, so a secret typed as a command reaches chat and the audit log in
// lower case: it must be masked in any case.
func TestSecretsAreMaskedInAnyLetterCase(t *testing.T) {
	r := redact.New("S3cr3tVALUE-xyz", "hunter22")
	cases := []struct{ name, in, want string }{
		{"lower-cased", `I don't know the command "s3cr3tvalue-xyz"`, `I don't know the command "[redacted]"`},
		{"upper-cased", "lock: S3CR3TVALUE-XYZ.", "lock: [redacted]."},
		{"as configured", "S3cr3tVALUE-xyz", "[redacted]"},
		{"a secret given in lower case, typed in upper", "HUNTER22 and Hunter22", "[redacted] and [redacted]"},
		{"the rest keeps its case", "Ünïcode Text s3CR3TValue-XYZ Tail", "Ünïcode Text [redacted] Tail"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := r.String(c.in); got != c.want {
				t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
			}
			if got := string(r.Bytes([]byte(c.in))); got != c.want {
				t.Errorf("Bytes(%q) = %q, want %q", c.in, got, c.want)
			}
			if !r.Contains(c.in) {
				t.Errorf("Contains(%q) = false", c.in)
			}
			if got, ok := r.Any(errors.New(c.in)).(string); !ok || got != c.want {
				t.Errorf("Any(error %q) = %v, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestNilRedactorMasksNothing(t *testing.T) {
	r := redact.New("", "ab")
	if r != nil {
		t.Fatalf("New with no usable secret = %v, want nil", r)
	}
	if got := r.String("ab hunter22"); got != "ab hunter22" {
		t.Fatalf("nil String = %q", got)
	}
	if got := string(r.Bytes([]byte("x"))); got != "x" {
		t.Fatalf("nil Bytes = %q", got)
	}
	h := slog.NewTextHandler(&bytes.Buffer{}, nil)
	if r.Handler(h) != slog.Handler(h) {
		t.Fatal("nil Handler wraps")
	}
}

func TestTextMasksTextAndLeavesBinaryValuesAlone(t *testing.T) {
	r := redact.New("hunter22")
	cases := []struct {
		name string
		in   []byte
		want []byte
	}{
		{"json", []byte(`{"reason":"because hunter22"}`), []byte(`{"reason":"because [redacted]"}`)},
		{"lines", []byte("line hunter22\n\tnext\r\n"), []byte("line [redacted]\n\tnext\r\n")},
		{"protobuf-like", append([]byte{0x0a, 0x08}, "hunter22"...), append([]byte{0x0a, 0x08}, "hunter22"...)},
		{"invalid utf-8", append([]byte{0xff}, "hunter22"...), append([]byte{0xff}, "hunter22"...)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := r.Text(c.in); !bytes.Equal(got, c.want) {
				t.Fatalf("Text(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

type stringer struct{ s string }

func (s stringer) String() string { return s.s }

type record struct{ Token string }

func TestHandlerMasksMessagesAndAttributes(t *testing.T) {
	const secret = "hunter22"
	var buf bytes.Buffer
	log := slog.New(redact.New(secret).Handler(slog.NewTextHandler(&buf, nil)))
	log.With("plugin", "deploy", "with", "token "+secret).WithGroup("g").Info("saw "+secret,
		"string", secret,
		"error", fmt.Errorf("dial: %w", errors.New("bad key "+secret)),
		"stringer", stringer{"s=" + secret},
		"bytes", []byte(secret),
		"struct", record{Token: secret},
		slog.Group("nested", "inner", "x"+secret),
		"number", 42,
		"plain", "visible",
	)
	out := buf.String()
	if strings.Contains(out, secret) {
		t.Fatalf("log line holds the secret:\n%s", out)
	}
	for _, want := range []string{"saw [redacted]", "with=\"token [redacted]\"", "g.string=[redacted]", "bad key [redacted]",
		`g.stringer="s=[redacted]"`, "g.nested.inner=x[redacted]", "g.number=42", "g.plain=visible", "plugin=deploy"} {
		if !strings.Contains(out, want) {
			t.Errorf("log line lacks %q:\n%s", want, out)
		}
	}
}
