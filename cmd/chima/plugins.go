package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chimaops/chima/core/config"
	"github.com/chimaops/chima/core/pluginhost"
)

func newPluginsCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "List the plugins: version, protocol, commands and state",
		Long: `List each configured plugin with its version, protocol version, commands and
state (running, restarting, failed). When a bot with this config is running and
serves HTTP, its live view is shown; otherwise the plugins are started to ask them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g.config)
			if err != nil {
				return err
			}
			status, source := liveStatus(cmd.Context(), cfg)
			if status == nil {
				a, err := openTool(cmd.Context(), g, false)
				if err != nil {
					return err
				}
				defer a.close()
				status, source = a.pluginStatus(), listingSource
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(status)
			}
			printPlugins(os.Stdout, status, source, source == listingSource)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// liveBot reports whether a bot with this config is running: its HTTP
// server answers /healthz, healthy (200) or not (503, a plugin is failed).
func liveBot(ctx context.Context, cfg *config.Config) (string, bool) {
	if cfg.HTTP.Addr == "" {
		return "", false
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	url := strings.TrimSuffix(cfg.HTTP.BaseURL, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/healthz", nil)
	if err != nil {
		return "", false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", false
	}
	resp.Body.Close()
	return url, resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusServiceUnavailable
}

// liveStatus asks a running bot for its plugins, if one answers.
func liveStatus(ctx context.Context, cfg *config.Config) ([]pluginhost.Status, string) {
	if cfg.HTTP.Addr == "" {
		return nil, ""
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	url := strings.TrimSuffix(cfg.HTTP.BaseURL, "/") + "/plugins"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, ""
	}
	var st []pluginhost.Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return nil, ""
	}
	return st, "live, from the bot at " + cfg.HTTP.BaseURL
}

// listingSource is the source of a listing whose plugins were started
// only for it: they stop with it, so a failed one has no next try.
const listingSource = "started for this listing"

// printPlugins prints status as a table, then why each plugin that does not
// run is down, then where the listing comes from. oneShot says the plugins
// were started only for it.
func printPlugins(w io.Writer, status []pluginhost.Status, source string, oneShot bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tPROTOCOL\tSTATE\tCOMMANDS")
	for _, s := range status {
		version := s.Version
		if version == "" {
			version = "-"
		}
		state := string(s.State)
		var notes []string
		if s.Restarts > 0 {
			notes = append(notes, fmt.Sprintf("%d restarts", s.Restarts))
		}
		if !s.NextRetry.IsZero() && !oneShot {
			notes = append(notes, "next try in "+max(time.Until(s.NextRetry), 0).Round(time.Second).String())
		}
		if len(notes) > 0 {
			state += " (" + strings.Join(notes, ", ") + ")"
		}
		// A plugin that never answered Describe has told no protocol minor.
		protocol := "-"
		if s.Version != "" {
			protocol = fmt.Sprintf("%d.%d", s.ProtocolVersion, s.ProtocolMinor)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, version, protocol, state, strings.Join(s.Commands, ", "))
	}
	tw.Flush()
	for _, s := range status {
		if s.LastError != "" && s.State != pluginhost.StateRunning {
			fmt.Fprintf(w, "%s: %s\n", s.Name, s.LastError)
		}
		for _, p := range s.Problems {
			fmt.Fprintf(w, "%s: %s; it does not run\n", s.Name, p)
		}
	}
	fmt.Fprintf(w, "(%s)\n", source)
}
