package jobs

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/core/store/storetest"
)

// The soak test (make soak) runs CHIMA_SOAK_JOBS jobs (default 10,000)
// through two replica processes on one PostgreSQL, killing one with SIGKILL
// and restarting it every CHIMA_SOAK_KILL_EVERY (default 1m), and checks
// that no job is lost (each ends succeeded, or interrupted when its replica
// died under it) and none runs twice. It is not part of make test.

// appendExecutor records each job it runs in a file, as a deploy script's
// own log would, then takes a little time.
type appendExecutor struct{ f *os.File }

func (e appendExecutor) RunJob(ctx context.Context, j store.Job) (store.JobState, string) {
	if _, err := fmt.Fprintf(e.f, "%d\n", j.ID); err != nil {
		return store.JobError, err.Error()
	}
	select {
	case <-ctx.Done():
		return store.JobCancelled, "stopped"
	case <-time.After(5 * time.Millisecond):
	}
	return store.JobSucceeded, ""
}

// TestSoakReplicaProcess is one replica of the soak test, run by
// TestSoakTwoReplicasWithOneKilledEveryMinute in its own process.
func TestSoakReplicaProcess(t *testing.T) {
	id := os.Getenv("CHIMA_SOAK_REPLICA")
	if id == "" {
		t.Skip("run by the soak test")
	}
	st, err := store.Open(context.Background(), "postgres", os.Getenv("CHIMA_SOAK_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	st.SetReplica(store.Replica{ID: id, Lease: 3 * time.Second})
	f, err := os.OpenFile(os.Getenv("CHIMA_SOAK_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	// As the bot does at start: its own jobs from before are over, and
	// the other replica's lapsed ones are taken over by the sweep below.
	if _, err := st.InterruptRunningJobs(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	r := New(Options{Store: st, Executor: appendExecutor{f}, Workers: 4, Poll: 20 * time.Millisecond,
		Name: id, Lease: 3 * time.Second, Shared: true})
	go func() {
		for ctx.Err() == nil {
			_, _ = st.InterruptExpiredJobs(ctx)
			time.Sleep(time.Second)
		}
	}()
	r.Run(ctx)
}

func TestSoakTwoReplicasWithOneKilledEveryMinute(t *testing.T) {
	if os.Getenv("CHIMA_SOAK") == "" {
		t.Skip("the soak test runs with make soak (CHIMA_SOAK=1)")
	}
	jobs := envInt("CHIMA_SOAK_JOBS", 10000)
	every, err := time.ParseDuration(envStr("CHIMA_SOAK_KILL_EVERY", "1m"))
	if err != nil {
		t.Fatal(err)
	}
	dsn := storetest.PostgresSchema(t, "soak")
	st, err := store.Open(context.Background(), "postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range jobs {
		key := ""
		if i%2 == 0 {
			key = fmt.Sprintf("q%d", i%40)
		}
		if _, err := st.EnqueueJob(context.Background(), store.Job{Plugin: "p", Kind: "k", QueueKey: key}); err != nil {
			t.Fatal(err)
		}
	}
	log := t.TempDir() + "/runs.log"
	start := func(id string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSoakReplicaProcess$", "-test.v")
		cmd.Env = append(os.Environ(), "CHIMA_SOAK_REPLICA="+id, "CHIMA_SOAK_DSN="+dsn, "CHIMA_SOAK_LOG="+log)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	replicas := []*exec.Cmd{start("r1"), start("r2")}
	defer func() {
		for _, c := range replicas {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}()
	open := func() int {
		var n int
		if err := st.DB().QueryRow(`SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	kills := 0
	tick := time.NewTicker(every)
	defer tick.Stop()
	deadline := time.Now().Add(time.Duration(jobs)*5*time.Millisecond + 30*time.Minute)
	for open() > 0 {
		select {
		case <-tick.C:
			victim := kills % 2
			_ = replicas[victim].Process.Kill()
			_ = replicas[victim].Wait()
			replicas[victim] = start(fmt.Sprintf("r%d", victim+1))
			kills++
			t.Logf("killed and restarted r%d; %d jobs open", victim+1, open())
		case <-time.After(time.Second):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs still open", open())
		}
	}
	states := map[string]int{}
	rows, err := st.DB().Query(`SELECT state, COUNT(*) FROM jobs GROUP BY state`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		var n int
		_ = rows.Scan(&s, &n)
		states[s] = n
	}
	rows.Close()
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ran := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ran[strings.TrimSpace(sc.Text())]++
	}
	duplicated := 0
	for _, n := range ran {
		if n > 1 {
			duplicated++
		}
	}
	lost := jobs - states["succeeded"] - states["interrupted"]
	t.Logf("%d jobs, %d kills: %v; %d ran, %d lost, %d duplicated", jobs, kills, states, len(ran), lost, duplicated)
	if lost != 0 || duplicated != 0 {
		t.Errorf("%d lost, %d duplicated; want 0 and 0", lost, duplicated)
	}
	if states["succeeded"] > len(ran) {
		t.Errorf("%d jobs succeeded but only %d ran", states["succeeded"], len(ran))
	}
}

func envStr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envInt(key string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(key)); err == nil && n > 0 {
		return n
	}
	return def
}
