package sdk

import (
	"slices"
	"strings"
	"testing"

	"github.com/chimaops/chima/sdk/pluginv1"
)

func TestMentionPersonReturnsAPlaceholderOnlyForPersonNames(t *testing.T) {
	tests := []struct {
		name, person string
		placeholder  bool
	}{
		{"a person's name", "alice", true},
		{"a name with dots, dashes and underscores", "mary-jane.o_neil", true},
		{"an upper-case name, which no person has", "Alice", false},
		{"an empty name", "", false},
		{"a name with a space", "alice smith", false},
		{"a name that would close the placeholder", "al⟧ice", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MentionPerson(tt.person)
			if tt.placeholder {
				if got == tt.person || !strings.Contains(got, tt.person) {
					t.Fatalf("MentionPerson(%q) = %q, want a placeholder naming them", tt.person, got)
				}
				if ms := (&Output{Text: got}).Mentions(); !slices.Equal(ms, []string{tt.person}) {
					t.Errorf("Mentions of the placeholder = %q, want [%q]", ms, tt.person)
				}
				return
			}
			if got != tt.person {
				t.Errorf("MentionPerson(%q) = %q, want the name as it is", tt.person, got)
			}
		})
	}
}

// Only this process's placeholders are declared: text from outside that
// looks like one (a commit message quoting another bot's, or guessing the
// form) is sent as written and declares no mention.
func TestOutputToProtoDeclaresOnlyThisProcesssPlaceholders(t *testing.T) {
	forged := "⟦@mallory·000000000000⟧"
	tests := []struct {
		name string
		out  *Output
		want []*pluginv1.Mention
	}{
		{"no mention", &Output{Text: "green"}, nil},
		{"a mention in the text", &Output{Text: "broken by " + MentionPerson("alice")},
			[]*pluginv1.Mention{{Person: "alice", Placeholder: MentionPerson("alice")}}},
		{"one person twice, declared once", &Output{Text: MentionPerson("bob") + " and " + MentionPerson("bob")},
			[]*pluginv1.Mention{{Person: "bob", Placeholder: MentionPerson("bob")}}},
		{"mentions in fields and fallback, in order", &Output{
			Text:     "x",
			Fields:   []*Field{{Title: "By", Value: MentionPerson("carol")}},
			Fallback: "by " + MentionPerson("alice"),
		}, []*pluginv1.Mention{
			{Person: "carol", Placeholder: MentionPerson("carol")},
			{Person: "alice", Placeholder: MentionPerson("alice")},
		}},
		{"placeholder-looking text from outside", &Output{Text: "commit: fix " + forged + " and ⟦@alice⟧"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := outputToProto(tt.out)
			got := p.GetMentions()
			if len(got) != len(tt.want) {
				t.Fatalf("mentions = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i].GetPerson() != tt.want[i].GetPerson() || got[i].GetPlaceholder() != tt.want[i].GetPlaceholder() {
					t.Errorf("mention %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
			if p.GetText() != tt.out.Text {
				t.Errorf("text = %q, want it sent as written: %q", p.GetText(), tt.out.Text)
			}
		})
	}
}

// What a plugin of another process declared reads back as this process's
// mentions, so sdktest sees the people a plugin mentioned.
func TestOutputFromProtoReadsDeclaredMentionsAsThisProcesss(t *testing.T) {
	p := &pluginv1.Output{
		Text:     "broken by <<alice>>, not <<bob>>",
		Fallback: "broken by <<alice>>",
		Mentions: []*pluginv1.Mention{{Person: "alice", Placeholder: "<<alice>>"}},
	}
	o := outputFromProto(p)
	if want := "broken by " + MentionPerson("alice") + ", not <<bob>>"; o.Text != want {
		t.Errorf("text = %q, want %q", o.Text, want)
	}
	if ms := o.Mentions(); !slices.Equal(ms, []string{"alice"}) {
		t.Errorf("mentions = %q, want [alice]", ms)
	}
}

// A host older than minor 10 would show placeholders as they are: it gets
// "@alice", what plugins wrote before mentions, and the caller's Output
// stays as it was.
func TestRepliesToAnOlderHostWriteMentionsAsPlainNames(t *testing.T) {
	tests := []struct {
		name      string
		hostMinor uint32
		wantText  string
		mentions  int
	}{
		{"a host of minor 9", 9, "broken by @alice", 0},
		{"a host of this minor", mentionsMinor, "broken by " + MentionPerson("alice"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sent []*pluginv1.Event
			c := &Context{host: &hostClient{}, emit: func(ev *pluginv1.Event) error { sent = append(sent, ev); return nil }}
			c.host.minor.Store(tt.hostMinor)
			o := &Output{Text: "broken by " + MentionPerson("alice"), Fields: []*Field{{Title: "By", Value: MentionPerson("alice")}}}
			if err := c.ReplyOutput(o); err != nil {
				t.Fatal(err)
			}
			got := sent[0].GetReply().GetOutput()
			if got.GetText() != tt.wantText {
				t.Errorf("text = %q, want %q", got.GetText(), tt.wantText)
			}
			if len(got.GetMentions()) != tt.mentions {
				t.Errorf("mentions = %v, want %d", got.GetMentions(), tt.mentions)
			}
			if o.Text != "broken by "+MentionPerson("alice") || o.Fields[0].Value != MentionPerson("alice") {
				t.Errorf("the caller's output changed: %+v", o)
			}
		})
	}
}

// BenchmarkOutputToProto is the conversion every reply, progress and post
// of a plugin goes through: most hold no mention.
func BenchmarkOutputToProto(b *testing.B) {
	for _, tc := range []struct {
		name string
		out  *Output
	}{
		{"no mention", &Output{Title: "octo-org/octo-repo main @ aaaaaaa: failing", Text: strings.Repeat("✗ test / build: failure in 2m05s\n", 8),
			Fields: []*Field{{Title: "Commit", Value: "aaaaaaa"}}}},
		{"a mention", &Output{Text: "Broken: octo-org/octo-repo main at aaaaaaa, pushed by " + MentionPerson("alice") + "."}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = outputToProto(tc.out)
			}
		})
	}
}
