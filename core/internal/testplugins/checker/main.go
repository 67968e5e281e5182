// Command checker is a test fixture plugin that validates its settings: it
// reports a problem for each setting whose value is "bad", with the line
// given in the setting "<key>_line", and records its process id in the
// file named by pid_file, so a test can see that the process was stopped.
// Configure, which Validate must never run, creates configured_marker.
package main

import (
	"errors"
	"os"
	"sort"
	"strconv"

	"github.com/chimaops/chima/sdk"
)

func main() {
	sdk.Serve(&sdk.Plugin{
		Name:    "checker",
		Version: "0.0.1",
		Configure: func(s map[string]string) error {
			if m := s["configured_marker"]; m != "" {
				return os.WriteFile(m, []byte("configured\n"), 0o644)
			}
			return nil
		},
		Validate: func(s map[string]string) error {
			if p := s["pid_file"]; p != "" {
				if err := os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
					return err
				}
			}
			if s["fail"] != "" {
				return errors.New(s["fail"])
			}
			var keys []string
			for k, v := range s {
				if v == "bad" {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			var problems []sdk.Problem
			for _, k := range keys {
				line, _ := strconv.Atoi(s[k+"_line"])
				problems = append(problems, sdk.Problem{File: s["file"], Line: line, Key: k, Message: "is bad"})
			}
			if len(problems) > 0 {
				return &sdk.SettingsError{Problems: problems}
			}
			return nil
		},
	})
}
