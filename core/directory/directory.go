// Package directory caches an adapter's chat.Directory: room and user ids
// resolve to names and names to ids without asking the service each time.
//
// People and config name rooms ("deployment"); services report ids
// ("C024BE91L"). The bot looks a room up on every command checked against a
// policy's rooms and every post to a named room, so answers are cached:
//
//   - an answer is kept for TTL (10 minutes by default), under the form it
//     was asked in and under the room's id and name, so that asking by name
//     also answers a later ask by id;
//   - "no such room" is kept for NegativeTTL (30 s), so a typo in a config
//     does not send a request per command, yet a new room shows up soon;
//   - other errors (the service is down) are not kept;
//   - at most MaxEntries answers are kept, the least recently used go first;
//   - concurrent lookups of one key share one call to the service.
package directory

import (
	"container/list"
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// Defaults of Options.
const (
	DefaultTTL         = 10 * time.Minute
	DefaultNegativeTTL = 30 * time.Second
	DefaultMaxEntries  = 4096
	// lookupTimeout bounds one call to the service. Callers sharing it may
	// give up sooner, each by its own context.
	lookupTimeout = 10 * time.Second
)

// Options tune a Cache; zero fields take the defaults.
type Options struct {
	TTL         time.Duration
	NegativeTTL time.Duration
	MaxEntries  int
	// Now is the clock (tests).
	Now func() time.Time
}

// Cache is a chat.Directory that caches another. It is safe for concurrent
// use.
type Cache struct {
	dir chat.Directory
	o   Options

	mu      sync.Mutex
	lru     *list.List // of *entry, most recently used first
	entries map[key]*list.Element
	flights map[key]*flight
}

var _ chat.Directory = (*Cache)(nil)

type kind uint8

const (
	roomKind kind = iota
	userKind
)

type key struct {
	kind kind
	s    string
}

type entry struct {
	key     key
	room    chat.Room
	user    chat.User
	err     error // ErrUnknownRoom / ErrUnknownUser for a negative answer
	expires time.Time
}

type flight struct {
	done chan struct{}
	room chat.Room
	user chat.User
	err  error
}

// New returns a cache over dir.
func New(dir chat.Directory, o Options) *Cache {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = DefaultNegativeTTL
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Cache{dir: dir, o: o, lru: list.New(), entries: map[key]*list.Element{}, flights: map[key]*flight{}}
}

// normalize drops the leading '#' or '@' people write, as directories do.
func normalize(s string) string {
	return strings.TrimLeft(strings.TrimSpace(s), "#@")
}

// LookupRoom returns the room named or id'd nameOrID.
func (c *Cache) LookupRoom(ctx context.Context, nameOrID string) (chat.Room, error) {
	e, err := c.lookup(ctx, key{roomKind, normalize(nameOrID)})
	return e.room, err
}

// LookupUser returns the user named or id'd nameOrID.
func (c *Cache) LookupUser(ctx context.Context, nameOrID string) (chat.User, error) {
	e, err := c.lookup(ctx, key{userKind, normalize(nameOrID)})
	return e.user, err
}

func (c *Cache) lookup(ctx context.Context, k key) (entry, error) {
	if k.s == "" {
		return entry{}, c.unknown(k.kind)
	}
	c.mu.Lock()
	if el, ok := c.entries[k]; ok {
		e := el.Value.(*entry)
		if c.o.Now().Before(e.expires) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			return *e, e.err
		}
		c.remove(el)
	}
	f, shared := c.flights[k]
	if !shared {
		f = &flight{done: make(chan struct{})}
		c.flights[k] = f
		// The call outlives a caller that gives up: the others still want it.
		go c.fly(context.WithoutCancel(ctx), k, f)
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return entry{room: f.room, user: f.user}, f.err
	case <-ctx.Done():
		return entry{}, ctx.Err()
	}
}

// fly asks the service once for k and keeps the answer.
func (c *Cache) fly(ctx context.Context, k key, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	switch k.kind {
	case roomKind:
		f.room, f.err = c.dir.LookupRoom(ctx, k.s)
	default:
		f.user, f.err = c.dir.LookupUser(ctx, k.s)
	}
	c.mu.Lock()
	delete(c.flights, k)
	now := c.o.Now()
	switch {
	case f.err == nil:
		e := entry{room: f.room, user: f.user, expires: now.Add(c.o.TTL)}
		// Kept under each form it may be asked in next.
		for _, s := range c.forms(k, f) {
			e.key = key{k.kind, s}
			c.put(e)
		}
	case errors.Is(f.err, c.unknown(k.kind)):
		c.put(entry{key: k, err: f.err, expires: now.Add(c.o.NegativeTTL)})
	}
	c.mu.Unlock()
	close(f.done)
}

// forms are the keys an answer is kept under: as asked, its id and its name.
func (c *Cache) forms(k key, f *flight) []string {
	out := []string{k.s}
	add := func(s string) {
		if s = normalize(s); s != "" && s != k.s {
			out = append(out, s)
		}
	}
	if k.kind == roomKind {
		add(f.room.ID)
		add(f.room.Name)
	} else {
		add(f.user.ID)
		add(f.user.Name)
	}
	return out
}

func (c *Cache) unknown(k kind) error {
	if k == roomKind {
		return chat.ErrUnknownRoom
	}
	return chat.ErrUnknownUser
}

// put stores e, evicting the least recently used beyond MaxEntries. c.mu
// is held.
func (c *Cache) put(e entry) {
	if el, ok := c.entries[e.key]; ok {
		*el.Value.(*entry) = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[e.key] = c.lru.PushFront(&e)
	for c.lru.Len() > c.o.MaxEntries {
		c.remove(c.lru.Back())
	}
}

func (c *Cache) remove(el *list.Element) {
	delete(c.entries, el.Value.(*entry).key)
	c.lru.Remove(el)
}

// Len is the number of answers kept (tests, metrics).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
