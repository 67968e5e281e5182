package store

import (
	"context"
	"testing"
	"time"
)

func TestAcquireLock(t *testing.T) {
	ctx := context.Background()
	type step struct {
		at           time.Duration // clock offset from base
		lock         Lock
		wantAcquired bool
		wantOwner    string
		wantReason   string
		wantAcqAt    time.Duration // holder's AcquiredAt offset from base
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"free lock is acquired", []step{
			{0, Lock{Name: "deploy:x", Owner: "ada", Reason: "r1"}, true, "ada", "r1", 0},
		}},
		{"held lock is refused and reports the holder", []step{
			{0, Lock{Name: "deploy:x", Owner: "ada", Reason: "r1"}, true, "ada", "r1", 0},
			{time.Second, Lock{Name: "deploy:x", Owner: "bob", Reason: "r2"}, false, "ada", "r1", 0},
		}},
		{"same owner re-acquires, updating reason but keeping acquisition time", []step{
			{0, Lock{Name: "deploy:x", Owner: "ada", Reason: "r1"}, true, "ada", "r1", 0},
			{time.Second, Lock{Name: "deploy:x", Owner: "ada", Reason: "r2", ExpiresAt: base.Add(time.Hour)}, true, "ada", "r2", 0},
		}},
		{"expired lock is taken over", []step{
			{0, Lock{Name: "deploy:x", Owner: "ada", Reason: "r1", ExpiresAt: base.Add(time.Minute)}, true, "ada", "r1", 0},
			{30 * time.Second, Lock{Name: "deploy:x", Owner: "bob", Reason: "r2"}, false, "ada", "r1", 0},
			{time.Minute, Lock{Name: "deploy:x", Owner: "bob", Reason: "r2"}, true, "bob", "r2", time.Minute},
		}},
		{"same owner re-acquiring after expiry starts afresh", []step{
			{0, Lock{Name: "deploy:x", Owner: "ada", ExpiresAt: base.Add(time.Minute)}, true, "ada", "", 0},
			{2 * time.Minute, Lock{Name: "deploy:x", Owner: "ada"}, true, "ada", "", 2 * time.Minute},
		}},
		{"locks with different names are independent", []step{
			{0, Lock{Name: "deploy:x", Owner: "ada"}, true, "ada", "", 0},
			{0, Lock{Name: "deploy:y", Owner: "bob"}, true, "bob", "", 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newStore(t)
			for i, st := range tt.steps {
				clock.set(base.Add(st.at))
				holder, acquired, err := s.AcquireLock(ctx, st.lock)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if acquired != st.wantAcquired || holder.Owner != st.wantOwner || holder.Reason != st.wantReason ||
					holder.Name != st.lock.Name || !holder.AcquiredAt.Equal(base.Add(st.wantAcqAt)) {
					t.Fatalf("step %d: AcquireLock(%+v) = %+v, %v; want owner %q reason %q acquired %v at +%v",
						i, st.lock, holder, acquired, st.wantOwner, st.wantReason, st.wantAcquired, st.wantAcqAt)
				}
				if acquired && !holder.ExpiresAt.Equal(st.lock.ExpiresAt) {
					t.Fatalf("step %d: ExpiresAt = %v, want %v", i, holder.ExpiresAt, st.lock.ExpiresAt)
				}
			}
		})
	}
}

func TestAcquireLockRequiresNameAndOwner(t *testing.T) {
	s, _ := newStore(t)
	for _, l := range []Lock{{Owner: "ada"}, {Name: "x"}} {
		if _, _, err := s.AcquireLock(context.Background(), l); err == nil {
			t.Errorf("AcquireLock(%+v) succeeded, want error", l)
		}
	}
}

func TestReleaseLock(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name         string
		held         *Lock // acquired at base before the release
		at           time.Duration
		owner        string
		force        bool
		wantReleased bool
		wantHolder   string
		wantStill    bool // lock still held afterwards
	}{
		{"owner releases", &Lock{Name: "l", Owner: "ada"}, 0, "ada", false, true, "ada", false},
		{"non-owner is refused", &Lock{Name: "l", Owner: "ada"}, 0, "bob", false, false, "ada", true},
		{"force releases someone else's lock", &Lock{Name: "l", Owner: "ada"}, 0, "bob", true, true, "ada", false},
		{"free lock is not released", nil, 0, "ada", false, false, "", false},
		{"expired lock counts as free", &Lock{Name: "l", Owner: "ada", ExpiresAt: base.Add(time.Minute)}, time.Minute, "ada", false, false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newStore(t)
			if tt.held != nil {
				if _, ok, err := s.AcquireLock(ctx, *tt.held); err != nil || !ok {
					t.Fatalf("AcquireLock = %v, %v", ok, err)
				}
			}
			clock.set(base.Add(tt.at))
			released, holder, err := s.ReleaseLock(ctx, "l", tt.owner, tt.force)
			if err != nil {
				t.Fatal(err)
			}
			if released != tt.wantReleased || holder.Owner != tt.wantHolder {
				t.Fatalf("ReleaseLock = %v, %+v; want released %v, holder %q", released, holder, tt.wantReleased, tt.wantHolder)
			}
			locks, err := s.Locks(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if still := len(locks) == 1; still != tt.wantStill {
				t.Fatalf("after release, Locks = %+v; want still held = %v", locks, tt.wantStill)
			}
		})
	}
}

func TestLocksListsUnexpiredByPrefixSortedByName(t *testing.T) {
	ctx := context.Background()
	s, clock := newStore(t)
	for _, l := range []Lock{
		{Name: "deploy:z", Owner: "a"},
		{Name: "deploy:a", Owner: "a"},
		{Name: "deploy_x", Owner: "a"},
		{Name: "deploy:old", Owner: "a", ExpiresAt: base.Add(time.Second)},
		{Name: "backup:db", Owner: "a"},
	} {
		if _, ok, err := s.AcquireLock(ctx, l); err != nil || !ok {
			t.Fatalf("AcquireLock(%+v) = %v, %v", l, ok, err)
		}
	}
	clock.set(base.Add(time.Second))
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"backup:db", "deploy:a", "deploy:z", "deploy_x"}},
		{"deploy:", []string{"deploy:a", "deploy:z"}},
		{"deploy_", []string{"deploy_x"}},
		{"_", nil},
	}
	for _, tt := range tests {
		t.Run("prefix "+tt.prefix, func(t *testing.T) {
			locks, err := s.Locks(ctx, tt.prefix)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, l := range locks {
				names = append(names, l.Name)
			}
			if len(names) != len(tt.want) {
				t.Fatalf("Locks(%q) = %v, want %v", tt.prefix, names, tt.want)
			}
			for i := range names {
				if names[i] != tt.want[i] {
					t.Fatalf("Locks(%q) = %v, want %v", tt.prefix, names, tt.want)
				}
			}
		})
	}
}

func TestReleaseJobLocksReleasesOnlyThatJobsLocks(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	for _, l := range []Lock{
		{Name: "b", Owner: "job", JobID: 7},
		{Name: "a", Owner: "job", JobID: 7},
		{Name: "c", Owner: "job", JobID: 8},
		{Name: "d", Owner: "ada"},
	} {
		if _, ok, err := s.AcquireLock(ctx, l); err != nil || !ok {
			t.Fatalf("AcquireLock(%+v) = %v, %v", l, ok, err)
		}
	}
	released, err := s.ReleaseJobLocks(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(released) != 2 || released[0].Name != "a" || released[1].Name != "b" || released[0].JobID != 7 {
		t.Fatalf("ReleaseJobLocks(7) = %+v, want locks a and b", released)
	}
	left, _ := s.Locks(ctx, "")
	if len(left) != 2 || left[0].Name != "c" || left[1].Name != "d" {
		t.Fatalf("Locks after release = %+v, want c and d", left)
	}
	if _, err := s.ReleaseJobLocks(ctx, 0); err == nil {
		t.Fatal("ReleaseJobLocks(0) succeeded, want error (0 means no job)")
	}
}
