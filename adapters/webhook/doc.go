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
// Send hands a post to the notifier's queue and returns: a slow or failing
// receiver never blocks the bot. One worker per notifier posts in order and
// retries with exponential backoff on 5xx answers, timeouts and network
// errors, and waits out a 429's Retry-After. A 4xx answer is not retried.
// What cannot be delivered is logged and counted (Stats), never silently
// lost. Send returns a *chat.RetryAfterError when the queue is full, so the
// core's outbox waits instead of piling up posts.
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
