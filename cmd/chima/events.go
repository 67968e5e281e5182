package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chimaops/chima/core/store"
)

func newEventsCmd(g *globalFlags) *cobra.Command {
	var (
		f      store.EventFilter
		state  string
		since  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "events [--plugin P] [--state S] [--since 24h] [--limit N] [--json]",
		Short: "List recent webhook deliveries and how each plugin took them",
		Long: `List recent webhook deliveries, newest first, one line per plugin that
subscribed to the delivery's event: its state (pending, running, handled,
failed), the attempts made, when it was received and last changed, and why
its last attempt failed.

A delivery is stored before it is acknowledged, then handed to each plugin,
again and again with a doubling wait (webhooks.retry) while the plugin
refuses it or cannot take it, until it is handled or its attempts are used
up: then it is failed. A plugin that is down is handed nothing until it is
back. A redelivery from GitHub hands a failed delivery again to the plugins
that failed it, never to one that handled it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch s := store.EventState(state); s {
			case "", store.EventPending, store.EventRunning, store.EventHandled, store.EventFailed:
				f.State = s
			default:
				return usageError{cmd: cmd, err: fmt.Errorf("--state %q: want pending, running, handled or failed", state)}
			}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return usageError{cmd: cmd, err: err}
				}
				f.Since = t
			}
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
			list, err := st.ListEventDeliveries(cmd.Context(), f)
			if err != nil {
				return err
			}
			if asJSON {
				out := make([]eventJSON, len(list))
				for i, e := range list {
					out[i] = toEventJSON(e)
				}
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			if len(list) == 0 {
				fmt.Println("No webhook deliveries match.")
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RECEIVED\tDELIVERY\tEVENT\tPLUGIN\tSTATE\tATTEMPTS\tLAST CHANGE\tLAST ERROR")
			for _, e := range list {
				lastErr := e.LastError
				if e.State == store.EventPending && e.Attempts > 0 {
					lastErr = "next attempt " + e.NextAt.Local().Format(time.TimeOnly) + ": " + lastErr
				}
				fmt.Fprintf(tw, "%s\t%s\t%s:%s\t%s\t%s\t%d\t%s\t%s\n", e.CreatedAt.Local().Format(time.DateTime),
					e.DeliveryID, e.Source, e.Event, e.Plugin, e.State, e.Attempts,
					e.UpdatedAt.Local().Format(time.DateTime), firstNonEmpty(oneLine(lastErr), "-"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&f.Plugin, "plugin", "", "only the deliveries handed to this plugin")
	cmd.Flags().StringVar(&state, "state", "", "only those in this state: pending, running, handled or failed")
	cmd.Flags().StringVar(&since, "since", "", "only deliveries this recent: a duration (24h, 90m) or an RFC 3339 time (2026-03-14T15:00:00Z)")
	cmd.Flags().IntVar(&f.Limit, "limit", 20, "how many lines, newest first")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array, newest first; keys are snake_case, times RFC 3339 in UTC (\"\" when unset)")
	return cmd
}

// eventJSON is one plugin's handing of one delivery as `chima events
// --json` prints it.
type eventJSON struct {
	Source     string `json:"source"`
	DeliveryID string `json:"delivery_id"`
	Event      string `json:"event"` // "github:push"
	Plugin     string `json:"plugin"`
	State      string `json:"state"`
	Attempts   int    `json:"attempts"`
	LastError  string `json:"last_error"`
	ReceivedAt string `json:"received_at"`
	UpdatedAt  string `json:"updated_at"`
	// NextAttemptAt is when a pending one is next handed over; "" once
	// it ended.
	NextAttemptAt string `json:"next_attempt_at"`
	FinishedAt    string `json:"finished_at"`
}

func toEventJSON(e store.EventDelivery) eventJSON {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	out := eventJSON{
		Source: e.Source, DeliveryID: e.DeliveryID, Event: e.Source + ":" + e.Event, Plugin: e.Plugin,
		State: string(e.State), Attempts: e.Attempts, LastError: e.LastError,
		ReceivedAt: ts(e.CreatedAt), UpdatedAt: ts(e.UpdatedAt), FinishedAt: ts(e.FinishedAt),
	}
	if e.State == store.EventPending {
		out.NextAttemptAt = ts(e.NextAt)
	}
	return out
}

// oneLine keeps a table row on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
