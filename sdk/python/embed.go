// Package python carries the Python SDK for Chima plugins, chima_plugin, so
// that the chima binary can write it out beside a new plugin (`chima plugin
// new NAME --lang python`). The library itself is Python: see
// chima_plugin/__init__.py.
package python

import "embed"

// Library is the chima_plugin package (its .py files and the generated
// protocol code under chima_plugin/pb), rooted at "chima_plugin": copy it
// next to a plugin script to make `import chima_plugin` work there.
//
//go:embed all:chima_plugin
var Library embed.FS
