// Package mattermost is Chima's Mattermost adapter. It talks to a
// Mattermost server (6.x) as a bot account, through the official client of
// github.com/mattermost/mattermost-server/v6/model: it receives posts over
// the WebSocket API (reconnecting with backoff), posts, threads and edits
// over the REST API (Client4), renders chat.Output as Mattermost Markdown
// plus message attachments with interactive buttons, and serves the /chima
// slash command and the buttons' integration actions on the bot's HTTP
// server.
//
// Package mmtest holds a faithful fake of the server for tests.
package mattermost
