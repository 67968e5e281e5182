package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chimaops/chima/adapters/shell"
	"github.com/chimaops/chima/core/chat"
)

func newSendCmd(g *globalFlags) *cobra.Command {
	var room, user string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   `send [--room R] [--user U] "chima hello world"`,
		Short: "Send the bot one message as if typed on the console, and print every reply",
		Long: `Send one message to the bot without a terminal, print the replies it causes
(including those of background jobs the command started, such as a deploy's
progress and final status) and exit. The jobs run in this process: when
--timeout passes first, they are interrupted. It refuses to run while a bot
with the same config is running, since both would share one store.

The exit status is 0 when the command succeeded; 1 when it failed or was
refused, or the bot could not start; 2 on a usage error: no message, more
than one argument (quote the message), an unknown flag, or a message not
addressed to the bot.`,
		Args: func(_ *cobra.Command, args []string) error {
			switch {
			case len(args) == 1 && strings.TrimSpace(args[0]) != "":
				return nil
			case len(args) <= 1: // none, or an empty one
				return errors.New(`no message to send: give it as one argument, e.g. chima send "chima help"`)
			default:
				return fmt.Errorf("the message must be one argument: quote it, as in chima send %q", strings.Join(args, " "))
			}
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return send(cmd.Context(), g, room, user, timeout, args[0])
		},
	}
	cmd.Flags().StringVar(&room, "room", "", "room to send from (default: the shell adapter's room)")
	cmd.Flags().StringVar(&user, "user", "", "user id to send as (default: the shell adapter's user)")
	cmd.Flags().DurationVar(&timeout, "timeout", 35*time.Minute, "how long to wait for the command and the jobs it started; jobs still running then are interrupted")
	return cmd
}

func send(ctx context.Context, g *globalFlags, room, user string, timeout time.Duration, text string) error {
	// One process owns a store's jobs (lockStore): with a bot running on
	// this config, send's workers would take the bot's queued jobs and end
	// them when send exits.
	a, err := openTool(ctx, g, true)
	if errors.Is(err, errStoreInUse) {
		// Point at the bot, when it answers, rather than at its store.
		if cfg, cerr := loadConfig(g.config); cerr == nil {
			if url, ok := liveBot(ctx, cfg); ok {
				return fmt.Errorf("a bot is running with %s (it answers at %s): chima send would share its store and take its jobs; talk to that bot in chat, or stop it first", g.config, url)
			}
		}
	}
	if err != nil {
		return err
	}
	defer a.close()
	name, room, user := a.console(room, user)
	a.bot.AddAdapter(shell.New(shell.Options{Name: name, In: strings.NewReader(""), Out: os.Stdout, Room: room, User: user, BotName: a.cfg.Bot.Name}))

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stopJobs := a.bot.StartJobs(ctx)
	defer stopJobs()

	msg := chat.Message{
		Ref:  chat.MessageRef{Adapter: name, Room: room, MessageID: "m1"},
		User: chat.User{ID: user, Name: user},
		Text: text,
		Time: time.Now(),
	}
	res, ok := a.bot.Process(ctx, msg)
	if !ok {
		fmt.Fprintf(os.Stderr, "chima: %q is not addressed to the bot; start it with %q\n", text, a.cfg.Bot.Name+" ")
		return exitError{2}
	}
	if err := a.bot.WaitJobs(ctx, res.RequestID); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("--timeout %s passed before the jobs the command started ended; they were interrupted", timeout)
		}
		return fmt.Errorf("waiting for the jobs the command started: %w", err)
	}
	if res.Outcome != "ok" {
		return exitError{1}
	}
	return nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
