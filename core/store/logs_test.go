package store

import (
	"bytes"
	"context"
	"testing"
)

func TestLogsAppendAndReadFromAnyOffset(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	big := bytes.Repeat([]byte("0123456789"), 10_000) // spans two chunks
	var want []byte
	for _, part := range [][]byte{[]byte("line 1\n"), []byte("line 2\n"), big} {
		size, err := s.AppendLog(ctx, "deploy", "deployments/7", part)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, part...)
		if size != int64(len(want)) {
			t.Fatalf("size = %d, want %d", size, len(want))
		}
	}
	cases := []struct {
		name          string
		offset, limit int64
	}{
		{"whole log", 0, 0},
		{"from the middle of the first chunk", 3, 0},
		{"a window across chunks", 65_530, 20},
		{"past the end", int64(len(want)) + 5, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, size, found, err := s.ReadLog(ctx, "deploy", "deployments/7", c.offset, c.limit)
			if err != nil || !found || size != int64(len(want)) {
				t.Fatalf("found=%v size=%d err=%v", found, size, err)
			}
			from := min(c.offset, int64(len(want)))
			to := int64(len(want))
			if c.limit > 0 {
				to = min(to, from+c.limit)
			}
			if !bytes.Equal(got, want[from:to]) {
				t.Fatalf("read %d bytes, want %d", len(got), to-from)
			}
		})
	}
	if _, _, found, _ := s.ReadLog(ctx, "other", "deployments/7", 0, 0); found {
		t.Fatal("logs are not namespaced")
	}
}
