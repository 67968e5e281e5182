package store

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
)

func TestKVCompareAndSwapWritesOnlyOverTheValueRead(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tests := []struct {
		name      string
		old       string
		oldAbsent bool
		value     string
		swapped   bool
		current   string
	}{
		{"create an absent key", "", true, "v1", true, "v1"},
		{"create again loses to the existing value", "", true, "other", false, "v1"},
		{"swap over the value read", "v1", false, "v2", true, "v2"},
		{"swap over a stale value is refused", "v1", false, "v3", false, "v2"},
		{"swap to the empty value", "v2", false, "", true, ""},
		{"swap over the empty value", "", false, "v4", true, "v4"},
		{"create over an existing value read is refused", "v4", true, "v5", false, "v4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			swapped, cur, found, err := s.KVCompareAndSwap(ctx, "deploy", "k", []byte(tt.old), tt.oldAbsent, []byte(tt.value))
			if err != nil {
				t.Fatal(err)
			}
			if swapped != tt.swapped || string(cur) != tt.current || !found {
				t.Errorf("swapped %v current %q found %v, want %v %q true", swapped, cur, found, tt.swapped, tt.current)
			}
		})
	}
	if swapped, _, found, err := s.KVCompareAndSwap(ctx, "deploy", "missing", []byte("x"), false, []byte("y")); err != nil || swapped || found {
		t.Errorf("swap over a missing key: swapped %v found %v err %v, want neither", swapped, found, err)
	}
}

func TestKVCompareAndSwapLosesNoUpdateAcrossStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chima.db")
	stores := []*Store{openAt(t, path), openAt(t, path)} // two replicas on one database
	ctx := context.Background()
	const each = 20
	var wg sync.WaitGroup
	for _, s := range stores {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A counter kept the way plugins keep shared state: read,
				// change, compare-and-swap, again when another wrote first.
				for range each {
					for {
						cur, found, err := s.KVGet(ctx, "deploy", "count")
						if err != nil {
							t.Error(err)
							return
						}
						n := 0
						if found {
							n, _ = strconv.Atoi(string(cur))
						}
						swapped, _, _, err := s.KVCompareAndSwap(ctx, "deploy", "count", cur, !found, []byte(strconv.Itoa(n+1)))
						if err != nil {
							t.Error(err)
							return
						}
						if swapped {
							break
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	if v, _, err := stores[1].KVGet(ctx, "deploy", "count"); err != nil || string(v) != strconv.Itoa(4*each) {
		t.Fatalf("the counter is %q (%v), want %d: an update was lost", v, err, 4*each)
	}
}

func TestKVIncrementHandsOutEachValueOnceAcrossStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chima.db")
	stores := []*Store{openAt(t, path), openAt(t, path)} // two replicas on one database
	ctx := context.Background()
	const each = 25
	var mu sync.Mutex
	var got []int64
	var wg sync.WaitGroup
	for _, s := range stores {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					n, err := s.KVIncrement(ctx, "deploy", "next-id", 1)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					got = append(got, n)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	slices.Sort(got)
	for i, n := range got {
		if n != int64(i+1) {
			t.Fatalf("values handed out %v: want 1..%d each once", got, 4*each)
		}
	}
	if len(got) != 4*each {
		t.Fatalf("%d values, want %d", len(got), 4*each)
	}
	if err := stores[0].KVSet(ctx, "deploy", "text", []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if _, err := stores[0].KVIncrement(ctx, "deploy", "text", 1); err == nil {
		t.Error("incrementing a non-counter succeeded")
	}
}
