// Package configpath resolves the paths a plugin's settings give (an apps
// file, a workspace, a cache) against chima.yaml's folder, which the host
// passes as the setting chima_config_dir, so that a relative path means the
// same wherever the bot was started.
package configpath

import "path/filepath"

// Resolve is p relative to dir, chima.yaml's folder: an absolute p, an
// empty p, or an empty dir (a host that did not say) leave p as it is.
func Resolve(dir, p string) string {
	if p == "" || filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}
