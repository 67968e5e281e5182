// Package mention resolves the people a message mentions for the chat
// adapter it goes to: each person's account there (config people:), and the
// token the adapter replaces with its own mention of that account (Slack's
// <@U…>, Mattermost's @username). See chat.Mention.
package mention

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/chimaops/chima/core/chat"
)

// Accounts finds a person's account on an adapter (policy.Policy does).
type Accounts interface {
	Account(person, adapter string) (id string, ok bool)
}

// Users looks accounts up on an adapter's directory (directory.Cache does).
type Users interface {
	LookupUser(ctx context.Context, nameOrID string) (chat.User, error)
}

// Resolver resolves mentions. It is safe for concurrent use.
type Resolver struct {
	accounts Accounts
	log      *slog.Logger
	// nonce makes the tokens of this process unlike any text: a plugin's
	// text, or a commit message quoted in it, cannot hold one.
	nonce string
	n     atomic.Uint64
}

// New returns a Resolver over accounts (nil: nobody has an account, and
// every mention is written as the person's name). log reports failed
// directory lookups.
func New(accounts Accounts, log *slog.Logger) *Resolver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b) // never fails (crypto/rand's documented contract)
	return &Resolver{accounts: accounts, log: log, nonce: hex.EncodeToString(b)}
}

// Resolve returns out as it goes to adapter, which pings people when
// pings is set (chat.Capabilities.Mentions) and whose directory is users
// (nil when it has none). Each mention's placeholder becomes:
//
//   - where pings is set and the person has an account on adapter: a token
//     the adapter replaces with its mention of the account, which is in the
//     mention's User (with the directory's name for it, when there is one);
//   - where pings is set and they have none: their name, "alice", which
//     pings nobody and cannot ping somebody else of that name;
//   - on an adapter that pings nobody (the console, webhooks): "@alice".
//
// Titles, codes and button labels are never pings: they get the name.
// Placeholders that out does not declare are not touched. out is left as
// it was; an output without mentions is returned as it is.
func (r *Resolver) Resolve(ctx context.Context, adapter string, pings bool, users Users, out chat.Output) chat.Output {
	if len(out.Mentions) == 0 {
		return out
	}
	var inText, plain []string // replacer pairs
	var resolved []chat.Mention
	for _, m := range out.Mentions {
		if m.Placeholder == "" || m.Person == "" {
			continue
		}
		plain = append(plain, m.Placeholder, m.Person)
		if !pings {
			inText = append(inText, m.Placeholder, "@"+m.Person)
			continue
		}
		u, ok := r.account(ctx, adapter, users, m.Person)
		if !ok {
			inText = append(inText, m.Placeholder, m.Person)
			continue
		}
		token := r.token()
		inText = append(inText, m.Placeholder, token)
		resolved = append(resolved, chat.Mention{Person: m.Person, Placeholder: token, User: u})
	}
	out = out.Rewrite(strings.NewReplacer(inText...).Replace, strings.NewReplacer(plain...).Replace)
	out.Mentions = resolved
	return out
}

// account returns person's account on adapter, named as its directory
// names it. An account the directory does not know is no account; one it
// could not look up is kept by id alone, for the adapter to ping if it can.
func (r *Resolver) account(ctx context.Context, adapter string, users Users, person string) (chat.User, bool) {
	if r.accounts == nil {
		return chat.User{}, false
	}
	id, ok := r.accounts.Account(person, adapter)
	if !ok || id == "" {
		return chat.User{}, false
	}
	if users == nil {
		return chat.User{ID: id}, true
	}
	u, err := users.LookupUser(ctx, id)
	switch {
	case errors.Is(err, chat.ErrUnknownUser):
		r.log.Warn("mentioned person's account is unknown to the chat service; writing their name", "adapter", adapter, "person", person, "account", id)
		return chat.User{}, false
	case err != nil:
		if ctx.Err() == nil {
			r.log.Warn("mentioned person's account not looked up", "adapter", adapter, "person", person, "account", id, "error", err)
		}
		return chat.User{ID: id}, true
	}
	if u.ID == "" {
		u.ID = id
	}
	return u, true
}

// token returns a token no other mention of this process has: letters and
// digits only, so markup and escaping leave it as it is, and at least 16 of
// them, longer than most mentions it stands for (Slack's <@U024BE7LH>), so
// a message cut to a service's limit before the adapter replaces it is not
// over that limit after.
func (r *Resolver) token() string {
	return "chimamention" + r.nonce + "x" + strconv.FormatUint(r.n.Add(1), 36) + "x"
}
