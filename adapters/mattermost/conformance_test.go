package mattermost_test

import (
	"os"
	"testing"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/chimaops/chima/adapters/mattermost"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
)

// TestMain fails the run when a goroutine of the adapter outlives the
// tests: every Run must have returned and closed its websocket.
func TestMain(m *testing.M) {
	os.Exit(chattest.RunWithoutLeaks(m, "chimaops/chima/adapters/mattermost."))
}

// TestConformance runs the adapter conformance suite against the fake
// server, with golden renders, rate limits and everything else the suite
// checks.
func TestConformance(t *testing.T) {
	chattest.RunConformance(t, chattest.Harness{
		Golden:      "testdata/golden",
		UnknownRoom: model.NewId(),
		New: func(t *testing.T) (chat.Adapter, chattest.Peer) {
			f := newFakeBackend(t)
			// Only system admins may post ephemerally; the fallback for
			// other bots is checked in TestBehaviour.
			f.setBotAdmin(t, true)
			p := &fakePeer{peer: newPeer(t, f), f: f}
			return p.adapter(t, mattermost.Options{SlashToken: "slash-token"}), p
		},
	})
}

// TestConformanceRealServer runs the same suite against a real Mattermost
// 6.7.2 (CHIMA_MATTERMOST_ENV), but for what a real server cannot be made
// to do on demand: rate limits (disabled there) and raw request bodies.
func TestConformanceRealServer(t *testing.T) {
	r := needReal(t)
	r.setBotAdmin(t, true)
	t.Cleanup(func() { r.setBotAdmin(t, false) })
	chattest.RunConformance(t, chattest.Harness{
		UnknownRoom: model.NewId(),
		New: func(t *testing.T) (chat.Adapter, chattest.Peer) {
			p := newPeer(t, r)
			return p.adapter(t, mattermost.Options{SlashToken: "slash-token"}), p
		},
	})
}
