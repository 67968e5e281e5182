package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// exitUsage is the exit status of a command line that cannot run as typed.
const exitUsage = 2

// usageError is a command line a command cannot run: a missing or extra
// argument, an unknown or malformed flag. main prints it with the command's
// usage line and exits with status exitUsage.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// print writes the problem, the usage line and where to read more.
func (e usageError) print(w io.Writer) {
	fmt.Fprintf(w, "chima: %v\nUsage: %s\nRun '%s --help' for more.\n", e.err, e.cmd.UseLine(), e.cmd.CommandPath())
}

// markUsageErrors makes every argument and flag error of root and its
// subcommands a usageError, so that each exits with status exitUsage as
// `chima send --help` promises.
func markUsageErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{cmd: c, err: err} })
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if args := c.Args; args != nil {
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return usageError{cmd: cmd, err: err}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// asUsageError reports whether err is a usageError, and returns it.
func asUsageError(err error) (usageError, bool) {
	var ue usageError
	ok := errors.As(err, &ue)
	return ue, ok
}
