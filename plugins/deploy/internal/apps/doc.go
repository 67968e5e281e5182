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
// environment_urls, timeout, notify_rooms, protected_environments, and the
// provider settings script, fabric, capistrano, ansible and heroku (see App).
// hubot-deploy's heroku_<env>_name keys are read into Heroku.Apps.
//
// Load reports every problem in the file at once, each naming the app and the
// key; an unknown key is a problem, with a suggestion when it looks like a
// typo:
//
//	apps.json: project-x: unknown key "enironments" (did you mean "environments"?)
//
// The errors meant for chat (UnknownAppError, UnknownEnvError,
// AmbiguousEnvError, RoomError) have messages that can be shown as they are.
package apps
