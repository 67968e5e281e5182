package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/chimaops/chima/adapters/mattermost"
	"github.com/chimaops/chima/adapters/shell"
	"github.com/chimaops/chima/adapters/slack"
	"github.com/chimaops/chima/adapters/webhook"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/config"
)

// adapterTypes are the chat adapter types a config's adapters: entries may
// name in `type`. Each adapter package provides its factory; the core names
// none of them.
var adapterTypes = map[string]chat.Factory{
	shell.Name:      shell.Factory,
	slack.Type:      slack.Factory,
	mattermost.Type: mattermost.Factory,
	"webhook":       webhook.Factory,
}

// builtAdapters are the adapters of a config, built by their factories.
type builtAdapters struct {
	list []chat.Adapter
	// secrets are the values the factories read through Setup.Secret, for
	// the redactor.
	secrets []string
	// console is the first adapter of type shell, nil when there is none:
	// it gets the terminal's Ctrl-C.
	console *shell.Adapter
}

// buildAdapters builds every configured adapter through its type's factory.
// Factories touch no network, so `chima config validate` builds them too.
// The error is a *config.ValidationError listing every problem, each
// naming its key (adapters[1].bot_token_env). log is handed to the adapters;
// it may be a logger whose handler is set later (lateHandler).
func buildAdapters(cfg *config.Config, log *slog.Logger, interactive bool) (*builtAdapters, error) {
	out := &builtAdapters{}
	var problems []config.Problem
	for _, ac := range cfg.Adapters {
		factory := adapterTypes[ac.Type]
		if factory == nil {
			p := ac.Problem("type", fmt.Sprintf("%q is not an adapter type of this Chima; types: %s", ac.Type, strings.Join(slices.Sorted(maps.Keys(adapterTypes)), ", ")))
			problems = append(problems, p)
			continue
		}
		var secretErrs []config.Problem
		setup := chat.Setup{
			Name:        ac.Name,
			Decode:      ac.Decode,
			BotName:     cfg.Bot.Name,
			Logger:      log.With("adapter", ac.Name),
			Interactive: interactive,
			Secret: func(env string) (string, error) {
				v := os.Getenv(env)
				if v == "" {
					err := fmt.Errorf("environment variable %s is empty; it must hold the adapter's secret", env)
					secretErrs = append(secretErrs, ac.Problem(ac.OptionWithValue(env), err.Error()))
					return "", err
				}
				out.secrets = append(out.secrets, v)
				return v, nil
			},
		}
		a, err := factory(setup)
		switch {
		case err != nil && len(secretErrs) > 0:
			problems = append(problems, secretErrs...)
		case err != nil:
			problems = append(problems, factoryProblems(ac, err)...)
		case a == nil:
			problems = append(problems, ac.Problem("", "the adapter factory returned no adapter"))
		case a.Name() != ac.Name:
			problems = append(problems, ac.Problem("name", fmt.Sprintf("the %s factory built an adapter named %q, not %q", ac.Type, a.Name(), ac.Name)))
		default:
			out.list = append(out.list, a)
			if sh, ok := a.(*shell.Adapter); ok && out.console == nil {
				out.console = sh
			}
		}
	}
	if len(problems) > 0 {
		return nil, &config.ValidationError{Problems: problems}
	}
	return out, nil
}

// factoryProblems turns a factory's error into problems: the decoder's own
// (they carry their keys), an OptionError's key, else the entry as a whole.
func factoryProblems(ac config.AdapterConfig, err error) []config.Problem {
	var ve *config.ValidationError
	if errors.As(err, &ve) {
		return ve.Problems
	}
	var oe *chat.OptionError
	if errors.As(err, &oe) {
		return []config.Problem{ac.Problem(oe.Key, oe.Err.Error())}
	}
	return []config.Problem{ac.Problem("", err.Error())}
}

// consoleConfig returns the name and settings of the first adapter of type
// shell, for `chima send`, or the shell defaults when there is none.
func consoleConfig(cfg *config.Config) (string, shell.Config) {
	c := shell.DefaultConfig()
	for _, ac := range cfg.Adapters {
		if ac.Type == shell.Name {
			_ = ac.Decode(&c) // a bad entry fails the bot's start; send takes what it can
			return ac.Name, c
		}
	}
	return shell.Name, c
}

// hasConsole reports whether an adapter of type shell is configured.
func hasConsole(cfg *config.Config) bool {
	for _, ac := range cfg.Adapters {
		if ac.Type == shell.Name {
			return true
		}
	}
	return false
}

// lateHandler is a slog.Handler whose destination is set after it is handed
// out: adapters are built (and get their logger) before the redactor that
// must mask the secrets they read, and so before the bot's log handler
// exists. Records logged before Set are dropped.
type lateHandler struct {
	dst *atomic.Pointer[slog.Handler]
	ops []func(slog.Handler) slog.Handler
	// built caches dst with ops applied, once dst is set.
	built *atomic.Pointer[slog.Handler]
}

func newLateHandler() *lateHandler {
	return &lateHandler{dst: new(atomic.Pointer[slog.Handler]), built: new(atomic.Pointer[slog.Handler])}
}

// Set sets the destination of h and of every handler derived from it.
func (h *lateHandler) Set(dst slog.Handler) { h.dst.Store(&dst) }

func (h *lateHandler) target() slog.Handler {
	if b := h.built.Load(); b != nil {
		return *b
	}
	d := h.dst.Load()
	if d == nil {
		return nil
	}
	t := *d
	for _, op := range h.ops {
		t = op(t)
	}
	h.built.Store(&t)
	return t
}

func (h *lateHandler) Enabled(ctx context.Context, l slog.Level) bool {
	t := h.target()
	return t != nil && t.Enabled(ctx, l)
}

func (h *lateHandler) Handle(ctx context.Context, r slog.Record) error {
	if t := h.target(); t != nil {
		return t.Handle(ctx, r)
	}
	return nil
}

func (h *lateHandler) derive(op func(slog.Handler) slog.Handler) slog.Handler {
	return &lateHandler{dst: h.dst, ops: append(slices.Clip(h.ops), op), built: new(atomic.Pointer[slog.Handler])}
}

func (h *lateHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return h.derive(func(t slog.Handler) slog.Handler { return t.WithAttrs(as) })
}

func (h *lateHandler) WithGroup(name string) slog.Handler {
	return h.derive(func(t slog.Handler) slog.Handler { return t.WithGroup(name) })
}
