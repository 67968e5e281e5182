package store

import (
	"context"
	"slices"
	"testing"
)

func TestKVSetGetOverwriteDelete(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)

	if _, ok, err := s.KVGet(ctx, "deploy", "k"); err != nil || ok {
		t.Fatalf("KVGet of missing key = ok %v, err %v; want not found", ok, err)
	}
	steps := []struct {
		name  string
		set   []byte
		want  string
		found bool
	}{
		{"set", []byte("one"), "one", true},
		{"overwrite", []byte("two"), "two", true},
		{"empty value is kept", []byte{}, "", true},
		{"nil value is stored as empty", nil, "", true},
		{"binary value", []byte{0, 1, 2, 255}, "\x00\x01\x02\xff", true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := s.KVSet(ctx, "deploy", "k", st.set); err != nil {
				t.Fatal(err)
			}
			v, ok, err := s.KVGet(ctx, "deploy", "k")
			if err != nil || ok != st.found || string(v) != st.want {
				t.Fatalf("KVGet = %q, %v, %v; want %q, %v", v, ok, err, st.want, st.found)
			}
			if ok && v == nil {
				t.Fatal("KVGet of an existing key returned nil slice")
			}
		})
	}
	if err := s.KVDelete(ctx, "deploy", "k"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.KVGet(ctx, "deploy", "k"); err != nil || ok {
		t.Fatalf("KVGet after delete = ok %v, err %v; want not found", ok, err)
	}
	if err := s.KVDelete(ctx, "deploy", "k"); err != nil {
		t.Fatalf("KVDelete of missing key: %v", err)
	}
}

func TestKVNamespacesAreSeparate(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	for _, ns := range []string{"deploy", "backup"} {
		if err := s.KVSet(ctx, ns, "shared", []byte(ns)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.KVDelete(ctx, "backup", "shared"); err != nil {
		t.Fatal(err)
	}
	v, ok, err := s.KVGet(ctx, "deploy", "shared")
	if err != nil || !ok || string(v) != "deploy" {
		t.Fatalf("deploy/shared = %q, %v, %v; want untouched by backup's delete", v, ok, err)
	}
	keys, err := s.KVList(ctx, "backup", "")
	if err != nil || len(keys) != 0 {
		t.Fatalf("KVList(backup) = %v, %v; want empty", keys, err)
	}
}

func TestKVListMatchesPrefixLiterally(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	keys := []string{"a%b", "a%c", "axb", "a_b", "a_c", "aXb", "A_b", "b", "a", "ä_1", "ä_2", "äx"}
	for _, k := range keys {
		if err := s.KVSet(ctx, "p", k, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.KVSet(ctx, "other", "a_z", []byte("v")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"A_b", "a", "a%b", "a%c", "aXb", "a_b", "a_c", "axb", "b", "ä_1", "ä_2", "äx"}},
		{"a%", []string{"a%b", "a%c"}},
		{"a_", []string{"a_b", "a_c"}},
		{"A_", []string{"A_b"}},
		{"a", []string{"a", "a%b", "a%c", "aXb", "a_b", "a_c", "axb"}},
		{"ä_", []string{"ä_1", "ä_2"}},
		{"%", nil},
		{"_", nil},
		{"zzz", nil},
	}
	for _, tt := range tests {
		t.Run("prefix "+tt.prefix, func(t *testing.T) {
			got, err := s.KVList(ctx, "p", tt.prefix)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("KVList(p, %q) = %q, want %q", tt.prefix, got, tt.want)
			}
		})
	}
}

func TestKVRejectsEmptyNamespaceOrKey(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	tests := []struct {
		name string
		fn   func() error
	}{
		{"set empty ns", func() error { return s.KVSet(ctx, "", "k", nil) }},
		{"set empty key", func() error { return s.KVSet(ctx, "ns", "", nil) }},
		{"get empty key", func() error { _, _, err := s.KVGet(ctx, "ns", ""); return err }},
		{"delete empty ns", func() error { return s.KVDelete(ctx, "", "k") }},
		{"list empty ns", func() error { _, err := s.KVList(ctx, "", ""); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.fn(); err == nil {
				t.Fatal("want error")
			}
		})
	}
}
