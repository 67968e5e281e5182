// Command embed runs Chima's core as a library, without the chima command
// or a config file: a bot on the local console with one plugin, the hello
// example. Build both and type a command:
//
//	go build -o hello ./examples/hello && go build ./examples/embed
//	./embed -plugin ./hello
//	chima hello world
//
// Ctrl-C, SIGTERM or the end of the input stops it, and its plugin with it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/chimaops/chima/adapters/shell"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/engine"
	"github.com/chimaops/chima/core/pluginhost"
)

func main() {
	plugin := flag.String("plugin", "./hello", "the hello plugin's executable (go build ./examples/hello)")
	db := flag.String("store", "embed.db", "the SQLite file that keeps jobs, locks, plugin state and the audit log")
	flag.Parse()
	if err := run(*plugin, *db); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

func run(plugin, db string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e, err := engine.New(ctx, engine.Options{
		Name: "chima",
		// The console reads lines from stdin and shows replies on stdout.
		Adapters:  []chat.Adapter{shell.New(shell.Options{BotName: "chima"})},
		Plugins:   []pluginhost.Spec{{Name: "hello", Path: plugin}},
		StorePath: db,
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	for _, err := range e.StartErrors() {
		fmt.Fprintln(os.Stderr, "embed: warning:", err)
	}
	// Run returns once stopped; Close then stops the plugin and the store.
	return errors.Join(e.Run(ctx), e.Close())
}
