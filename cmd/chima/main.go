// Command chima is the Chima ChatOps bot and its operator tools: run the bot,
// send it one message from a script, explain how a message is understood,
// list plugins and validate configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"sync/atomic"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// exitError carries a process exit code out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	// The bot's live heap is a few MiB: collecting at 50% growth instead of
	// Go's 100% keeps it about 2 MiB smaller (BenchmarkConsoleMemory) at no
	// measurable cost in speed. GOGC, when set, still decides.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(50)
	}
	ctx, stop := stopOnSignals()
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		if ue, ok := asUsageError(err); ok {
			ue.print(os.Stderr)
			os.Exit(exitUsage)
		}
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "chima:", err)
		os.Exit(1)
	}
}

type globalFlags struct {
	config   string
	logLevel string
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "chima",
		Short: "Chima is a ChatOps bot: deploy from chat, with plugins you can write in any language",
		Long: `Chima is a ChatOps bot: deploy from chat, with plugins you can write in any language.

What ships today:
  adapters  shell: the local console (chima run in a terminal, or fed by a pipe);
            slack (Socket Mode or the Events API), mattermost (a bot account),
            webhook (signed hooks in, notifiers out); several at once
  plugins   deploy: deploy, rollback, lock and list deployments, locally or
            through GitHub deployments; cistatus: CI status of GitHub commits
            (ci project-x), notifications, reruns, auto-deploy on green;
            backup: back up databases and directories with restic, list,
            verify by restoring, restore safely; examples/hello and
            examples/pyplugin
            show how to write your own (Go, Python)
  HTTP      /healthz, /metrics, /plugins, deploy log pages, and GitHub
            webhooks at /webhooks/github, and the adapters' routes under
            /<adapter name>/ (when http.addr is set)

Start with chima config validate, then chima run; chima send runs one command
from a script.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&g.config, "config", "c", "chima.yaml", "path to chima.yaml")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "", "debug, info, warn or error (default: warn for the console, info otherwise)")
	root.AddCommand(newRunCmd(g), newSendCmd(g), newExplainCmd(g), newPluginsCmd(g), newConfigCmd(g), newAuditCmd(g), newSchedulesCmd(g), newApprovalsCmd(g), newEventsCmd(g), newPluginCmd())
	markUsageErrors(root)
	return root
}

// consoleInterrupt, when set, takes SIGINT instead of it stopping the
// command: an interactive console counts it as a Ctrl-C press (the terminal
// sends SIGINT whenever readline is not reading it), and quits on the second.
var consoleInterrupt atomic.Pointer[func()]

// stopOnSignals returns a context that SIGTERM, or SIGINT unless an
// interactive console takes it, cancels; stop stops listening.
func stopOnSignals() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				if h := consoleInterrupt.Load(); s == os.Interrupt && h != nil {
					(*h)()
					continue
				}
				cancel()
			case <-done:
				return
			}
		}
	}()
	return ctx, func() { signal.Stop(sigs); close(done); cancel() }
}
