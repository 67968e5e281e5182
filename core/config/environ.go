package config

import (
	"errors"
	"fmt"
	"os"
)

// Environ builds the whole environment of the plugin's process; nothing else
// of the host's environment reaches the plugin. It holds, in this order:
//
//   - PATH from the host, always: a plugin may run other programs (git, ssh,
//     a deploy tool) and cannot find them without it. Env, PassEnv or
//     Secrets may override it.
//   - Env, the literal variables (sorted by name);
//   - PassEnv, the host variables passed through, in the order listed; one
//     the host does not have is left out;
//   - Secrets, each plugin variable set to the value of the host variable it
//     names (sorted by name).
//
// lookup reads the host environment (os.LookupEnv when nil). A secret whose
// host variable is unset or empty is an error that names the plugin, the
// variable and the host variable, never a value; all such secrets are
// reported together. secretValues holds the values of the secrets so the
// caller can redact them from logs and chat. The plugin host adds go-plugin's
// handshake variables itself; Validate keeps the config from setting them.
func (p PluginConfig) Environ(lookup func(string) (string, bool)) (env []string, secretValues []string, err error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var names []string
	values := map[string]string{}
	set := func(name, value string) {
		if _, ok := values[name]; !ok {
			names = append(names, name)
		}
		values[name] = value
	}
	if path, ok := lookup("PATH"); ok {
		set("PATH", path)
	}
	for _, name := range sortedKeys(p.Env) {
		set(name, p.Env[name])
	}
	for _, name := range p.PassEnv {
		if value, ok := lookup(name); ok {
			set(name, value)
		}
	}
	var errs []error
	for _, name := range sortedKeys(p.Secrets) {
		host := p.Secrets[name]
		value, ok := lookup(host)
		if !ok || value == "" {
			state := "is not set"
			if ok {
				state = "is empty"
			}
			errs = append(errs, fmt.Errorf("plugin %s: secret %s: environment variable %s %s", p.Name, name, host, state))
			continue
		}
		set(name, value)
		secretValues = append(secretValues, value)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	env = make([]string, len(names))
	for i, name := range names {
		env[i] = name + "=" + values[name]
	}
	return env, secretValues, nil
}
