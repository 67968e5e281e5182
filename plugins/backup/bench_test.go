package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk/sdktest"
)

// BenchmarkBackupOverhead backs up a PostgreSQL database of at least 256
// MiB (CHIMA_BENCH_BACKUP_MB) through the plugin's backup job and by hand
// with the same restic command, each into a repository of its own, and
// reports the plugin's overhead (of the total wall time, and the median of
// the pairs'), the CPU each side's processes used, the plugin process's
// peak memory and the verification's restore time. Run it with -benchtime 1x: each iteration
// dumps the whole database twice.
func BenchmarkBackupOverhead(b *testing.B) {
	mb := 256
	if v, err := strconv.Atoi(os.Getenv("CHIMA_BENCH_BACKUP_MB")); err == nil && v > 0 {
		mb = v
	}
	env := servicesB(b)
	c, err := parseDSN(kindPostgres, env["CHIMA_TEST_POSTGRES_URL"])
	if err != nil {
		b.Fatal(err)
	}
	name := uniqueName("chima_backup_bench")
	ctx := context.Background()
	run := func(db, sql string) string {
		out, err := tool(ctx, c.env(), "", nil, "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", c.on(db).pgDBName(), "-c", sql)
		if err != nil {
			b.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	run("postgres", `CREATE DATABASE "`+name+`"`)
	b.Cleanup(func() { run("postgres", `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`) })
	// Rows of 8 md5 digests (256 hex characters): about 300 bytes a row
	// on disk, and not much for pg_dump's compression to squeeze.
	rows := mb << 20 / 256
	run(name, fmt.Sprintf(`CREATE TABLE payload AS SELECT g AS id, md5(g::text) || md5((g+1)::text) || md5((g+2)::text) || md5((g+3)::text) ||
  md5((g+4)::text) || md5((g+5)::text) || md5((g+6)::text) || md5((g+7)::text) AS body FROM generate_series(1, %d) g`, rows))
	// Hint bits set and pages frozen now, not by whichever dump reads the
	// table first.
	run(name, `VACUUM FREEZE ANALYZE payload`)
	size, _ := strconv.ParseInt(run(name, `SELECT pg_database_size(current_database())`), 10, 64)
	if size < int64(mb)<<20 {
		b.Fatalf("the database is %s, want at least %d MiB", human(size), mb)
	}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "password"), []byte("bench"), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.Setenv("CHIMA_BENCH_PG_DSN", c.on(name).url.String()); err != nil {
		b.Fatal(err)
	}
	h := sdktest.New(b, (&backuper{}).spec(), map[string]string{
		"restic": env["CHIMA_RESTIC"], "cache_dir": filepath.Join(dir, "cache"),
		"targets": fmt.Sprintf("pg: {kind: postgres, dsn_env: CHIMA_BENCH_PG_DSN, repository: %s/plugin-repo, password_file: %s/password, init: true, scratch: %s_scratch}", dir, dir, name),
	})
	// Both repositories exist before the clock starts.
	if out, err := exec.Command(env["CHIMA_RESTIC"], "init", "--repo", filepath.Join(dir, "plugin-repo"), "--password-file", filepath.Join(dir, "password")).CombinedOutput(); err != nil {
		b.Fatalf("init: %v %s", err, out)
	}
	// By hand is the restic command the plugin runs, as a person would
	// type it: the same dump flags and tags, the same restic settings
	// (progress rate, cache), into a repository set up the same way. Only
	// the exported snapshot (pg_dump --snapshot) and the row counts taken
	// in it are the plugin's own.
	handRepo := filepath.Join(dir, "hand-repo")
	hand := func(args ...string) *exec.Cmd {
		x := exec.Command(env["CHIMA_RESTIC"], args...)
		x.Env = append(os.Environ(), "RESTIC_REPOSITORY="+handRepo, "RESTIC_PASSWORD_FILE="+filepath.Join(dir, "password"),
			"RESTIC_CACHE_DIR="+filepath.Join(dir, "cache"), "RESTIC_PROGRESS_FPS=2")
		return x
	}
	if out, err := hand("init").CombinedOutput(); err != nil {
		b.Fatalf("init: %v %s", err, out)
	}
	// The table's pages are read once before either side runs: neither
	// pays for a cold page cache.
	warm := exec.Command("pg_dump", "-Fc", "--no-password", c.on(name).pgDBName())
	warm.Stdout = io.Discard
	if err := warm.Run(); err != nil {
		b.Fatalf("warm-up dump: %v", err)
	}
	// Each side's time, and the CPU of the processes it started (restic
	// and the dump restic runs; psql for the plugin): CPU does not
	// depend on what else the machine runs meanwhile.
	byHand := func() (time.Duration, time.Duration) {
		x := hand("--json", "backup", "--tag", "chima,target:pg", "--stdin-from-command", "--stdin-filename", name+".pgdump", "--", "pg_dump", "-Fc", "--no-password", c.on(name).pgDBName())
		start := time.Now()
		if out, err := x.CombinedOutput(); err != nil {
			b.Fatalf("by hand: %v %s", err, out)
		}
		return time.Since(start), x.ProcessState.UserTime() + x.ProcessState.SystemTime()
	}
	through := func() (time.Duration, time.Duration) {
		before := childCPU()
		start := time.Now()
		h.Command("backup", sdktest.Args{"target": "pg"})
		res := h.RunEnqueued()
		if len(res) != 1 || res[0].Done.Outcome != "success" {
			b.Fatalf("backup: %s", allText(res...))
		}
		return time.Since(start), childCPU() - before
	}
	var plugin, byhand, pluginCPU, handCPU time.Duration
	var ratios []float64
	var restore string
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// By hand first, then through the bot, then the other way round:
		// neither is always first into a warmer cache or a quieter
		// machine. Both repositories get their i-th backup of the same
		// data: the first stores everything, the later ones deduplicate.
		var hw, hc, pw, pc time.Duration
		if i%2 == 0 {
			hw, hc = byHand()
			pw, pc = through()
		} else {
			pw, pc = through()
			hw, hc = byHand()
		}
		plugin, byhand, pluginCPU, handCPU = plugin+pw, byhand+hw, pluginCPU+pc, handCPU+hc
		ratios = append(ratios, 100*(pw.Seconds()-hw.Seconds())/hw.Seconds())
	}
	b.StopTimer()
	h.Command("backup:verify", sdktest.Args{"target": "pg"})
	v := h.RunEnqueued()
	if len(v) != 1 || v[0].Done.Outcome != "success" {
		b.Fatalf("verify: %s", allText(v...))
	}
	for _, f := range v[0].Replies[len(v[0].Replies)-1].Fields {
		if f.Title == "Restore time" {
			restore = f.Value
		}
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(size)/(1<<20), "db-MiB")
	b.ReportMetric(plugin.Seconds()/float64(b.N), "plugin-s/op")
	b.ReportMetric(byhand.Seconds()/float64(b.N), "by-hand-s/op")
	b.ReportMetric(100*(plugin.Seconds()-byhand.Seconds())/byhand.Seconds(), "overhead-%")
	// The median of the pairs' overheads: one pair that a burst of load
	// hit on one side does not move it.
	sort.Float64s(ratios)
	b.ReportMetric((ratios[(len(ratios)-1)/2]+ratios[len(ratios)/2])/2, "overhead-median-%")
	b.ReportMetric(pluginCPU.Seconds()/float64(b.N), "plugin-cpu-s/op")
	b.ReportMetric(handCPU.Seconds()/float64(b.N), "by-hand-cpu-s/op")
	b.ReportMetric(float64(ru.Maxrss)/1024, "plugin-maxrss-MiB")
	if d, err := time.ParseDuration(restore); err == nil {
		b.ReportMetric(d.Seconds(), "verify-restore-s")
	}
}

// childCPU is the user and system time of the process's children that
// ended (restic, the dumps it ran, psql).
func childCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// servicesB is services for a benchmark.
func servicesB(b *testing.B) map[string]string {
	path := os.Getenv("CHIMA_SERVICES_ENV")
	if path == "" {
		sdktest.Missing(b, "CHIMA_SERVICES_ENV is not set (bash .ci/services.sh up writes the file it names)")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		sdktest.Missing(b, "services env: %v", err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}
