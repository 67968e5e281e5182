// Package node holds chima-plugin, the Node.js library that serves a Chima
// plugin the way go-plugin's Go servers do (handshake, automatic mTLS, the
// broker and the Host service), so that Go code can ship it: `chima plugin
// new NAME --lang node` copies it next to a new plugin.
package node

import "embed"

// Library is the chima-plugin npm package as it is in the repository, under
// the folder chima-plugin/: package.json, index.js, README.md and proto/.
// The files are named one by one, so that a node_modules folder an author
// installs in sdk/node/chima-plugin is never embedded.
//
//go:embed chima-plugin/package.json chima-plugin/index.js chima-plugin/README.md chima-plugin/proto
var Library embed.FS
