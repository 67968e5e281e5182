package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chimaops/chima/core/bot"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/config"
	"github.com/chimaops/chima/core/router"
	"github.com/chimaops/chima/core/schedule"
	"github.com/chimaops/chima/core/store"
)

func newSchedulesCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "schedules",
		Short: "List the scheduled commands with their next run and how their last run ended",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g.config)
			if err != nil {
				return err
			}
			// Read only, beside a running bot, as chima audit does.
			st, err := openStore(cmd.Context(), cfg)
			if err != nil {
				return fmt.Errorf("open store: %w", err)
			}
			defer st.Close()
			list, err := schedule.List(cmd.Context(), scheduleSpecs(cfg), scheduleStore{st}, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintln(os.Stdout, schedule.Format(list))
			return nil
		},
	}
}

// scheduleSpecs are the config's schedules as the scheduler takes them.
func scheduleSpecs(cfg *config.Config) []schedule.Spec {
	out := make([]schedule.Spec, 0, len(cfg.Schedules))
	for _, s := range cfg.Schedules {
		out = append(out, schedule.Spec{
			Name: s.Name, Cron: s.Cron, Timezone: s.Timezone, Command: s.Command,
			Room: s.Room, As: s.As, CatchUp: s.CatchUp,
		})
	}
	return out
}

// scheduleStore is the store as the scheduler uses it.
type scheduleStore struct{ *store.Store }

func (s scheduleStore) LastSlot(ctx context.Context, name string) (time.Time, string, bool, error) {
	r, ok, err := s.LastScheduleRun(ctx, name)
	return r.Slot, r.Outcome, ok, err
}

// roomRef reads a schedule's room: "adapter:room", or a bare room that
// the bot gives the default adapter.
func roomRef(room string) chat.MessageRef {
	if adapter, name, ok := strings.Cut(room, ":"); ok {
		return chat.MessageRef{Adapter: adapter, Room: name}
	}
	return chat.MessageRef{Room: room}
}

// newScheduler builds the scheduler of a's config, running commands
// through b, and the lister of the chat command schedules. Nil without
// schedules.
func (a *app) newScheduler(b func() *bot.Bot) (*schedule.Scheduler, func(context.Context) (string, error), error) {
	specs := scheduleSpecs(a.cfg)
	if len(specs) == 0 {
		return nil, nil, nil
	}
	st := scheduleStore{a.store}
	s, err := schedule.New(schedule.Options{
		Schedules: specs, Store: st, Logger: a.log.With("component", "schedules"),
		Run: func(ctx context.Context, sp schedule.Spec, _ time.Time) (string, string) {
			res := b().RunScheduled(ctx, sp.Name, roomRef(sp.Room), sp.As, sp.Command)
			return res.RequestID, res.Outcome
		},
	})
	if err != nil {
		return nil, nil, err
	}
	list := func(ctx context.Context) (string, error) {
		l, err := schedule.List(ctx, specs, st, time.Now())
		if err != nil {
			return "", err
		}
		return schedule.Format(l), nil
	}
	return s, list, nil
}

// checkScheduleCommands makes a schedule whose command no plugin has an
// error at start, naming the file and key: once the plugins have
// described their commands, each must route. A command that is unknown
// while some plugin could not start is only a warning: it may be that
// plugin's, and the bot runs without it, as it does for chat.
func (a *app) checkScheduleCommands() error {
	var problems []config.Problem
	for i, s := range a.cfg.Schedules {
		key := fmt.Sprintf("schedules[%d].command", i)
		res := a.router.Parse(s.Command)
		switch {
		case res.Kind == router.Matched:
		case res.Kind == router.Unknown && len(a.startErrs) > 0:
			fmt.Fprintln(os.Stderr, "chima: warning:", a.cfg.Problem(key, fmt.Sprintf("%q is no command of the plugins that started; it fails until its plugin runs", s.Command)))
		case res.Kind == router.Unknown:
			problems = append(problems, a.cfg.Problem(key, fmt.Sprintf("%q is no command of any plugin (say `help` in chat to list them)", s.Command)))
		default:
			problems = append(problems, a.cfg.Problem(key, fmt.Sprintf("%q does not run a plugin command: %s", s.Command, firstNonEmpty(res.Problem, res.Kind.String()))))
		}
	}
	if len(problems) > 0 {
		return &config.ValidationError{Problems: problems}
	}
	return nil
}
