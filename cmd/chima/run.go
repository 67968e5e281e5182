package main

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/chzyer/readline"
	"github.com/spf13/cobra"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/httpapi"
	"github.com/chimaops/chima/core/webhook"
	"github.com/chimaops/chima/sdk/wire"
)

func newRunCmd(g *globalFlags) *cobra.Command {
	var (
		replica string
		attach  []string
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the bot with the adapters and plugins in the config",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			att, err := parseAttach(attach, os.Getenv(wire.EnvReattach))
			if err != nil {
				return err
			}
			return runBot(cmd.Context(), g, replica, att)
		},
	}
	cmd.Flags().StringVar(&replica, "replica", "", "this replica's id on a shared (postgres) store; default store.replica, else the host name")
	cmd.Flags().StringArrayVar(&attach, "attach", nil, "NAME='{...}': attach to plugin NAME's process run with --debug (the line it printed) instead of starting it; repeatable; also "+wire.EnvReattach)
	return cmd
}

func runBot(ctx context.Context, g *globalFlags, replica string, attach map[string]wire.Reattach) error {
	cfg, err := loadConfig(g.config)
	if err != nil {
		return err
	}
	// The console gets the terminal: readline, Ctrl-C, a quieter log.
	console := hasConsole(cfg)
	interactive := console && readline.IsTerminal(int(os.Stdin.Fd()))
	level := g.logLevel
	if level == "" {
		level = "info"
		if console {
			level = "warn" // keep the console readable; plugin failures still show
		}
	}
	a, err := newApp(ctx, g.config, appOptions{
		withBot: true, logLevel: level, adapters: true, interactive: interactive, replica: replica,
		// A console on a pipe that reached its end lets its jobs finish,
		// unless another adapter keeps the bot running anyway.
		finishJobs: console && !interactive,
		attach:     attach,
	})
	if err != nil {
		return err
	}
	defer a.close()
	a.warnStartErrs()
	// Once the plugins have described their commands.
	if err := a.checkScheduleCommands(); err != nil {
		return err
	}
	if err := a.checkPolicyArgs(); err != nil {
		return err
	}
	routes, err := adapterRoutes(a.adapters.list, cfg.HTTP.Addr)
	if err != nil {
		return err
	}

	if con := a.adapters.console; con != nil {
		if interactive {
			interrupt := con.Interrupt
			consoleInterrupt.Store(&interrupt)
			defer consoleInterrupt.Store(nil)
			// The shell says who and where you are, and /help, next.
			fmt.Printf("Chima %s on the local console. Type `%s help` to see what it can do; Ctrl-C twice, Ctrl-D or /quit quits.\n",
				version, cfg.Bot.Name)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var httpErr error
	if cfg.HTTP.Addr != "" {
		srv := httpapi.New(httpapi.Options{
			Addr: cfg.HTTP.Addr, Registry: a.metrics.Registry, Logger: a.log,
			Plugins: func() any { return a.pluginStatus() },
			// Unhealthy while a plugin is failed, naming it and why.
			Health:  a.health,
			Details: a.healthDetails,
		})
		if gh := cfg.Webhooks.GitHub; gh != nil {
			secret := os.Getenv(gh.SecretEnv)
			if secret == "" {
				return fmt.Errorf("webhooks.github: environment variable %s is empty; it must hold the hook's secret", gh.SecretEnv)
			}
			srv.Handle("POST /webhooks/github", &webhook.GitHub{
				Secret: []byte(secret), Queue: a.bot.Events(), Logger: a.log.With("component", "webhooks"),
			})
		}
		for _, r := range routes {
			if err := srv.Mount(r.adapter, r.route); err != nil {
				return err
			}
		}
		srv.Handle("GET /", a.bot.Pages())
		if err := srv.Listen(); err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ctx); err != nil {
				httpErr = err
				cancel()
			}
		}()
	}
	err = a.engine.Run(ctx)
	cancel()
	wg.Wait()
	if err == nil {
		err = httpErr
	}
	return err
}

// adapterRoute is one HTTP route of an adapter, to mount under its name.
type adapterRoute struct {
	adapter string
	route   chat.Route
}

// adapterRoutes collects the HTTP routes of the adapters that serve some
// (Routes is called once, here). Routes without http.addr are an error
// naming the adapter: its service could never reach it.
func adapterRoutes(adapters []chat.Adapter, addr string) ([]adapterRoute, error) {
	var out []adapterRoute
	for _, a := range adapters {
		rp, ok := a.(chat.RouteProvider)
		if !ok {
			continue
		}
		rs := rp.Routes()
		if len(rs) > 0 && addr == "" {
			return nil, fmt.Errorf("adapter %s serves HTTP routes (%s %s/%s…) but http.addr is not set; set http.addr so that its service can reach the bot", a.Name(), rs[0].Method, "/"+a.Name(), rs[0].Path)
		}
		for _, r := range rs {
			out = append(out, adapterRoute{adapter: a.Name(), route: r})
		}
	}
	return out, nil
}
