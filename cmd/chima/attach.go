package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/chimaops/chima/core/pluginhost"
	"github.com/chimaops/chima/sdk/wire"
)

// parseAttach reads the plugins to attach to: CHIMA_REATTACH_PLUGINS' JSON
// object (env, may be empty), then each --attach NAME=JSON, which wins over
// the environment for the same name.
func parseAttach(flags []string, env string) (map[string]wire.Reattach, error) {
	out := map[string]wire.Reattach{}
	if strings.TrimSpace(env) != "" {
		m, err := wire.ParseReattachEnv(env)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, m)
	}
	for _, f := range flags {
		name, js, ok := strings.Cut(f, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--attach %q: want NAME='{...}', the line the plugin printed when run with --debug", f)
		}
		r, err := wire.ParseReattach(js)
		if err != nil {
			return nil, fmt.Errorf("--attach %s: %w", name, err)
		}
		out[name] = r
	}
	return out, nil
}

// applyAttach makes each named plugin's spec attach to its debug process.
// Every name must be an enabled plugin of the config: its settings, rooms
// and permissions still come from there.
func applyAttach(specs []pluginhost.Spec, attach map[string]wire.Reattach) error {
	for _, name := range slices.Sorted(maps.Keys(attach)) {
		i := slices.IndexFunc(specs, func(s pluginhost.Spec) bool { return s.Name == name })
		if i < 0 {
			names := make([]string, 0, len(specs))
			for _, s := range specs {
				names = append(names, s.Name)
			}
			return fmt.Errorf("attach %s: no enabled plugin of that name in the config (plugins: %s); add it to plugins: first, its settings apply to the attached process",
				name, strings.Join(names, ", "))
		}
		r := attach[name]
		specs[i].Attach = &r
	}
	return nil
}
