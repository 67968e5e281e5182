#!/usr/bin/env bash
# deps.sh measures what a plugin author takes on with the SDK: a throwaway
# module that imports it (and nothing else) is tidied, and the modules in its
# graph (`go list -m all`) and the modules actually compiled into a plugin
# are counted. It fails when the compiled set passes MAX_BUILT.
set -euo pipefail
MAX_BUILT=${MAX_BUILT:-20}
sdk=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/go.mod" <<MOD
module example.com/authorplugin

go 1.24

require github.com/chimaops/chima/sdk v0.0.0
replace github.com/chimaops/chima/sdk => $sdk
MOD
cat > "$tmp/main.go" <<'GO'
package main

import "github.com/chimaops/chima/sdk"

func main() { sdk.Serve(&sdk.Plugin{Name: "author"}) }
GO
cd "$tmp"
export GOWORK=off GOFLAGS=-mod=mod
go mod tidy >/dev/null
graph=$(go list -m all | wc -l)
built=$(go list -deps -f '{{with .Module}}{{.Path}}{{end}}' . | sort -u | grep -c .)
go build -o /dev/null .
echo "sdk: an author module that imports only the SDK has $graph modules in its graph (go list -m all), $built compiled into the plugin (limit $MAX_BUILT)"
[ "$built" -le "$MAX_BUILT" ] || { echo "sdk: the SDK pulls in $built modules, more than $MAX_BUILT" >&2; exit 1; }
