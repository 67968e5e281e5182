package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chimaops/chima/core/store"
)

func newAuditCmd(g *globalFlags) *cobra.Command {
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit [--limit N] [--json]",
		Short: "Show the newest entries of the audit log: who asked for what, where, and how it ended",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g.config)
			if err != nil {
				return err
			}
			st, err := store.Open(cmd.Context(), "sqlite", cfg.Store.Path)
			if err != nil {
				return fmt.Errorf("open store: %w", err)
			}
			defer st.Close()
			entries, err := st.Audit(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(entries)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tUSER\tWHERE\tCOMMAND\tOUTCOME\tDURATION\tTEXT")
			for _, e := range entries {
				what := firstNonEmpty(e.Command, "-")
				if e.Plugin != "" {
					what = e.Plugin + "/" + what
				}
				fmt.Fprintf(tw, "%s\t%s\t%s:%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), e.UserID,
					e.Adapter, e.Room, what, e.Outcome, e.Duration.Round(time.Millisecond), e.Text)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many entries, newest first")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
