// Package slack is Chima's Slack adapter, built on github.com/slack-go/slack.
//
// It receives over Socket Mode when an app-level token (xapp-…) is set —
// no public URL needed, reconnecting by itself — and otherwise over HTTP:
// Routes serves the Events API ("events"), slash commands ("commands") and
// interactivity ("interactive"), each verified with Slack's v0 request
// signature and its five-minute window. Both ways deliver the same things:
//
//   - app_mention (the bot's <@U…> removed, Message.Mentioned set) and
//     message.im (Message.Direct) are commands; the bot's own messages,
//     other bots', edits and deletions are not; an event delivered twice
//     (a retry) is handled once;
//   - the slash command (/chima by default), acknowledged at once, becomes a
//     message addressed to the bot with a synthetic id; its answer goes to
//     the channel, or through its response_url where the bot cannot post;
//   - block_actions button clicks become chat.Interactions with the
//     button's action id and value unchanged.
//
// Incoming text is normalised (<http://x|x> → x, <@U123> → @name,
// <#C1|ops> → #ops, &amp; → &). Outgoing chat.Outputs are rendered as
// mrkdwn text, or as Block Kit (header, sections of at most 3,000
// characters, fields, ``` code, an actions block of buttons) with a plain
// text fallback for notifications; replies go into threads and progress
// edits one message with chat.update. Slack's rate limits come back as
// chat.RetryAfterError and a channel the bot cannot post to as
// chat.ErrUnknownRoom.
package slack
