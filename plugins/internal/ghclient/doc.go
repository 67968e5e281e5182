// Package ghclient is how Chima's plugins sign in to GitHub's REST API: with
// a personal or fine-grained token (the secret GITHUB_TOKEN), or as a GitHub
// App's installation (the settings github_app_id and
// github_installation_id, and the secret GITHUB_APP_PRIVATE_KEY), on
// github.com or a GitHub Enterprise Server.
//
// ReadAuth reads and checks the settings and secrets, as problems naming
// their key for `chima config validate`. New makes a go-github client of an
// API URL, taken exactly as given; an app's installation tokens are made by
// ghinstallation from a JWT signed with the app's key, exchanged at that same
// URL, kept, and renewed a minute before they expire. InstallationError turns
// an exchange GitHub refused into a sentence for chat that says what to
// check. The deploy and ci-status plugins both use it, so that the two sign
// in, and fail, alike.
package ghclient
