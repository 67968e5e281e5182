package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func newConfigCmd(g *globalFlags) *cobra.Command {
	cfg := &cobra.Command{Use: "config", Short: "Work with chima.yaml"}
	cfg.AddCommand(&cobra.Command{
		Use:   "validate",
		Short: "Check chima.yaml and list every problem with its file, line and key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(g.config)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return exitError{1}
			}
			if _, err := pluginSpecs(c); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return exitError{1}
			}
			fmt.Printf("%s is valid: %d plugins, %d roles, %d policies\n", g.config, len(c.Plugins), len(c.Roles), len(c.Policies))
			return nil
		},
	})
	return cfg
}
