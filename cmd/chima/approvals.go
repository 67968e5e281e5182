package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/chimaops/chima/core/config"
	"github.com/chimaops/chima/core/store"
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

func newApprovalsCmd(g *globalFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "List the commands waiting for approval (--all: every request, with how it ended)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g.config)
			if err != nil {
				return err
			}
			// Read only, beside a running bot, as chima audit does.
			st, err := store.Open(cmd.Context(), "sqlite", cfg.Store.Path)
			if err != nil {
				return fmt.Errorf("open store: %w", err)
			}
			defer st.Close()
			state := store.ApprovalPending
			if all {
				state = ""
			}
			list, err := st.ApprovalRequests(cmd.Context(), state, 1000)
			if err != nil {
				return err
			}
			fmt.Fprint(os.Stdout, formatApprovals(list, all))
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every request, not only the pending ones")
	return cmd
}

// formatApprovals renders requests for chima approvals: one line each,
// then one line per vote.
func formatApprovals(list []store.ApprovalRequest, all bool) string {
	if len(list) == 0 {
		if all {
			return "No approval requests.\n"
		}
		return "No command is waiting for approval.\n"
	}
	const t = "2006-01-02 15:04 MST"
	var b strings.Builder
	for _, r := range list {
		who := "approvers " + strings.Join(r.Approvers, ", ") + fmt.Sprintf(" (%d of %d)", len(r.Approvals()), r.Count)
		if r.Confirm {
			who = "the requester's confirmation"
		}
		fmt.Fprintf(&b, "#%d %s  %q  asked by %s in %s:%s at %s, expires %s, %s\n", r.ID, r.State, r.Text, r.Requester,
			r.Adapter, firstNonEmpty(r.RoomName, r.Room), r.CreatedAt.UTC().Format(t), r.ExpiresAt.UTC().Format(t), who)
		for _, v := range r.Votes {
			verb := "approved"
			if !v.Approve {
				verb = "denied"
			}
			fmt.Fprintf(&b, "    %s %s at %s (from %s:%s)", v.Voter, verb, v.At.UTC().Format(t), v.Adapter, v.UserID)
			if v.Reason != "" {
				fmt.Fprintf(&b, ": %s", v.Reason)
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}
