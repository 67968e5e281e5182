package bot

import (
	"testing"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/redact"
)

func TestRepliesHaveSecretsMaskedInFieldsAndButtonsWithoutTouchingTheCallers(t *testing.T) {
	b := New(Options{Redactor: redact.New("hunter22")})
	fields := []chat.Field{{Title: "token", Value: "hunter22"}, {Title: "app", Value: "demo"}}
	buttons := []chat.Button{{Label: "retry", Command: "deploy --token hunter22"}}
	out := b.redactOutput(chat.Output{Text: "hi", Fields: fields, Buttons: buttons})
	if out.Fields[0].Value != redact.Mask || out.Fields[1].Value != "demo" || out.Buttons[0].Command != "deploy --token "+redact.Mask {
		t.Fatalf("redacted output = %+v", out)
	}
	if fields[0].Value != "hunter22" || buttons[0].Command != "deploy --token hunter22" {
		t.Fatalf("the caller's fields or buttons were changed: %+v %+v", fields, buttons)
	}
	clean := []chat.Field{{Title: "app", Value: "demo"}}
	if out := b.redactOutput(chat.Output{Fields: clean}); &out.Fields[0] != &clean[0] {
		t.Fatal("fields without a secret were copied")
	}
}
