package router

import (
	"testing"

	"github.com/chimaops/chima/core/chat"
)

func TestAddressed(t *testing.T) {
	r := New(Options{Name: "chima", Prefix: "!"})
	tests := []struct {
		name     string
		msg      chat.Message
		wantText string
		wantOK   bool
	}{
		{"name then space", chat.Message{Text: "chima hello"}, "hello", true},
		{"name in another case with a colon", chat.Message{Text: "Chima: hello"}, "hello", true},
		{"name with a comma", chat.Message{Text: "chima, hello"}, "hello", true},
		{"name with a colon and no space", chat.Message{Text: "chima:hello"}, "hello", true},
		{"at-mention", chat.Message{Text: "@chima hello"}, "hello", true},
		{"at-mention with colon", chat.Message{Text: "@CHIMA: deploy x"}, "deploy x", true},
		{"surrounding space is trimmed", chat.Message{Text: "  chima   deploy x to edge \n"}, "deploy x to edge", true},
		{"name separated by a tab", chat.Message{Text: "chima\thello"}, "hello", true},
		{"name separated by a no-break space", chat.Message{Text: "chima\u00a0hello"}, "hello", true},
		{"name alone is addressed with no text", chat.Message{Text: "chima"}, "", true},
		{"name and colon alone", chat.Message{Text: "chima:"}, "", true},
		{"prefix needs no space", chat.Message{Text: "!hello"}, "hello", true},
		{"prefix followed by space", chat.Message{Text: "! deploy x"}, "deploy x", true},
		{"direct message is addressed as a whole", chat.Message{Text: "deploy x", Direct: true}, "deploy x", true},
		{"direct message still loses a leading name", chat.Message{Text: "chima deploy x", Direct: true}, "deploy x", true},
		{"direct message still loses a prefix", chat.Message{Text: "!deploy x", Direct: true}, "deploy x", true},
		{"direct message keeps a name-like word", chat.Message{Text: "chimahello", Direct: true}, "chimahello", true},
		{"empty direct message", chat.Message{Text: "  ", Direct: true}, "", true},
		{"native mention", chat.Message{Text: " deploy x ", Mentioned: true}, "deploy x", true},

		{"name glued to a word", chat.Message{Text: "chimahello"}, "", false},
		{"lookalike name with a Cyrillic a", chat.Message{Text: "chimаera hello"}, "", false},
		{"longer word starting with the name", chat.Message{Text: "chimaera hello"}, "", false},
		{"name later in the sentence", chat.Message{Text: "hey chima hello"}, "", false},
		{"ordinary chatter", chat.Message{Text: "deploy x to edge"}, "", false},
		{"empty message", chat.Message{Text: ""}, "", false},
		{"name followed by other punctuation", chat.Message{Text: "chima. hello"}, "", false},
		{"prefix is not matched in the middle", chat.Message{Text: "hello !deploy"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := r.Addressed(tt.msg)
			if got != tt.wantText || ok != tt.wantOK {
				t.Errorf("Addressed(%+v) = %q, %v; want %q, %v", tt.msg, got, ok, tt.wantText, tt.wantOK)
			}
		})
	}
}

func TestAddressedWithoutNameOrPrefix(t *testing.T) {
	r := New(Options{})
	if text, ok := r.Addressed(chat.Message{Text: "chima hello"}); ok {
		t.Errorf("a router without a name took %q", text)
	}
	if text, ok := r.Addressed(chat.Message{Text: "!hello"}); ok {
		t.Errorf("a router without a prefix took %q", text)
	}
	if text, ok := r.Addressed(chat.Message{Text: "hello", Direct: true}); !ok || text != "hello" {
		t.Errorf("direct message: got %q, %v", text, ok)
	}
}
