package main

import (
	"os"
	"testing"
)

// TestMain lets the test binary stand in for the plugin's binary as the
// dump filter and the dump guard restic runs (os.Executable is the test binary in tests).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == countRowsArg {
		os.Exit(countRowsMain(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == dumpGuardArg {
		os.Exit(dumpGuardMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}
