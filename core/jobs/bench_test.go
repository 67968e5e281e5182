package jobs

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/core/store/storetest"
)

// nopExecutor ends every job at once, so that the benchmark measures the
// queue: claim, lease, finish.
type nopExecutor struct{}

func (e nopExecutor) RunJob(context.Context, store.Job) (store.JobState, string) {
	return store.JobSucceeded, ""
}

// BenchmarkJobsThroughput runs b.N empty jobs through 4 workers per replica
// on SQLite, and on PostgreSQL with 1 and 2 replicas sharing the queue;
// jobs/s is the figure. Each job is enqueued, claimed with its lease and
// finished, as a deploy's job is.
func BenchmarkJobsThroughput(b *testing.B) {
	cases := []struct {
		name     string
		replicas int
		open     func(b *testing.B) (string, string)
	}{
		{"sqlite", 1, func(b *testing.B) (string, string) { return "sqlite", filepath.Join(b.TempDir(), "j.db") }},
		{"postgres-1-replica", 1, func(b *testing.B) (string, string) { return "postgres", storetest.PostgresSchema(b, "bench") }},
		{"postgres-2-replicas", 2, func(b *testing.B) (string, string) { return "postgres", storetest.PostgresSchema(b, "bench") }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			driver, dsn := c.open(b)
			var finished atomic.Int64
			all := make(chan struct{})
			var stores []*store.Store
			var runners []*Runner
			for i := range c.replicas {
				st, err := store.Open(context.Background(), driver, dsn)
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				st.SetReplica(store.Replica{ID: fmt.Sprintf("r%d", i+1)})
				stores = append(stores, st)
				runners = append(runners, New(Options{Store: st, Executor: nopExecutor{}, Workers: 4, Poll: 10 * time.Millisecond,
					Name: st.ReplicaID(), Shared: st.Shared(),
					OnFinish: func(store.Job, store.JobState, string) {
						if finished.Add(1) == int64(b.N) {
							close(all)
						}
					}}))
			}
			for i := range b.N {
				if _, err := stores[0].EnqueueJob(context.Background(), store.Job{Plugin: "p", Kind: "k", QueueKey: fmt.Sprintf("q%d", i%64)}); err != nil {
					b.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{}, len(runners))
			b.ResetTimer()
			start := time.Now()
			for _, r := range runners {
				go func() { r.Run(ctx); done <- struct{}{} }()
				r.Wake()
			}
			select {
			case <-all:
			case <-time.After(5 * time.Minute):
				b.Fatalf("%d of %d jobs finished", finished.Load(), b.N)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
			cancel()
			for range runners {
				<-done
			}
		})
	}
}
