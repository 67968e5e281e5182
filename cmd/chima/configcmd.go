package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/chimaops/chima/core/config"
	"github.com/chimaops/chima/core/pluginhost"
	"github.com/chimaops/chima/core/redact"
)

func newConfigCmd(g *globalFlags) *cobra.Command {
	cfg := &cobra.Command{Use: "config", Short: "Work with chima.yaml"}
	cfg.AddCommand(&cobra.Command{
		Use:   "validate",
		Short: "Check chima.yaml and every plugin's settings, and list each problem with its file, line and key",
		Long: `Checks chima.yaml, builds each chat adapter from its entry (which checks its
keys and that the environment variables it names are set; nothing connects),
then starts each enabled plugin just to have it check its
own settings and the files they name (the deploy plugin's apps file), and
stops it again. Every problem is listed with its file, line and key. A plugin
that does not check its settings (it has no Validate, or was built before
protocol minor 4) is reported as not validated, which is not an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(g.config)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return exitError{1}
			}
			specs, err := pluginSpecs(c)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return exitError{1}
			}
			secrets := secretValues(c, specs)
			adapterLog := newLateHandler()
			built, adapterErr := buildAdapters(c, slog.New(adapterLog), false)
			if adapterErr == nil {
				secrets = append(secrets, built.secrets...)
			}
			log, err := newLogger(firstNonEmpty(g.logLevel, "error"), os.Stderr, redact.New(secrets...))
			if err != nil {
				return err
			}
			adapterLog.Set(log.Handler())
			if adapterErr != nil {
				fmt.Fprintln(os.Stderr, adapterErr)
			}
			host := pluginhost.New(pluginhost.Options{Logger: log.With("component", "plugins"), Version: version})
			report := validatePlugins(cmd.Context(), host, specs)
			report.locate(c)
			if report.write(os.Stderr) || adapterErr != nil {
				return exitError{1}
			}
			fmt.Printf("%s is valid: %s, %s, %s, %s%s\n", g.config, count(len(c.Adapters), "adapter", "adapters"), count(len(c.Plugins), "plugin", "plugins"),
				count(len(c.Roles), "role", "roles"), count(len(c.Policies), "policy", "policies"), report.summary())
			return nil
		},
	})
	return cfg
}

// pluginCheck is what one plugin said of its settings.
type pluginCheck struct {
	name     string
	problems []pluginhost.Problem
	err      error // ErrNotValidated, or why it could not be asked
}

type validationReport []pluginCheck

// validatePlugins asks every plugin, at once, to check its settings.
func validatePlugins(ctx context.Context, host *pluginhost.Host, specs []pluginhost.Spec) validationReport {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	report := make(validationReport, len(specs))
	var wg sync.WaitGroup
	for i, spec := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			problems, err := host.Validate(ctx, spec)
			report[i] = pluginCheck{name: spec.Name, problems: problems, err: err}
		}()
	}
	wg.Wait()
	return report
}

// locate gives each problem in a plugin's own settings the file and line
// of its key in chima.yaml (or of the nearest enclosing key there), as the
// config's own problems have; a problem in a file the plugin read (an apps
// file) already names its place.
func (r validationReport) locate(c *config.Config) {
	index := map[string]int{}
	for i, p := range c.Plugins {
		index[p.Name] = i
	}
	for k := range r {
		i, ok := index[r[k].name]
		if !ok {
			continue
		}
		for j, p := range r[k].problems {
			if p.File != "" {
				continue
			}
			key := fmt.Sprintf("plugins[%d].settings", i)
			if p.Key != "" {
				key += "." + p.Key
			}
			at := c.Problem(key, "")
			if at.File == "" {
				continue
			}
			r[k].problems[j] = pluginhost.Problem{File: at.File, Line: at.Line, Key: strings.TrimSuffix("settings."+p.Key, "."), Message: p.Message}
		}
	}
}

// write prints every problem, and every plugin that could not be asked or
// was not validated, in config order; it reports whether any was a
// problem.
func (r validationReport) write(w io.Writer) (failed bool) {
	for _, c := range r {
		switch {
		case errors.Is(c.err, pluginhost.ErrNotValidated):
			fmt.Fprintf(w, "plugin %s: not validated: it checks its settings only when it starts\n", c.name)
		case c.err != nil:
			fmt.Fprintf(w, "%v\n", c.err)
			failed = true
		}
		for _, p := range c.problems {
			fmt.Fprintf(w, "plugin %s: %s\n", c.name, p)
			failed = true
		}
	}
	return failed
}

// count renders n with the singular or plural noun: "1 policy", "2 policies".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// summary says which plugins checked their settings, for the closing line.
func (r validationReport) summary() string {
	var checked, unchecked []string
	for _, c := range r {
		if c.err == nil {
			checked = append(checked, c.name)
		} else {
			unchecked = append(unchecked, c.name)
		}
	}
	var parts []string
	if len(checked) > 0 {
		parts = append(parts, "settings valid: "+strings.Join(checked, ", "))
	}
	if len(unchecked) > 0 {
		parts = append(parts, "not validated: "+strings.Join(unchecked, ", "))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}
