package store

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

func TestKVTransactionWritesAllOrNothing(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	for k, v := range map[string]string{"lease": "mine", "record": "r0", "open": "yes"} {
		if err := s.KVSet(ctx, "ci", k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		checks    []KVCheck
		writes    []KVWrite
		committed bool
		conflict  KVConflict
		after     map[string]string // "" for absent
	}{
		{
			name:      "the writes are made when every check holds",
			checks:    []KVCheck{{"lease", []byte("mine")}},
			writes:    []KVWrite{{Key: "record", Value: []byte("r1")}, {Key: "open", Delete: true}, {Key: "lease", Value: []byte("free")}},
			committed: true,
			after:     map[string]string{"record": "r1", "open": "", "lease": "free"},
		},
		{
			name:     "a check of a changed value writes nothing and says what is there",
			checks:   []KVCheck{{"record", []byte("r1")}, {"lease", []byte("mine")}},
			writes:   []KVWrite{{Key: "record", Value: []byte("r2")}, {Key: "open", Value: []byte("yes")}},
			conflict: KVConflict{Key: "lease", Current: []byte("free"), Found: true},
			after:    map[string]string{"record": "r1", "open": "", "lease": "free"},
		},
		{
			name:     "a check of an absent key fails",
			checks:   []KVCheck{{"open", []byte("")}},
			writes:   []KVWrite{{Key: "record", Value: []byte("r3")}},
			conflict: KVConflict{Key: "open"},
			after:    map[string]string{"record": "r1"},
		},
		{
			name:      "writes of one key apply in order",
			writes:    []KVWrite{{Key: "new", Value: []byte("a")}, {Key: "new", Delete: true}, {Key: "new", Value: []byte("b")}},
			committed: true,
			after:     map[string]string{"new": "b"},
		},
		{
			name:      "an empty value checks and stores as empty",
			writes:    []KVWrite{{Key: "empty"}},
			committed: true,
			after:     map[string]string{"empty": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			committed, conflict, err := s.KVTransaction(ctx, "ci", tt.checks, tt.writes)
			if err != nil {
				t.Fatal(err)
			}
			if committed != tt.committed || conflict.Key != tt.conflict.Key || string(conflict.Current) != string(tt.conflict.Current) || conflict.Found != tt.conflict.Found {
				t.Errorf("committed %v conflict %+v, want %v %+v", committed, conflict, tt.committed, tt.conflict)
			}
			for k, want := range tt.after {
				v, found, err := s.KVGet(ctx, "ci", k)
				if err != nil {
					t.Fatal(err)
				}
				if string(v) != want || (want != "" && !found) {
					t.Errorf("%s = %q (found %v), want %q", k, v, found, want)
				}
			}
		})
	}
	if committed, _, err := s.KVTransaction(ctx, "ci", []KVCheck{{"empty", nil}}, nil); err != nil || !committed {
		t.Errorf("a check of the empty value over an empty value: committed %v, %v", committed, err)
	}
	if _, _, err := s.KVTransaction(ctx, "ci", nil, []KVWrite{{Key: ""}}); err == nil {
		t.Error("a write of an empty key was not refused")
	}
}

func TestKVTransactionLosesNoUpdateAcrossStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chima.db")
	stores := []*Store{openAt(t, path), openAt(t, path)} // two replicas on one database
	ctx := context.Background()
	if err := stores[0].KVSet(ctx, "ci", "count", []byte("0")); err != nil {
		t.Fatal(err)
	}
	const each = 20
	var wg sync.WaitGroup
	for _, s := range stores {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Each increment also writes a key of its own value under
				// the same check: if two increments ever passed one check,
				// a number would be written twice and the count would lag.
				for range each {
					for {
						cur, _, err := s.KVGet(ctx, "ci", "count")
						if err != nil {
							t.Error(err)
							return
						}
						n, _ := strconv.Atoi(string(cur))
						next := []byte(strconv.Itoa(n + 1))
						committed, _, err := s.KVTransaction(ctx, "ci", []KVCheck{{"count", cur}},
							[]KVWrite{{Key: "count", Value: next}, {Key: "n/" + string(next), Value: next}})
						if err != nil {
							t.Error(err)
							return
						}
						if committed {
							break
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	if v, _, err := stores[1].KVGet(ctx, "ci", "count"); err != nil || string(v) != strconv.Itoa(4*each) {
		t.Fatalf("the counter is %q (%v), want %d: an update was lost", v, err, 4*each)
	}
	if keys, err := stores[1].KVList(ctx, "ci", "n/"); err != nil || len(keys) != 4*each {
		t.Fatalf("%d numbered keys (%v), want %d", len(keys), err, 4*each)
	}
}
