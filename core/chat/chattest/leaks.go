package chattest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// RunWithoutLeaks runs m's tests, then fails the run when a goroutine whose
// stack names one of match (an adapter's package path, its client
// library's) is still running after Guard: every Run must have returned and
// cleaned up. Call it from TestMain: os.Exit(chattest.RunWithoutLeaks(m, …)).
func RunWithoutLeaks(m *testing.M, match ...string) int {
	code := m.Run()
	if code == 0 {
		if leaks := leakedGoroutines(match); leaks != "" {
			fmt.Fprintf(os.Stderr, "goroutines left running after the tests:\n\n%s\n", leaks)
			code = 1
		}
	}
	return code
}

// leakedGoroutines waits up to Guard for the goroutines matching match to
// end and returns the stacks of those that did not.
func leakedGoroutines(match []string) string {
	deadline := time.Now().Add(Guard)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaks []string
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			for _, s := range match {
				if strings.Contains(g, s) {
					leaks = append(leaks, g)
					break
				}
			}
		}
		if len(leaks) == 0 || time.Now().After(deadline) {
			return strings.Join(leaks, "\n\n")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
