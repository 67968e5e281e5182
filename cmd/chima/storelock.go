package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// errStoreInUse means another process holds a store's lock: a bot runs on it.
var errStoreInUse = errors.New("another chima run or chima send is using the store")

// lockStore takes the exclusive, non-blocking flock on path+".lock" that
// makes this process the one bot running on the SQLite store at path: two
// (a second `chima run` on the same config, or `chima send` beside a bot
// whose HTTP server is off) would each mark the other's running jobs
// interrupted at start and take its queued ones. The kernel drops the lock
// when the process dies, even by kill -9, so a restart is never refused.
// An in-memory store needs no lock: nil, nil.
func lockStore(path string) (*os.File, error) {
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil { // as store.Open does
		return nil, fmt.Errorf("lock store: %w", err)
	}
	// Close-on-exec, as Go opens every file: no plugin inherits it.
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock store: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w %s; stop it first: two bots on one store would take each other's jobs", errStoreInUse, path)
		}
		return nil, fmt.Errorf("lock store: %w", err)
	}
	return f, nil
}
