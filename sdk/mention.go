package sdk

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"slices"
	"strings"

	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

// A mention is written in an Output as a placeholder that names the person
// and carries a random value drawn once per process: "⟦@alice·3f9a1c07d2e4⟧".
// The SDK declares to the host (Output.mentions, protocol minor 10) each
// placeholder it finds, and the host replaces only those. Text from outside
// the plugin (a commit message, an issue title) cannot hold one by chance or
// by design, since it cannot know the value: it stays as written and pings
// nobody.
var (
	mentionNonce = newMentionNonce()
	// mentionRE matches this process's placeholders; group 1 is the person.
	mentionRE = regexp.MustCompile(`⟦@([a-z][a-z0-9._-]*)·` + mentionNonce + `⟧`)
)

func newMentionNonce() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // never fails (crypto/rand's documented contract)
	return hex.EncodeToString(b)
}

// mentionsMinor is the protocol minor of the first hosts that replace
// placeholders (Output.mentions).
const mentionsMinor = 10

// MentionPerson returns the text that mentions person, a person of
// chima.yaml's people ("alice"), in an Output's Text, a Field's Value or
// Fallback: where the message goes, the person is pinged the chat service's
// own way (Slack's <@U…>, Mattermost's @username). Where they have no
// account on that chat service, or are no person of chima.yaml, their name
// is written plainly instead; so is it in a Title, a Field's Title or Code,
// where no chat service pings. Build the Output's text around it like any
// string:
//
//	ctx.ReplyOutput(&sdk.Output{Text: "Broken by " + sdk.MentionPerson("alice") + "."})
//
// A name that cannot be a person's (people's names are lower-case letters,
// digits, '.', '-' and '_', starting with a letter) is returned as it is.
func MentionPerson(person string) string {
	if !wire.IsPersonName(person) {
		return person
	}
	return "⟦@" + person + "·" + mentionNonce + "⟧"
}

// Mentions returns the people o mentions (MentionPerson), each once, in the
// order they first appear in Title, Text, Fields, Code and Fallback.
func (o *Output) Mentions() []string {
	if o == nil {
		return nil
	}
	var people []string
	o.eachText(func(s *string) {
		// Every reply a plugin sends passes here: most hold no mention,
		// and a search for the nonce is far cheaper than the expression.
		if !strings.Contains(*s, mentionNonce) {
			return
		}
		for _, m := range mentionRE.FindAllStringSubmatch(*s, -1) {
			if !slices.Contains(people, m[1]) {
				people = append(people, m[1])
			}
		}
	})
	return people
}

// eachText calls f with each text of o a mention may be in.
func (o *Output) eachText(f func(s *string)) {
	f(&o.Title)
	f(&o.Text)
	for _, fl := range o.Fields {
		if fl != nil {
			f(&fl.Title)
			f(&fl.Value)
		}
	}
	f(&o.Code)
	f(&o.Fallback)
}

// mentionsToProto declares the mentions of o, as outputToProto sends them.
func mentionsToProto(o *Output) []*pluginv1.Mention {
	var out []*pluginv1.Mention
	for _, person := range o.Mentions() {
		out = append(out, &pluginv1.Mention{Person: person, Placeholder: MentionPerson(person)})
	}
	return out
}

// mentionsFromProto rewrites the placeholders that p declares as this
// process's, so that a received Output answers Mentions as the one sent
// did (sdktest reads what a plugin sent through here).
func mentionsFromProto(o *Output, p *pluginv1.Output) {
	var pairs []string
	for _, m := range p.GetMentions() {
		if m.GetPlaceholder() != "" && wire.IsPersonName(m.GetPerson()) {
			pairs = append(pairs, m.GetPlaceholder(), MentionPerson(m.GetPerson()))
		}
	}
	if len(pairs) == 0 {
		return
	}
	r := strings.NewReplacer(pairs...)
	o.eachText(func(s *string) { *s = r.Replace(*s) })
}

// withPlainMentions returns o with each mention written "@alice", for a host
// older than minor 10, which would show the placeholders as they are. It is
// what plugins wrote before mentions existed; o itself is left alone.
func withPlainMentions(o *Output) *Output {
	if o == nil || len(o.Mentions()) == 0 {
		return o
	}
	c := *o
	c.Fields = make([]*Field, len(o.Fields))
	for i, f := range o.Fields {
		if f != nil {
			ff := *f
			c.Fields[i] = &ff
		}
	}
	c.eachText(func(s *string) { *s = mentionRE.ReplaceAllString(*s, "@$1") })
	return &c
}
