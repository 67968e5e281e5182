package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The sweep at start removes every checkout of its folder that the plugin is
// not using. Two bots on one machine (or two test bots side by side) with the
// default checkout folder must not remove each other's checkouts.
func TestDefaultCheckoutFoldersOfTwoInstallationsAreApart(t *testing.T) {
	if defaultCheckoutDir(processTags(t.TempDir())) == "" {
		t.Skip("no writable /dev/shm: checkouts live beside each installation's mirrors")
	}
	one, two := newFixture(t, ""), newFixture(t, "")
	first := &deployer{}
	if err := configured(first, defaultCheckouts(one.settings())); err != nil {
		t.Fatal(err)
	}
	dir := defaultCheckoutDir(processTags(one.workspace))
	// Last, once both installations' folders are gone: the folder of this
	// user's installations, unless a bot has one there (os.Remove leaves a
	// folder that is not empty).
	t.Cleanup(func() { _ = os.Remove(filepath.Dir(dir)) })
	t.Cleanup(func() { os.RemoveAll(dir) })
	busy := filepath.Join(dir, "a-checkout-in-use")
	if err := os.MkdirAll(busy, 0o700); err != nil {
		t.Fatal(err)
	}
	second := &deployer{}
	if err := configured(second, defaultCheckouts(two.settings())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(defaultCheckoutDir(processTags(two.workspace))) })
	if _, err := os.Stat(busy); err != nil {
		t.Fatalf("the second installation's sweep removed the first's checkout: %v", err)
	}
}

// defaultCheckouts drops the fixture's checkout_dir: the default is tested.
func defaultCheckouts(s map[string]string) map[string]string {
	delete(s, "checkout_dir")
	return s
}
