// Command cistatus is Chima's ci-status plugin: `chima ci project-x` merges
// the three CI systems of GitHub (commit statuses, check runs, Actions
// workflow runs and their jobs) into one rollup of the head commit; GitHub's
// webhooks become one chat message per commit or pull request, edited in
// place as runs progress, with a thread reply only when the build breaks,
// keeps failing or is fixed, and a digest of what failed; runs can be rerun
// or cancelled from chat; and an app can be deployed when every required
// check of a commit is green.
//
// Settings (chima.yaml plugins[].settings), decoded strictly by the SDK
// (an unknown key or a value of the wrong shape is a problem naming its
// key path); lists and maps are nested YAML, or a string of YAML or JSON:
//
//	apps_file       the deploy plugin's apps file, so that `ci project-x`
//	                names an app; its auto_deploy key turns on auto-deploy
//	github_api_url  GitHub's REST API (default https://api.github.com/)
//	github_app_id, github_installation_id
//	                authenticate as this GitHub App's installation, with
//	                the secret GITHUB_APP_PRIVATE_KEY, instead of a token
//	subscriptions   a list of subscriptions (see subscription)
//	auto_deploy     a list of {app, branch, environment}
//	auto_deploy_as  the person auto-deploys run as (RunCommand's As)
//	people          a map of GitHub login to a person of chima.yaml's
//	                people:, whom transition replies ping (sdk.MentionPerson)
//
// Secrets (chima.yaml plugins[].secrets): GITHUB_TOKEN, or
// GITHUB_APP_PRIVATE_KEY (the PEM GitHub generated for the app) with
// github_app_id and github_installation_id; both at once is a settings
// problem. An app's installation tokens are exchanged at github_api_url's
// /app/installations/<id>/access_tokens, kept until a minute before they
// expire and renewed then (ghinstallation). Without either the plugin
// still turns webhooks into messages, and `ci` says what to configure.
// With one, a schedule (cistatus:reconcile, every 5 minutes)
// polls the commits whose checks are still running, since GitHub never
// redelivers a webhook delivery that failed; GETs are conditional (ETags),
// so an unchanged answer costs no rate-limit quota.
//
// State lives in the host's KV: track/<repo>@<sha> or track/<repo>#<pr>
// (a commit's or pull request's checks and the message of each room),
// commit/<repo>@<sha> (who pushed, its pull request), line/<room>/<repo>:
// <branch> (the last conclusive state, for broken / still failing /
// fixed), open/… (commits still running), subscriptions (those made in
// chat), autodeploy/<app>/<env>/<sha>, and lease/<repo>@<sha> (which
// replica of the bot is handling a commit now: see lease.go).
package main

import "github.com/chimaops/chima/sdk"

func main() {
	sdk.Serve(newPlugin(&ci{}).spec())
}
