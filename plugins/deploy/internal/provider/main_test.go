package provider

import (
	"os"
	"testing"
)

// TestMain lets the test binary be the reaper of the commands its tests run,
// as the deploy plugin is of its own.
func TestMain(m *testing.M) {
	ServeReaper()
	os.Exit(m.Run())
}
