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
	var f store.AuditFilter
	var since string
	cmd := &cobra.Command{
		Use:   "audit [--user U] [--command C] [--outcome O] [--since 24h] [--limit N] [--json]",
		Short: "Show the newest entries of the audit log: who asked for what, where, and how it ended",
		Long: `Show the newest entries of the audit log: who asked for what, where, what the
core decided and how it ended. An allowed command's entry is written before
it runs, with outcome "running", and its outcome replaces that when it ends;
one the bot died under says "interrupted" once the bot is back.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return usageError{cmd: cmd, err: err}
				}
				f.Since = t
			}
			f.Limit = limit
			cfg, err := loadConfig(g.config)
			if err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), cfg)
			if err != nil {
				return fmt.Errorf("open store: %w", err)
			}
			defer st.Close()
			entries, err := st.AuditWhere(cmd.Context(), f)
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]auditJSON, len(entries))
				for i, e := range entries {
					out[i] = toAuditJSON(e)
				}
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tUSER\tWHERE\tCOMMAND\tOUTCOME\tDURATION\tTEXT")
			for _, e := range entries {
				what := firstNonEmpty(e.Command, "-")
				if e.Plugin != "" {
					what = e.Plugin + "/" + what
				}
				text := e.Text
				if e.Via != "" {
					// A click is not typed text; the table must not pass
					// it off as such.
					text = "(" + e.Via + ") " + text
				}
				fmt.Fprintf(tw, "%s\t%s\t%s:%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), e.UserID,
					e.Adapter, e.Room, what, e.Outcome, e.Duration.Round(time.Millisecond), text)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many entries, newest first")
	cmd.Flags().StringVar(&f.User, "user", "", "only this person's entries: adapter:id (slack:U024BE7LH), or a plain id or name on any adapter")
	cmd.Flags().StringVar(&f.Command, "command", "", "only this command's entries: a name (deploy) or plugin/command")
	cmd.Flags().StringVar(&f.Outcome, "outcome", "", "only entries with this outcome (ok, denied, rejected, error, running, interrupted, …); allowed means every one that was let run")
	cmd.Flags().StringVar(&since, "since", "", "only entries this recent: a duration (24h, 90m) or an RFC 3339 time (2026-03-14T15:00:00Z)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array, newest first; keys are snake_case and durations say their unit (duration_ms)")
	return cmd
}

// auditJSON is one audit entry as `chima audit --json` prints it: snake_case
// keys, as the bot's /plugins endpoint uses, and the unit of a duration in
// its name. Empty strings are kept, so every entry has every key.
type auditJSON struct {
	ID        int64  `json:"id"`
	Time      string `json:"time"` // RFC 3339, UTC, milliseconds
	RequestID string `json:"request_id"`
	Adapter   string `json:"adapter"`
	Room      string `json:"room"`
	UserID    string `json:"user_id"`
	UserName  string `json:"user_name"`
	Text      string `json:"text"`
	Plugin    string `json:"plugin"`
	Command   string `json:"command"`
	Outcome   string `json:"outcome"`
	// Decision is what the core decided: allowed, or the outcome of a
	// request that ran nothing (denied, rejected, unavailable).
	Decision   string  `json:"decision"`
	Detail     string  `json:"detail"`
	DurationMS float64 `json:"duration_ms"` // to the microsecond
	// Via is "" for a typed command, "button <ref>" or "action <ref>" for
	// a click on a button of the message ref.
	Via string `json:"via"`
}

func toAuditJSON(e store.AuditEntry) auditJSON {
	return auditJSON{
		ID: e.ID, Time: e.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"), RequestID: e.RequestID,
		Adapter: e.Adapter, Room: e.Room, UserID: e.UserID, UserName: e.UserName, Text: e.Text,
		Plugin: e.Plugin, Command: e.Command, Outcome: e.Outcome, Decision: store.Decision(e.Outcome), Detail: e.Detail,
		DurationMS: float64(e.Duration.Round(time.Microsecond)) / float64(time.Millisecond),
		Via:        e.Via,
	}
}

// parseSince reads --since: a Go duration back from now (24h), or an RFC
// 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %s: a duration back from now must not be negative", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (24h, 90m) or an RFC 3339 time (2026-03-14T15:00:00Z)", s)
}
