#!/usr/bin/env bash
# Creates the example app's repository for `make run`: a local git repository
# whose script/deploy is what the deploy plugin's shell provider runs. It is
# made once, in bin/demo-repo (git-ignored); delete it to start afresh.
set -euo pipefail
repo=${1:-bin/demo-repo}
[ -d "$repo/.git" ] && exit 0
mkdir -p "$repo/script"
cd "$repo"
git() { command git -c user.name=chima -c user.email=chima@example.com -c init.defaultBranch=main "$@"; }
git init -q
cat > script/deploy <<'SCRIPT'
#!/bin/sh
# The example app's deploy script. The deploy plugin runs it in a clean
# checkout of the commit being deployed, with the deployment in its
# environment; chat text never reaches a shell.
set -e
short=$(printf '%.7s' "$DEPLOY_SHA")
what="$DEPLOY_REF ($short)"
[ "$DEPLOY_REF" = "$DEPLOY_SHA" ] && what=$short  # a rollback deploys the commit itself
echo "Deploying $what to $DEPLOY_ENV for $DEPLOY_USER, task $DEPLOY_TASK"
for step in "building assets" "uploading release" "migrating database" "switching symlink"; do
  echo "-> $step"
  sleep 1
done
echo "$DEPLOY_ENV now runs $short"
SCRIPT
chmod +x script/deploy
echo "Demo app" > README
git add .
git commit -q -m "Demo app"
git checkout -q -b feature-1
echo "A feature" >> README
git commit -q -am "Add a feature"
git checkout -q main
echo "created $repo"
