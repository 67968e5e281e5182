package directory

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// service is a directory as a chat service keeps it: rooms by id, each with
// a name. It counts the lookups that reach it, and can hold them until
// released or fail them as a service that is down.
type service struct {
	rooms map[string]string // id → name
	calls atomic.Int32
	hold  chan struct{} // when set, lookups wait for it to close
	down  atomic.Bool
}

func (s *service) LookupRoom(ctx context.Context, nameOrID string) (chat.Room, error) {
	s.calls.Add(1)
	if s.hold != nil {
		select {
		case <-s.hold:
		case <-ctx.Done():
			return chat.Room{}, ctx.Err()
		}
	}
	if s.down.Load() {
		return chat.Room{}, errors.New("503 service unavailable")
	}
	for id, name := range s.rooms {
		if id == nameOrID || name == nameOrID {
			return chat.Room{ID: id, Name: name}, nil
		}
	}
	return chat.Room{}, fmt.Errorf("channel %q: %w", nameOrID, chat.ErrUnknownRoom)
}

func (s *service) LookupUser(ctx context.Context, nameOrID string) (chat.User, error) {
	s.calls.Add(1)
	if nameOrID == "U1" || nameOrID == "alice" {
		return chat.User{ID: "U1", Name: "alice"}, nil
	}
	return chat.User{}, chat.ErrUnknownUser
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newService() *service {
	return &service{rooms: map[string]string{"C024BE91L": "deployment", "C0GENERAL": "general"}}
}

func TestAnAnswerServesEveryFormOfTheRoomUntilItExpires(t *testing.T) {
	svc, clk := newService(), &clock{t: time.Unix(1e9, 0)}
	c := New(svc, Options{TTL: time.Minute, Now: clk.now})
	ctx := context.Background()
	for _, ask := range []string{"deployment", "#deployment", "C024BE91L"} {
		r, err := c.LookupRoom(ctx, ask)
		if err != nil || r != (chat.Room{ID: "C024BE91L", Name: "deployment"}) {
			t.Fatalf("LookupRoom(%q) = %+v, %v", ask, r, err)
		}
	}
	if n := svc.calls.Load(); n != 1 {
		t.Fatalf("the service was asked %d times for one room in three forms, want once", n)
	}
	clk.add(time.Minute + time.Second)
	if _, err := c.LookupRoom(ctx, "C024BE91L"); err != nil {
		t.Fatal(err)
	}
	if n := svc.calls.Load(); n != 2 {
		t.Fatalf("after the TTL the service was asked %d times in all, want 2", n)
	}
	u, err := c.LookupUser(ctx, "@alice")
	if err != nil || u.ID != "U1" {
		t.Fatalf("LookupUser = %+v, %v", u, err)
	}
}

func TestNoSuchRoomIsKeptBrieflyAndOutagesNotAtAll(t *testing.T) {
	svc, clk := newService(), &clock{t: time.Unix(1e9, 0)}
	c := New(svc, Options{TTL: time.Hour, NegativeTTL: 10 * time.Second, Now: clk.now})
	ctx := context.Background()
	for range 3 {
		if _, err := c.LookupRoom(ctx, "ops"); !errors.Is(err, chat.ErrUnknownRoom) {
			t.Fatalf("unknown room: %v", err)
		}
	}
	if n := svc.calls.Load(); n != 1 {
		t.Fatalf("an unknown room was asked %d times, want once", n)
	}
	svc.rooms["C0OPS"] = "ops" // created since
	clk.add(11 * time.Second)
	if r, err := c.LookupRoom(ctx, "ops"); err != nil || r.ID != "C0OPS" {
		t.Fatalf("a room created since is %+v, %v", r, err)
	}

	svc.down.Store(true)
	before := svc.calls.Load()
	for range 2 {
		if _, err := c.LookupRoom(ctx, "general"); err == nil || errors.Is(err, chat.ErrUnknownRoom) {
			t.Fatalf("an outage is %v, want the service's error", err)
		}
	}
	if n := svc.calls.Load() - before; n != 2 {
		t.Fatalf("an outage was kept: %d calls for 2 lookups", n)
	}
}

func TestConcurrentLookupsOfOneRoomShareOneCall(t *testing.T) {
	svc := newService()
	svc.hold = make(chan struct{})
	c := New(svc, Options{})
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.LookupRoom(context.Background(), "deployment")
			if err == nil && r.ID != "C024BE91L" {
				err = fmt.Errorf("got %+v", r)
			}
			errs <- err
		}()
	}
	// Every lookup is waiting on the one call before it is released.
	deadline := time.Now().Add(5 * time.Second)
	for svc.calls.Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the rest join (more calls would show below)
	close(svc.hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := svc.calls.Load(); got != 1 {
		t.Fatalf("%d concurrent lookups made %d calls, want 1", n, got)
	}
}

func TestACallerThatGivesUpDoesNotFailTheOthers(t *testing.T) {
	svc := newService()
	svc.hold = make(chan struct{})
	c := New(svc, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := c.LookupRoom(ctx, "general"); first <- err }()
	for svc.calls.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	second := make(chan error, 1)
	go func() { _, err := c.LookupRoom(context.Background(), "general"); second <- err }()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that gave up got %v", err)
	}
	close(svc.hold)
	if err := <-second; err != nil {
		t.Fatalf("the caller still waiting got %v", err)
	}
}

func TestTheCacheIsBounded(t *testing.T) {
	svc := &service{rooms: map[string]string{}}
	for i := range 50 {
		svc.rooms[fmt.Sprintf("C%03d", i)] = fmt.Sprintf("room-%d", i)
	}
	c := New(svc, Options{MaxEntries: 10})
	for i := range 50 {
		if _, err := c.LookupRoom(context.Background(), fmt.Sprintf("room-%d", i)); err != nil {
			t.Fatal(err)
		}
		if c.Len() > 10 {
			t.Fatalf("%d entries kept, bound is 10", c.Len())
		}
	}
	// The most recent answers stay, the oldest went.
	before := svc.calls.Load()
	_, _ = c.LookupRoom(context.Background(), "room-49")
	_, _ = c.LookupRoom(context.Background(), "room-0")
	if got := svc.calls.Load() - before; got != 1 {
		t.Fatalf("%d calls for the newest and the oldest room, want 1 (the oldest)", got)
	}
	if _, err := c.LookupRoom(context.Background(), "  "); !errors.Is(err, chat.ErrUnknownRoom) || !strings.Contains(err.Error(), "unknown") {
		t.Fatalf("a blank room: %v", err)
	}
}
