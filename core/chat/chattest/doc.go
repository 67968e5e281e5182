// Package chattest helps test chat adapters and the bot that drives them.
//
// Memory is an in-memory adapter for bot-level tests and benchmarks: a test
// injects user messages with Inject and reads what the bot posted with Next
// or Sent. It is cheap enough for the dispatch benchmark: no goroutine per
// message, one short lock per message in each direction.
//
// RunConformance is the one suite every adapter passes. A Harness gives it a
// fresh adapter and a Peer that plays the chat service (a faithful local fake
// of the service, or the service's real server where one can run in tests),
// so the adapter is exercised through its real client library.
package chattest
