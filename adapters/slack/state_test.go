package slack

import (
	"strconv"
	"testing"
	"time"
)

func TestRecentForgetsTheOldestWhenFull(t *testing.T) {
	r := newRecent(3)
	for i := range 3 {
		if !r.add(strconv.Itoa(i)) {
			t.Fatalf("%d was not new", i)
		}
	}
	if r.add("1") {
		t.Error("a seen id counted as new")
	}
	r.add("3") // evicts "0"
	if !r.add("0") {
		t.Error("the oldest id was kept past the bound")
	}
	if len(r.ids) != 3 {
		t.Errorf("%d ids kept, want the bound 3", len(r.ids))
	}
	first, again := r.add(""), r.add("")
	if !first || !again {
		t.Error("an event without an id must never be dropped as seen")
	}
}

func TestSlashStoreIsBoundedInNumberAndAge(t *testing.T) {
	s := newSlashStore(2, time.Hour)
	a := s.add("C1", "https://hooks.example/a")
	b := s.add("C1", "https://hooks.example/b")
	c := s.add("C1", "https://hooks.example/c")
	if _, ok := s.get(a); ok {
		t.Error("the oldest call was kept past the bound")
	}
	for _, id := range []string{b, c} {
		if _, ok := s.get(id); !ok {
			t.Errorf("call %s was forgotten", id)
		}
	}
	old := newSlashStore(10, -time.Second) // every call is already expired
	if _, ok := old.get(old.add("C1", "https://hooks.example/x")); ok {
		t.Error("an expired response URL was returned")
	}
}
