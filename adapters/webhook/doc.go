// Package webhook is Chima's generic webhook adapter, the stand-in for
// services without a bot API of their own (Campfire, Hipchat, Flowdock) and
// a way to post to any service that takes incoming webhooks.
//
// Inbound hooks are HTTP routes: POST /<adapter>/<hook> with a JSON body
// {"user", "room", "text"} authenticated by an HMAC-SHA256 signature or a
// bearer token. The text reaches the bot as a message addressed to it, and
// the replies come back in the HTTP response, to the hook's outbound URL, or
// both.
//
// Outbound notifiers are rooms of the adapter: a Send to room "teams-ops"
// posts to that notifier's URL, with a body from a preset (Slack, Mattermost,
// Discord, Microsoft Teams, Flowdock, Campfire, plain JSON) or a text/template
// of its own.
//
// # Delivery
//
// Send posts to a notifier before it returns, so that its answer reaches the
// caller: the core's outbox, one queue per (adapter, room), keeps a slow
// receiver from blocking the bot or another room. 5xx answers, timeouts and
// network errors are retried with exponential backoff (NotifierConfig
// Attempts, Backoff); a 429 is returned at once as a *chat.RetryAfterError
// carrying the receiver's Retry-After, with nothing posted, and the outbox
// waits and sends again; any other 4xx fails without a retry. Failures are
// logged and counted (Stats). Neither a URL nor a header's secret value ever
// appears in a log line or an error.
//
// # Replies in the HTTP response
//
// An inbound message is delivered with a fresh MessageID. Replies to its
// room (or its thread) while its request waits are collected into the
// response. To attribute replies to the room to the right request, the
// requests of one room wait in turn: the next request's message reaches the
// bot once the one before has answered. A request answers once its replies
// have gone quiet (Hook.Quiet after the last one) or after Hook.Wait.
// Replies that come later (progress, a job's end) go to the hook's outbound
// URL when it has one, and are otherwise logged and dropped with a count.
package webhook
