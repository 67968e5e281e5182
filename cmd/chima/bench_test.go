package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkConsoleMemory runs the real bot (`chima run` on the console, with
// its store, HTTP server and plugins), sends it b.N commands answered by a
// plugin, and reports the bot process's resident memory: now (RSS) and at
// its peak (HWM). Plugins run in their own processes and are not counted.
func BenchmarkConsoleMemory(b *testing.B) {
	cfg := writeConfig(b, "")
	cmd := exec.Command(filepath.Join(binDir, "chima"), "run", "--config", cfg)
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	replies := bufio.NewScanner(out)
	b.ResetTimer()
	go func() {
		w := bufio.NewWriter(in)
		for i := range b.N {
			fmt.Fprintf(w, "chima hello %d\n", i)
		}
		w.Flush()
	}()
	for n := 0; n < b.N && replies.Scan(); {
		if strings.Contains(replies.Text(), "Hello, ") {
			n++
		}
	}
	b.StopTimer()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		for _, key := range []string{"VmRSS", "VmHWM"} {
			if rest, ok := strings.CutPrefix(line, key+":"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				b.ReportMetric(kb/1024, key+"-MiB")
			}
		}
	}
	_ = in.Close()
	_, _ = io.Copy(io.Discard, out)
}
