package mmtest

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
)

// RealEnvVar names the env file that ../shared/tools/real-mattermost.sh
// writes for the real Mattermost server the tests run against.
const RealEnvVar = "CHIMA_MATTERMOST_ENV"

var (
	realMu   sync.Mutex
	realLock *os.File
)

// RealEnv reads the env file named by $CHIMA_MATTERMOST_ENV (MM_URL,
// MM_BOT_TOKEN, …) and returns its values, checking that every key in need
// is set. It also takes the server for this test process: the tests of
// several packages run at once, and two bots on one bot account would each
// see the other's posts, so a process waits here, on a lock file beside the
// env file, until no other process holds the server. The lock is held until
// the process exits (the kernel drops it then, however the process ends).
func RealEnv(need ...string) (map[string]string, error) {
	path := os.Getenv(RealEnvVar)
	if path == "" {
		return nil, fmt.Errorf("%s is not set", RealEnvVar)
	}
	if err := lockReal(path + ".lock"); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok {
			env[k] = strings.Trim(v, `'"`)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	for _, k := range need {
		if env[k] == "" {
			return nil, fmt.Errorf("%s has no %s", path, k)
		}
	}
	return env, nil
}

func lockReal(path string) error {
	realMu.Lock()
	defer realMu.Unlock()
	if realLock != nil {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("lock the real Mattermost: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return fmt.Errorf("lock the real Mattermost: %w", err)
	}
	realLock = f
	return nil
}
