package chattest

import (
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// Harness lets the suite drive an adapter through its real client library
// against a faithful local peer.
type Harness struct {
	// New returns a fresh adapter under test and a Peer that plays the chat
	// service. It registers the clean-up of both with t.Cleanup; the suite
	// stops Run before those clean-ups run.
	New func(t *testing.T) (chat.Adapter, Peer)
	// Golden is the directory of the adapter's golden renders, usually
	// "testdata/golden" of its package. The suite sends a fixed set of
	// outputs (GoldenCases) and compares what the service received, as the
	// peer's GoldenPeer.Raw returns it, with <Golden>/<case>.golden;
	// `go test -args -chattest.update` rewrites the files. Empty skips the
	// golden renders; when set, the peer must be a GoldenPeer.
	Golden string
	// UnknownRoom is a room id, well-formed for the service (a Slack
	// "C0…", a 26-character Mattermost id), of a room the service does not
	// have: Send to it must fail with chat.ErrUnknownRoom. Empty is
	// DefaultUnknownRoom.
	UnknownRoom string
	// Unordered declares that the service does not promise the order of
	// messages within a room (a webhook receiver, say): the burst tests
	// then check only that nothing is lost or duplicated.
	Unordered bool
}

// DefaultUnknownRoom is the room id the suite sends to when the Harness
// names no UnknownRoom.
const DefaultUnknownRoom = "no-such-room"

// Peer plays the chat service in the conformance suite.
//
// The suite names rooms and users ("general", "random", "alice", "bob"); the
// peer creates them on first use and maps each name to the service's id
// (RoomID, UserID). Say takes names; everything the adapter reports or
// takes (Message.Ref.Room, Message.User.ID, Send's MessageRef.Room) and
// everything the peer reports (PeerMessage.Room) is the service's id.
// Services whose ids are their names return the name.
type Peer interface {
	// RoomID returns the service's id of the room the suite calls name
	// ("general" → "C0GENERAL1"), creating the room when it does not exist
	// yet. The bot is a member of every room the peer creates.
	RoomID(t *testing.T, name string) string
	// UserID returns the service's id of the user the suite calls name
	// ("alice" → "U0ALICE01"), creating the user when needed.
	UserID(t *testing.T, name string) string
	// Say makes a user post text in room (in thread if thread != ""), as the
	// service would deliver it to the bot. room and user are names; thread
	// is a message id the adapter reported. The suite may call Say right
	// after starting Run, or right after DropPeer.Drop: the peer must not
	// lose the message while the adapter is still connecting (it queues it,
	// or waits for the connection). When user is the bot's own id
	// (Adapter.Self().ID) the message is posted as the bot itself.
	Say(t *testing.T, room, user, thread, text string)
	// Said waits for the next message the bot posted to the service and
	// returns it as the service saw it: room id, thread, the plain text as
	// the service shows it, and its id. Ephemeral messages are not posts:
	// Said never returns them.
	Said(t *testing.T) PeerMessage
	// Edited waits for the next edit of a bot message (only called when the
	// adapter is an Editor).
	Edited(t *testing.T) PeerMessage
}

// PeerMessage is a bot message as the service saw it. Room is the service's
// room id (for a direct message, the id of the direct conversation, as
// DirectPeer.DirectRoom returns it).
type PeerMessage struct{ Room, Thread, ID, Text string }

// The optional peer capabilities below are detected with type assertions. A
// sub-test whose peer lacks the one it needs is skipped with a message
// naming the missing interface, unless the adapter claims the matching
// capability, which the suite must then be able to check: an adapter that
// renders buttons needs a ClickPeer, a DirectMessenger a DirectPeer, an
// EphemeralSender an EphemeralPeer, a RouteProvider a RoutePeer.

// DirectPeer is a service with direct conversations.
type DirectPeer interface {
	// SayDirect makes user (a name) send text to the bot in their direct
	// conversation with it. The adapter delivers it with Direct set and
	// Ref.Room the conversation's id.
	SayDirect(t *testing.T, user, text string)
	// DirectRoom returns the id of the direct conversation between the bot
	// and user (a name), opening it when needed: what OpenDirect of the
	// user's id must return, and the PeerMessage.Room of a post to it.
	DirectRoom(t *testing.T, user string) string
}

// MentionPeer is a service with native mentions.
type MentionPeer interface {
	// SayMention makes user post text in room with the service's native
	// mention of the bot (Slack "<@U…> text", Mattermost "@chima text"),
	// where the service's clients put it. The adapter delivers text alone,
	// with Mentioned set.
	SayMention(t *testing.T, room, user, text string)
}

// ClickPeer is a service with buttons.
type ClickPeer interface {
	// Click presses, as user (a name), the button-th button (0-based, in
	// the order of Output.Buttons) of the bot message msg, which Said
	// returned, and posts the click to the adapter as the service would
	// (Slack block_actions, a Mattermost integration action). The adapter
	// calls Handler.HandleInteraction with the button's ActionID and Value
	// unchanged.
	Click(t *testing.T, msg PeerMessage, user string, button int)
}

// RateLimitPeer is a service that rate-limits.
type RateLimitPeer interface {
	// LimitNext makes the service refuse the next post (not edit) of the
	// bot as rate-limited, asking it to retry after after (Slack's 429 with
	// Retry-After, Mattermost's 429). The refused post is not posted; later
	// posts are taken again.
	LimitNext(t *testing.T, after time.Duration)
}

// DropPeer is a service the adapter holds a live connection to.
type DropPeer interface {
	// Drop drops the adapter's live connection (its websocket) as a server
	// restart would and returns. The adapter must reconnect by itself; Say
	// after Drop waits for it or queues, as it does after Run starts.
	Drop(t *testing.T)
}

// EphemeralPeer is a service with ephemeral messages.
type EphemeralPeer interface {
	// SaidEphemeral waits for the next ephemeral message of the bot and
	// returns it as the service saw it and the id of the one user it was
	// shown to.
	SaidEphemeral(t *testing.T) (msg PeerMessage, userID string)
}

// GoldenPeer shows what the service received for a post.
type GoldenPeer interface {
	// Raw returns the service's payload of the post msg as the service
	// received it (the chat.postMessage form or JSON, the Mattermost post
	// JSON, the console's bytes), normalised so that it is the same on
	// every run: ids and timestamps replaced deterministically, JSON keys
	// in a fixed order and indented.
	Raw(t *testing.T, msg PeerMessage) []byte
}

// RoutePeer is a service that reaches the adapter over the bot's HTTP
// server (events, slash commands, interactivity, webhooks).
type RoutePeer interface {
	// Mounted tells the peer where the adapter's routes are served, before
	// Run starts: the suite calls Routes once, mounts every route at
	// base + "/" + Adapter.Name() + "/" + Route.Path on a loopback server as
	// the core does (body limit, then Verify, 401 on its error), and passes
	// base ("http://127.0.0.1:port").
	Mounted(t *testing.T, base string)
}
