// Package provider runs a deployment: it turns a Deployment (app, env, ref,
// exact SHA, task, hosts, user, checkout directory and the app's settings)
// into real commands and runs them, or, for Heroku, into Platform API calls.
//
//	p, err := provider.New(app.Provider, provider.Options{})
//	err = p.Deploy(ctx, provider.Deployment{ID: 7, App: "project-x", Env: "edge",
//		Ref: "main", SHA: sha, User: "alice", Dir: checkout.Dir, Settings: app}, logWriter)
//
// Commands are built as an argv and an explicit environment (a Spec), never
// as a shell string, and run by Run: in their own process group, with stdin
// from /dev/null, stdout and stderr combined and written line by line to the
// caller's io.Writer. When the context ends (cancel or timeout) the whole
// process tree gets SIGTERM, then SIGKILL after a grace period; when the
// command exits, whatever it left running is ended the same way, so no
// deploy process outlives its deployment. On Linux the command runs under a
// reaper (ServeReaper): a child subreaper that keeps every process the
// command starts below it, even one that calls setsid or double-forks, and
// that ends the tree when the plugin dies, even by SIGKILL. Each process
// carries the Spec's Tag in its environment (TagEnv), and Sweep ends what
// still carries it when the plugin starts again, in case the reaper itself
// was killed. cgroups are not used: the reaper needs no cgroup v2 mount or
// delegation.
//
// The bot's own environment is not passed on: commands get Options.Env (by
// default MinimalEnv, which holds no secrets) plus the deploy variables
// DEPLOY_APP, DEPLOY_ENV, DEPLOY_REF, DEPLOY_SHA, DEPLOY_TASK, DEPLOYMENT_ID,
// DEPLOY_HOSTS and DEPLOY_USER (see Deployment.Environ). A tool that is not
// installed fails with a message naming it.
//
// # shell
//
// Runs the repository's script (the app's "script", default script/deploy),
// which must be an executable regular file inside the checkout (a symlink
// out of it is refused), with no arguments, in the checkout, with the deploy
// variables.
//
// # fabric
//
// Fabric 2, as Debian ships it. Fabric 1's `fab -R <env>
// <task>:branch_name=<ref>` no longer works: in Fabric 2, -R means --dry
// (echo commands instead of running them) and task:arg=value is answered
// with "No idea what ...". The command is
//
//	fab --search-root <checkout> [--hosts <h1,h2>] <task> --env=<env> --ref=<ref>
//
// so the repository's fabfile.py (or fabfile package) defines the task with
// exactly the parameters env and ref:
//
//	import os
//	from fabric import task
//
//	@task
//	def deploy(c, env, ref):
//	    sha = os.environ["DEPLOY_SHA"]  # the exact commit: deploy this
//	    c.run("./build.sh " + sha)      # on the bot, when no hosts were given
//
//	@task
//	def deploy_migrate(c, env, ref):    # chat: deploy:migrate
//	    ...
//
// Without hosts, c is an Invoke context whose c.run runs on the bot, and the
// fabfile chooses its servers for env (what Fabric 1's roles did). With hosts
// from chat ("deploy app to edge/web1,web2") the task runs once per host
// with c a Connection: c.run runs on that host over SSH, c.local on the bot.
// The task is the app's fabric.task (default "deploy") for a plain deploy,
// or the chat task; ":" and "_" become "-", which is how Invoke spells task
// names, so deploy:migrate runs deploy_migrate. The "--env=" and "--ref="
// forms keep values from being read as options.
//
// # capistrano
//
// Capistrano 3: `cap <env> <task>` in the checkout, with BRANCH=<ref>,
// HOSTS=<hosts> when hosts were given (Capistrano's host filter), and the
// deploy variables. The task is the app's capistrano.task (default
// "deploy") for a plain deploy, or the chat task as it is ("deploy:migrate"
// is a Rake namespace). The Capfile and config/deploy/<env>.rb must exist.
//
// # ansible
//
//	ansible-playbook [-i <inventory>] [--limit <hosts>] --extra-vars <json> -- <playbook>
//
// in the checkout. The extra vars are one JSON object, never a k=v string
// (see Deployment.ExtraVars). A relative inventory and the playbook must be
// inside the checkout.
//
// # heroku
//
// A Platform API build from a source tarball of the checkout; see Heroku.
package provider
