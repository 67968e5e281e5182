package mention

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/chimaops/chima/core/chat"
)

type accounts map[string]string // "person adapter" → id

func (a accounts) Account(person, adapter string) (string, bool) {
	id, ok := a[person+" "+adapter]
	return id, ok
}

// users is a directory: ids to users, or an error for every lookup.
type users struct {
	byID map[string]chat.User
	err  error
}

func (u users) LookupUser(_ context.Context, id string) (chat.User, error) {
	if u.err != nil {
		return chat.User{}, u.err
	}
	if usr, ok := u.byID[id]; ok {
		return usr, nil
	}
	return chat.User{}, chat.ErrUnknownUser
}

const ph = "⟦@alice·feed⟧"

func TestResolveWritesEachMentionAsTheAdapterPingsThePerson(t *testing.T) {
	acc := accounts{"alice mattermost": "u1", "alice slack": "U1", "alice gone": "u9"}
	dir := users{byID: map[string]chat.User{"u1": {ID: "u1", Name: "alice.w"}}}
	tests := []struct {
		name     string
		adapter  string
		pings    bool
		users    Users
		wantText string // with TOKEN for the resolved token
		wantUser chat.User
	}{
		{"an account on an adapter that pings, named by its directory", "mattermost", true, dir, "by TOKEN", chat.User{ID: "u1", Name: "alice.w"}},
		{"an account on an adapter without a directory", "slack", true, nil, "by TOKEN", chat.User{ID: "U1"}},
		{"an account the directory could not look up is kept by id", "mattermost", true, users{err: errors.New("503")}, "by TOKEN", chat.User{ID: "u1"}},
		{"an account the directory does not know is the name", "gone", true, dir, "by alice", chat.User{}},
		{"no account on an adapter that pings is the name, pinging nobody else", "other", true, nil, "by alice", chat.User{}},
		{"an adapter that pings nobody gets @name", "console", false, nil, "by @alice", chat.User{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(acc, nil)
			in := chat.Output{
				Title: "CI " + ph, Text: "by " + ph, Code: ph,
				Fields:   []chat.Field{{Title: ph, Value: ph}},
				Buttons:  []chat.Button{{Label: ph}},
				Mentions: []chat.Mention{{Person: "alice", Placeholder: ph}},
			}
			got := r.Resolve(context.Background(), tt.adapter, tt.pings, tt.users, in)
			token := ""
			if len(got.Mentions) == 1 {
				token = got.Mentions[0].Placeholder
				if got.Mentions[0].User != tt.wantUser || got.Mentions[0].Person != "alice" {
					t.Errorf("mention %+v, want alice as %+v", got.Mentions[0], tt.wantUser)
				}
			} else if tt.wantUser != (chat.User{}) || len(got.Mentions) != 0 {
				t.Fatalf("mentions %+v, want one for %+v", got.Mentions, tt.wantUser)
			}
			want := strings.ReplaceAll(tt.wantText, "TOKEN", token)
			if got.Text != want {
				t.Errorf("text %q, want %q", got.Text, want)
			}
			if token != "" && (strings.Trim(token, "abcdefghijklmnopqrstuvwxyz0123456789") != "" || len(token) < 16) {
				t.Errorf("token %q, want 16 or more letters and digits", token)
			}
			if tt.pings && token != "" && got.Fields[0].Value != token {
				t.Errorf("field value %q, want the token", got.Fields[0].Value)
			}
			// Titles, code and labels never ping.
			if got.Title != "CI alice" || got.Code != "alice" || got.Fields[0].Title != "alice" || got.Buttons[0].Label != "alice" {
				t.Errorf("title %q, code %q, field title %q, label %q; want the plain name", got.Title, got.Code, got.Fields[0].Title, got.Buttons[0].Label)
			}
			if in.Text != "by "+ph || in.Fields[0].Value != ph || in.Buttons[0].Label != ph {
				t.Errorf("the caller's output changed: %+v", in)
			}
		})
	}
}

func TestResolveLeavesUndeclaredPlaceholdersAndGivesEachMentionItsOwnToken(t *testing.T) {
	r := New(accounts{"alice slack": "U1", "bob slack": "U2"}, nil)
	forged := "⟦@bob·0000⟧"
	got := r.Resolve(context.Background(), "slack", true, nil, chat.Output{
		Text:     ph + " and " + forged + " and ⟦@bob·b0b⟧",
		Mentions: []chat.Mention{{Person: "alice", Placeholder: ph}, {Person: "bob", Placeholder: "⟦@bob·b0b⟧"}},
	})
	if len(got.Mentions) != 2 || got.Mentions[0].Placeholder == got.Mentions[1].Placeholder {
		t.Fatalf("mentions %+v, want two with tokens of their own", got.Mentions)
	}
	want := got.Mentions[0].Placeholder + " and " + forged + " and " + got.Mentions[1].Placeholder
	if got.Text != want {
		t.Errorf("text %q, want %q", got.Text, want)
	}
	// Tokens differ from one message to the next.
	again := r.Resolve(context.Background(), "slack", true, nil, chat.Output{Text: ph, Mentions: []chat.Mention{{Person: "alice", Placeholder: ph}}})
	if again.Text == got.Mentions[0].Placeholder {
		t.Errorf("two messages share the token %q", again.Text)
	}
}

func TestResolveWithoutPeopleWritesNames(t *testing.T) {
	got := New(nil, nil).Resolve(context.Background(), "slack", true, nil, chat.Output{Text: ph, Mentions: []chat.Mention{{Person: "alice", Placeholder: ph}}})
	if got.Text != "alice" || len(got.Mentions) != 0 {
		t.Errorf("got %+v, want the name and no mention", got)
	}
}
