package store

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chimaops/chima/core/store/storetest"
)

func BenchmarkEnqueueClaimFinish(b *testing.B) {
	ctx := context.Background()
	s, _ := newStore(b)
	s.now = time.Now
	payload := []byte(`{"ref":"main","env":"edge"}`)
	for b.Loop() {
		id, err := s.EnqueueJob(ctx, Job{Plugin: "deploy", Kind: "deploy", QueueKey: "deploy:x", Payload: payload})
		if err != nil {
			b.Fatal(err)
		}
		j, err := s.ClaimJob(ctx, "w", time.Now(), nil)
		if err != nil || j == nil || j.ID != id {
			b.Fatalf("ClaimJob = %v, %v; want job %d", j, err, id)
		}
		if err := s.FinishJob(ctx, id, JobSucceeded, "ok"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecordAudit(b *testing.B) {
	ctx := context.Background()
	s, _ := newStore(b)
	s.now = time.Now
	e := AuditEntry{
		RequestID: "req", Adapter: "slack", Room: "C1", UserID: "U1", UserName: "ada",
		Text: "chima deploy project-x to edge", Plugin: "deploy", Command: "deploy",
		Outcome: "ok", Duration: time.Millisecond,
	}
	for b.Loop() {
		if _, err := s.RecordAudit(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKVSetGet(b *testing.B) {
	ctx := context.Background()
	s, _ := newStore(b)
	s.now = time.Now
	value := make([]byte, 256)
	i := 0
	for b.Loop() {
		key := fmt.Sprintf("key-%d", i%1000)
		i++
		if err := s.KVSet(ctx, "bench", key, value); err != nil {
			b.Fatal(err)
		}
		if _, ok, err := s.KVGet(ctx, "bench", key); err != nil || !ok {
			b.Fatalf("KVGet = %v, %v", ok, err)
		}
	}
}

// BenchmarkKVLeaseTakeGiveBack is a lease's life as the ci-status plugin
// leads it for each delivery: taken over the free value and given back,
// two compare-and-swaps that find what they expect, on SQLite and on
// PostgreSQL.
func BenchmarkKVLeaseTakeGiveBack(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			s := benchStore(b, engine)
			ctx := context.Background()
			free, held := []byte(`{"freed":"a"}`), []byte(`{"owner":"b","until":1}`)
			if err := s.KVSet(ctx, "bench", "lease/x", free); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				for _, swap := range [][2][]byte{{free, held}, {held, free}} {
					if ok, _, _, err := s.KVCompareAndSwap(ctx, "bench", "lease/x", swap[0], false, swap[1]); err != nil || !ok {
						b.Fatal(ok, err)
					}
				}
			}
		})
	}
}

// BenchmarkKVSaveAndGiveBack is what a ci-status delivery writes after it
// edited its message, in one KVTransaction against three separate calls:
// the commit's record and open mark written and its lease given back,
// checked against the lease still held.
func BenchmarkKVSaveAndGiveBack(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, how := range []string{"transaction", "three calls"} {
			b.Run(engine+"/"+how, func(b *testing.B) {
				s := benchStore(b, engine)
				ctx := context.Background()
				held, free := []byte(`{"owner":"b","until":1}`), []byte(`{"freed":"a"}`)
				record := bytes.Repeat([]byte("r"), 2048)
				for b.Loop() {
					if err := s.KVSet(ctx, "bench", "lease/x", held); err != nil {
						b.Fatal(err)
					}
					if how == "transaction" {
						ok, _, err := s.KVTransaction(ctx, "bench", []KVCheck{{"lease/x", held}},
							[]KVWrite{{Key: "track/x", Value: record}, {Key: "open/x", Value: free}, {Key: "lease/x", Value: free}})
						if err != nil || !ok {
							b.Fatal(ok, err)
						}
						continue
					}
					if err := s.KVSet(ctx, "bench", "open/x", free); err != nil {
						b.Fatal(err)
					}
					if err := s.KVSet(ctx, "bench", "track/x", record); err != nil {
						b.Fatal(err)
					}
					if ok, _, _, err := s.KVCompareAndSwap(ctx, "bench", "lease/x", held, false, free); err != nil || !ok {
						b.Fatal(ok, err)
					}
				}
			})
		}
	}
}

// BenchmarkClaimInbound is the cost of inbound de-duplication per chat
// message: one insert-if-absent of its delivery key, on SQLite and on
// PostgreSQL (the engine replicas share, where it runs).
func BenchmarkClaimInbound(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			s := benchStore(b, engine)
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				if ok, err := s.ClaimInbound(ctx, "mattermost", "post-"+strconv.Itoa(i)); err != nil || !ok {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

// BenchmarkEventDeliveryLife measures the store's part of one webhook
// delivery to two plugins: received, then each handing claimed and
// finished handled.
func BenchmarkEventDeliveryLife(b *testing.B) {
	ctx := context.Background()
	s, _ := newStore(b)
	s.now = time.Now
	payload := make([]byte, 8<<10)
	plugins := []string{"cistatus", "deploy"}
	i := 0
	for b.Loop() {
		i++
		d := Delivery{Source: "github", ID: fmt.Sprintf("d-%d", i), Event: "push", Payload: payload,
			Headers: map[string]string{"X-GitHub-Event": "push"}}
		if _, err := s.ReceiveDelivery(ctx, d, plugins); err != nil {
			b.Fatal(err)
		}
		for range plugins {
			e, err := s.ClaimEventDelivery(ctx, time.Now(), time.Minute, plugins)
			if err != nil || e == nil {
				b.Fatalf("claim = %v, %v", e, err)
			}
			if _, err := s.FinishEventDelivery(ctx, e.EventKey, "", Retry{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// benchStore opens a fresh store on engine ("sqlite" or "postgres"),
// closed when the benchmark ends.
func benchStore(b *testing.B, engine string) *Store {
	b.Helper()
	var s *Store
	var err error
	if engine == "postgres" {
		s, err = Open(context.Background(), "postgres", storetest.PostgresSchema(b, "bench"))
	} else {
		s, err = Open(context.Background(), "sqlite", filepath.Join(b.TempDir(), "chima.db"))
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}
