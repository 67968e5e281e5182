package slack

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// recent is a bounded set of recently seen ids: Slack delivers an event
// again (X-Slack-Retry-Num, a Socket Mode retry_attempt) when it thinks the
// first delivery failed, and each event must be handled once.
type recent struct {
	mu   sync.Mutex
	ids  map[string]struct{}
	ring []string
	next int
}

func newRecent(n int) *recent {
	return &recent{ids: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add records id and reports whether it is new. The empty id is always new.
func (r *recent) add(id string) bool {
	if id == "" {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ids[id]; ok {
		return false
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.ids, old)
	}
	r.ring[r.next] = id
	r.next = (r.next + 1) % len(r.ring)
	r.ids[id] = struct{}{}
	return true
}

// slashPrefix starts the synthetic message id of a slash command, which
// has no message of its own in Slack.
const slashPrefix = "slash:"

// slashCall is what the adapter keeps of one slash command: where to answer
// when the bot cannot post to the channel, and the message that became the
// answer's thread.
type slashCall struct {
	mu          sync.Mutex // serialises replies, so one of them becomes the root
	channel     string
	responseURL string
	root        string // ts of the first reply posted with chat.postMessage
	viaURL      bool   // the first reply went through the response URL
	replies     int    // replies sent through the response URL
	expires     time.Time
}

// slashStore keeps slash commands' response URLs by synthetic id, bounded
// in number and in age (Slack honours a response_url for 30 minutes).
type slashStore struct {
	mu    sync.Mutex
	calls map[string]*slashCall
	order []string
	max   int
	ttl   time.Duration
	seq   atomic.Uint64
}

func newSlashStore(max int, ttl time.Duration) *slashStore {
	return &slashStore{calls: make(map[string]*slashCall), max: max, ttl: ttl}
}

// add keeps a call and returns its synthetic message id.
func (s *slashStore) add(channel, responseURL string) string {
	id := slashPrefix + strconv.FormatUint(s.seq.Add(1), 10)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for len(s.order) > 0 && (len(s.order) >= s.max || s.expired(s.order[0], now)) {
		delete(s.calls, s.order[0])
		s.order = s.order[1:]
	}
	s.calls[id] = &slashCall{channel: channel, responseURL: responseURL, expires: now.Add(s.ttl)}
	s.order = append(s.order, id)
	return id
}

func (s *slashStore) expired(id string, now time.Time) bool {
	c, ok := s.calls[id]
	return !ok || now.After(c.expires)
}

// get returns the call of a synthetic id, if it is still kept.
func (s *slashStore) get(id string) (*slashCall, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.calls[id]
	if !ok || time.Now().After(c.expires) {
		return nil, false
	}
	return c, true
}

// nameCache remembers user and room names for rendering incoming text
// (<@U123> → @alice) without a users.info call per message.
type nameCache struct {
	mu    sync.Mutex
	users map[string]cached
	max   int
	ttl   time.Duration
}

type cached struct {
	name string
	at   time.Time
}

func newNameCache(max int, ttl time.Duration) *nameCache {
	return &nameCache{users: make(map[string]cached), max: max, ttl: ttl}
}

func (c *nameCache) user(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.users[id]
	if !ok || time.Since(e.at) > c.ttl {
		return "", false
	}
	return e.name, true
}

func (c *nameCache) putUser(id, name string) {
	if id == "" || name == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.users) >= c.max {
		clear(c.users) // crude but bounded; names come back on the next lookup
	}
	c.users[id] = cached{name: name, at: time.Now()}
}
