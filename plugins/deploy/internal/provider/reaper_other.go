//go:build !linux

package provider

import (
	"sync/atomic"
	"time"
)

// ServeReaper does nothing outside Linux: there is no child subreaper, and
// Run ends only the command's process group.
func ServeReaper() {}

// reaperOn is never set outside Linux.
var reaperOn atomic.Bool

func reaperArgs(time.Duration, string, []string) []string { return nil }

// TagEnv is the environment variable that tags every process of a command
// Run started with a Spec.Tag.
const TagEnv = "CHIMA_DEPLOY_TAG"

// Sweep finds nothing outside Linux (there is no /proc to read).
func Sweep(string) (int, error) { return 0, nil }

func sweepTag(string) (int, error) { return 0, nil }
