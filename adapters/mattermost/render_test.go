package mattermost

import (
	"testing"

	"github.com/chimaops/chima/core/chat"
)

// A mention resolved by the core becomes @username, which Mattermost pings,
// in the message and the fields; without the username there is no ping to
// write, and the person's name stands instead.
func TestRenderWritesMentionsAsUsernames(t *testing.T) {
	const token = "chimamention0123456789abx1x"
	tests := []struct {
		name      string
		user      chat.User
		wantMsg   string
		wantField string
	}{
		{"a user with their username", chat.User{ID: "y7bcsbb7kbb1jjy8aqdpqy6gaa", Name: "alice.w"}, "Broken, pushed by @alice.w.", "@alice.w"},
		{"a user the directory did not name", chat.User{ID: "y7bcsbb7kbb1jjy8aqdpqy6gaa"}, "Broken, pushed by ally.", "ally"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			post := (&Adapter{}).render(chat.Output{
				Text:     "Broken, pushed by " + token + ".",
				Fields:   []chat.Field{{Title: "By", Value: token}},
				Mentions: []chat.Mention{{Person: "ally", Placeholder: token, User: tt.user}},
			})
			if post.Message != tt.wantMsg {
				t.Errorf("message %q, want %q", post.Message, tt.wantMsg)
			}
			atts := post.Attachments()
			if len(atts) != 1 || len(atts[0].Fields) != 1 || atts[0].Fields[0].Value != tt.wantField {
				t.Errorf("attachments %+v, want the field %q", atts, tt.wantField)
			}
		})
	}
}
