// Command deploy is Chima's deploy plugin: `chima deploy project-x/main to
// edge` creates a deployment (on GitHub when a token or a GitHub App is
// configured, in the store otherwise), runs it as a durable job with the app's provider (a
// shell script, Fabric, Capistrano, Ansible or Heroku) in a clean checkout of
// the exact commit, streams progress into the thread and reports the end to
// the room. Its grammar is hubot-deploy's.
//
// A deployment's log is served at /deployments/<id>/log?token=<token>; the
// token is an HMAC of the id under a per-installation secret (kept in the
// plugin's state as page-secret), so only the links Chima gives out
// (deploy:status, failure reports, GitHub deployment statuses) open it.
//
// Settings (chima.yaml plugins[].settings), decoded strictly by the SDK (an
// unknown key or a value of the wrong type is a problem naming its key):
//
//	apps_file       the apps file (hubot-deploy's app.json shape); required
//	workspace_dir   where repository mirrors live
//	checkout_dir    where each deployment's checkout is made (default: a
//	                tmpfs, /dev/shm, when there is one)
//	github_api_url  GitHub's REST API (default https://api.github.com/)
//	github_clone_url  clone URL template for GitHub repositories
//	                (default https://github.com/{owner}/{name}.git)
//	instance        this bot's name in deployment payloads (default: the bot's)
//	github_app_id, github_installation_id
//	                sign in as this GitHub App's installation, with the
//	                secret GITHUB_APP_PRIVATE_KEY, instead of a token
//
// `chima config validate` checks these settings and the apps file (the
// plugin implements Validate), naming the file, line and key of each
// problem.
//
// No process of a deploy outlives it: each provider command runs under a
// reaper (this binary, re-executed) that ends its whole process tree on
// success, failure, cancel and timeout, and when the plugin dies, even by
// SIGKILL. Every process of a deploy carries CHIMA_DEPLOY_TAG in its
// environment, and the plugin ends whatever still carries its tag when it
// starts, before it runs anything: two deploys of one app and environment
// never overlap, even across a crash. A plugin that chima explain or chima
// plugins starts only to describe it (setting chima_describe_only) sweeps
// nothing: a bot of the same config may be deploying beside it.
//
// Secrets (chima.yaml plugins[].secrets): GITHUB_TOKEN, or
// GITHUB_APP_PRIVATE_KEY (the PEM GitHub generated for the app) with
// github_app_id and github_installation_id, turns on GitHub mode; both at
// once is a settings problem. An app's installation tokens are exchanged at
// github_api_url's (or an app's github_api's) /app/installations/<id>/
// access_tokens, kept until a minute before they expire (ghinstallation),
// and also authenticate git's clones and fetches of the app's https
// repositories. A Heroku app's token variable (HEROKU_API_KEY by default).
package main

import (
	"github.com/chimaops/chima/plugins/deploy/internal/provider"
	"github.com/chimaops/chima/sdk"
)

func main() {
	// First: this binary is also the reaper of every deploy command it
	// starts, which ends the command's whole process tree.
	provider.ServeReaper()
	sdk.Serve(newPlugin(&deployer{}).spec())
}
