package sdktest

import (
	"os"
	"os/exec"
	"testing"
)

// NeedTool returns the path of the external program name (git, fab,
// chromium, …) that a test runs for real. Where it is missing the test is
// skipped, so a developer without it can still run the rest; under CI
// (CI=true) it fails instead, so that a broken install step cannot hide as
// a green run that tested nothing.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s is not installed (CI installs it from Debian): %v", name, err)
	}
	return path
}

// Missing reports a prerequisite the test cannot run without: a skip on a
// developer's machine, a failure under CI=true.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true, and a prerequisite is missing: "+format, args...)
	}
	t.Skipf(format, args...)
}
