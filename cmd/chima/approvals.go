package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/chimaops/chima/core/config"
)

// checkPolicyArgs makes a policy whose when names an argument its command
// does not have an error at start, naming the file and key: once the
// plugins have described their commands, each argument of a when must be
// one of the command's. A policy whose command no started plugin has is
// left alone (a plugin may not have started, or it names "*").
func (a *app) checkPolicyArgs() error {
	var problems []config.Problem
	for i, pol := range a.cfg.Policies {
		if len(pol.When) == 0 {
			continue
		}
		args, found := a.commandArgs(pol.Command)
		if !found {
			if pol.Command != "*" && len(a.startErrs) == 0 {
				fmt.Fprintln(os.Stderr, "chima: warning:", a.cfg.Problem(fmt.Sprintf("policies[%d].command", i),
					fmt.Sprintf("%q is no command of any plugin; its when and approval apply to nothing", pol.Command)))
			}
			continue
		}
		for _, arg := range sortedKeys(pol.When) {
			if !slices.Contains(args, strings.ToLower(arg)) {
				key := fmt.Sprintf("policies[%d].when.%s", i, arg)
				list := "it has none"
				if len(args) > 0 {
					list = "its arguments: " + strings.Join(args, ", ")
				}
				problems = append(problems, a.cfg.Problem(key, fmt.Sprintf("%q is no argument of %s (%s)", arg, pol.Command, list)))
			}
		}
	}
	if len(problems) > 0 {
		return &config.ValidationError{Problems: problems}
	}
	return nil
}

// commandArgs returns the argument names (sorted, each once) of the
// commands a policy's command names: "command", "plugin/command" or "*",
// across the started plugins, and whether any command matched.
func (a *app) commandArgs(command string) ([]string, bool) {
	wantPlugin, wantCmd, qualified := strings.Cut(strings.ToLower(command), "/")
	if !qualified {
		wantPlugin, wantCmd = "", wantPlugin
	}
	var args []string
	found := false
	for _, p := range a.host.Plugins() {
		if wantPlugin != "" && p != wantPlugin {
			continue
		}
		for _, c := range a.host.Manifest(p).GetCommands() {
			if wantCmd != "*" && !strings.EqualFold(c.GetName(), wantCmd) {
				continue
			}
			found = true
			for _, arg := range c.GetArgs() {
				args = append(args, strings.ToLower(arg.GetName()))
			}
		}
	}
	slices.Sort(args)
	return slices.Compact(args), found
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
