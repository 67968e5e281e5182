// Package apps loads and checks the deploy plugin's apps file and answers the
// questions a deploy command asks about an app: which environment, which ref,
// may this room deploy it, which provider settings apply.
//
// The file has the shape of hubot-deploy's (and the seed's) app.json, so teams
// can bring theirs along:
//
//	{
//	  "project-x": {
//	    "provider": "fabric",
//	    "auto_merge": false,
//	    "repository": "oursky/project-x",
//	    "environments": ["live", "edge"],
//	    "allowed_rooms": ["deployment"]
//	  }
//	}
//
// Further keys per app: required_contexts, default_environment, default_ref,
// environment_urls, timeout, notify_rooms, protected_environments (deploys
// to them wait for approval in chat), approvers (who approves them: roles or
// people of chima.yaml; without it, those of chima.yaml's policy), and the
// provider settings script, fabric, capistrano, ansible and heroku (see App).
//
// The keys of real hubot-deploy and Heaven files are read with their meaning:
//
//	heroku_<env>_name  the Heroku app of <env> (Heroku.Apps)
//	heroku_name        the Heroku app of every environment not named otherwise
//	<env>_url          the URL of <env> (EnvironmentURLs), e.g. production_url;
//	                   <env> must be one of the app's environments
//	deploy_script      the shell provider's script, or what runs Capistrano
//	                   (Capistrano.Script, e.g. a bin/cap binstub)
//	github_api         the GitHub Enterprise API of the app (GitHubAPI)
//
// github_token is refused: tokens belong in the plugin's secrets.
//
// Load reports every problem in the file at once, each naming the app, the
// key and its line; an unknown key is a problem, with a suggestion when it
// looks like a typo:
//
//	apps.json:7: project-x: unknown key "enironments" (did you mean "environments"?)
//
// The errors meant for chat (UnknownAppError, UnknownEnvError,
// AmbiguousEnvError, RoomError) have messages that can be shown as they are.
package apps
