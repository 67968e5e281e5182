// Package chattest helps test chat adapters and the bot that drives them.
//
// Memory is an in-memory adapter for bot-level tests and benchmarks: a test
// injects user messages with Inject and clicks with Click, rate-limits it
// with LimitNext, gives it a directory with AddRoom and AddUser, and reads
// what the bot posted with Next, Sent or Subscribe. It is cheap enough for
// the dispatch benchmark: no goroutine per message, one short lock per
// message in each direction.
//
// RunConformance is the one suite every adapter passes. A Harness gives it a
// fresh adapter and a Peer that plays the chat service (a faithful local fake
// of the service, or the service's real server where one can run in tests),
// so the adapter is exercised through its real client library. The suite
// names rooms and users; the Peer maps them to the service's ids. Optional
// peer capabilities (DirectPeer, MentionPeer, ClickPeer, RateLimitPeer,
// DropPeer, EphemeralPeer, GoldenPeer, RoutePeer) unlock the sub-tests that
// need them; one the peer lacks is skipped, saying which, unless the adapter
// claims the capability it would check. Harness.Golden pins each adapter's
// renders of GoldenCases in files that `go test -args -chattest.update`
// rewrites.
package chattest
