package main

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/chimaops/chima/sdk"
)

// Only values of a subscription.
const (
	onlyAll         = ""
	onlyFailures    = "failures"
	onlyTransitions = "transitions"
)

// subscription says which CI of a repository a room hears of.
type subscription struct {
	// Repo is owner/repo; an app's name in the settings is resolved to it.
	Repo string `json:"repo" yaml:"repo"`
	// Room is "room" or "adapter:room" in the settings; Adapter is split
	// off by normalise.
	Room    string `json:"room" yaml:"room"`
	Adapter string `json:"adapter,omitempty" yaml:"adapter"`
	// Branches are globs (path.Match); one starting with ! excludes.
	Branches []string `json:"branches,omitempty" yaml:"branches"`
	// Workflows limits the checks to those of these workflows (and the
	// statuses and check runs of that name).
	Workflows []string `json:"workflows,omitempty" yaml:"workflows"`
	// Events limits the runs to those started by these events: push,
	// pull_request, schedule, …
	Events []string `json:"events,omitempty" yaml:"events"`
	// Only is "", "failures" (only commits that fail) or "transitions"
	// (only broken, still failing and fixed).
	Only string `json:"only,omitempty" yaml:"only"`
	// IgnoreBots leaves out what bots pushed (dependabot[bot], …).
	IgnoreBots bool `json:"ignore_bots,omitempty" yaml:"ignore_bots"`
	// Declared marks a subscription of the settings, which chat cannot
	// remove.
	Declared bool `json:"-" yaml:"-"`
}

// normalise resolves an app to its repository, splits the room's adapter
// and checks the values.
func (s *subscription) normalise(apps map[string]*app, defaultAdapter string) error {
	if a := apps[strings.ToLower(s.Repo)]; a != nil {
		if s.Repo = a.githubRepo(); s.Repo == "" {
			return fmt.Errorf("app %s's repository (%s) is not on GitHub", a.Name, a.Repository)
		}
		if s.Room == "" && len(a.Rooms) > 0 {
			s.Room = a.Rooms[0]
		}
	}
	if strings.Count(s.Repo, "/") != 1 {
		return fmt.Errorf("repo %q is neither owner/repo nor an app of the apps file", s.Repo)
	}
	if s.Room == "" {
		return fmt.Errorf("room is required")
	}
	if ad, room, ok := strings.Cut(s.Room, ":"); ok && s.Adapter == "" {
		s.Adapter, s.Room = ad, room
	}
	if s.Adapter == "" {
		s.Adapter = defaultAdapter
	}
	switch s.Only {
	case onlyAll, onlyFailures, onlyTransitions:
	default:
		return fmt.Errorf("only %q: want failures or transitions", s.Only)
	}
	for _, b := range s.Branches {
		if _, err := path.Match(strings.TrimPrefix(b, "!"), ""); err != nil {
			return fmt.Errorf("branch glob %q: %v", b, err)
		}
	}
	return nil
}

// roomKey identifies the subscription's room.
func (s *subscription) roomKey() string { return s.Adapter + ":" + s.Room }

// target is where the subscription posts.
func (s *subscription) target() *sdk.MessageRef {
	return &sdk.MessageRef{Adapter: s.Adapter, Room: s.Room}
}

// matchBranch applies the branch globs: a branch matches when no include
// is given or one matches, and no exclude (!glob) matches. A commit whose
// branch is unknown matches only a subscription without includes.
func (s *subscription) matchBranch(branch string) bool {
	included, includes := false, false
	for _, g := range s.Branches {
		if ex, ok := strings.CutPrefix(g, "!"); ok {
			if globMatch(ex, branch) {
				return false
			}
			continue
		}
		includes = true
		if globMatch(g, branch) {
			included = true
		}
	}
	return !includes || included
}

// globMatch matches a branch glob; "**" and a trailing "/*" also match
// deeper branches (release/* matches release/1.2/hotfix).
func globMatch(glob, branch string) bool {
	if branch == "" {
		return false
	}
	if ok, _ := path.Match(glob, branch); ok {
		return true
	}
	if prefix, ok := strings.CutSuffix(glob, "*"); ok && strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(branch, prefix)
	}
	return false
}

// matchEvent applies the events filter to what started the runs.
func (s *subscription) matchEvent(event string) bool {
	return len(s.Events) == 0 || event == "" || contains(s.Events, event)
}

// keep applies the workflows filter to one check.
func (s *subscription) keep(c check) bool {
	if len(s.Workflows) == 0 {
		return true
	}
	for _, w := range s.Workflows {
		if strings.EqualFold(w, c.Name) || (c.Kind == kindJob && strings.EqualFold(w, c.Workflow)) {
			return true
		}
	}
	return false
}

// describe renders the subscription for ci:subscriptions.
func (s *subscription) describe() string {
	parts := []string{s.Repo}
	if len(s.Branches) > 0 {
		parts = append(parts, "branches "+strings.Join(s.Branches, ","))
	}
	if len(s.Workflows) > 0 {
		parts = append(parts, "workflows "+strings.Join(s.Workflows, ","))
	}
	if len(s.Events) > 0 {
		parts = append(parts, "events "+strings.Join(s.Events, ","))
	}
	if s.Only != "" {
		parts = append(parts, "only "+s.Only)
	}
	if s.IgnoreBots {
		parts = append(parts, "ignore bots")
	}
	if s.Declared {
		parts = append(parts, "(from the settings)")
	}
	return strings.Join(parts, " ")
}

// parseFilters reads "branches a,b workflows x events push only failures
// ignore bots" into s.
func parseFilters(s *subscription, text string) error {
	words := strings.Fields(text)
	list := func(i int, what string) ([]string, error) {
		if i >= len(words) {
			return nil, sdk.Errorf("%s needs a comma-separated list after it", what)
		}
		var out []string
		for _, v := range strings.Split(words[i], ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
		return out, nil
	}
	for i := 0; i < len(words); i++ {
		var err error
		switch w := strings.ToLower(words[i]); w {
		case "branches", "branch":
			i++
			s.Branches, err = list(i, w)
		case "workflows", "workflow":
			i++
			s.Workflows, err = list(i, w)
		case "events", "event":
			i++
			s.Events, err = list(i, w)
			for _, e := range s.Events {
				if !contains([]string{"push", "pull_request", "schedule", "workflow_dispatch", "merge_group", "release", "repository_dispatch"}, e) {
					return sdk.Errorf("event %q: want push, pull_request, schedule, workflow_dispatch, merge_group, release or repository_dispatch", e)
				}
			}
		case "only":
			i++
			if i >= len(words) || (words[i] != onlyFailures && words[i] != onlyTransitions) {
				return sdk.Errorf("only needs failures or transitions after it")
			}
			s.Only = words[i]
		case "ignore":
			i++
			if i >= len(words) || words[i] != "bots" {
				return sdk.Errorf("ignore needs bots after it")
			}
			s.IgnoreBots = true
		default:
			return sdk.Errorf("I don't understand %q: filters are branches <glob,…>, workflows <name,…>, events <event,…>, only failures|transitions and ignore bots", words[i])
		}
		if err != nil {
			return err
		}
	}
	for _, b := range s.Branches {
		if _, err := globValid(b); err != nil {
			return err
		}
	}
	return nil
}

func globValid(b string) (bool, error) {
	if _, err := path.Match(strings.TrimPrefix(b, "!"), ""); err != nil {
		return false, sdk.Errorf("branch glob %q is malformed", b)
	}
	return true, nil
}

// subsKey is the KV key of the subscriptions made in chat: one JSON list,
// so that an event costs one read however many there are.
const subsKey = "subscriptions"

// chatSubscriptions reads the subscriptions made in chat.
func chatSubscriptions(c *sdk.Context) ([]subscription, error) {
	var subs []subscription
	if _, err := kvJSON(c, subsKey, &subs); err != nil {
		return nil, err
	}
	return subs, nil
}

// subsFresh is how long the chat's subscriptions are used from memory: a
// change made here is seen at once, one made by another replica of the bot
// within this time.
const subsFresh = 15 * time.Second

// subsCache keeps the chat's subscriptions between events.
type subsCache struct {
	mu   sync.Mutex
	subs []subscription
	read time.Time
}

// subscriptions lists every subscription: the settings' and chat's.
func (p *ci) subscriptions(c *sdk.Context) ([]subscription, error) {
	cfg, _ := p.state()
	p.subsCache.mu.Lock()
	defer p.subsCache.mu.Unlock()
	if p.subsCache.read.IsZero() || time.Since(p.subsCache.read) > subsFresh {
		subs, err := chatSubscriptions(c)
		if err != nil {
			return nil, err
		}
		p.subsCache.subs, p.subsCache.read = subs, time.Now()
	}
	return append(append([]subscription(nil), cfg.subscriptions...), p.subsCache.subs...), nil
}

// editSubscriptions changes the chat's subscriptions with edit, which
// reports whether it changed them.
func (p *ci) editSubscriptions(c *sdk.Context, edit func([]subscription) ([]subscription, bool)) (bool, error) {
	unlock := p.locks.lock(subsKey)
	defer unlock()
	subs, err := chatSubscriptions(c)
	if err != nil {
		return false, err
	}
	subs, changed := edit(subs)
	if !changed {
		return false, nil
	}
	if err := kvPut(c, subsKey, subs); err != nil {
		return false, err
	}
	p.subsCache.mu.Lock()
	p.subsCache.subs, p.subsCache.read = subs, time.Now()
	p.subsCache.mu.Unlock()
	return true, nil
}

func (p *ci) cmdSubscribe(c *sdk.Context) error {
	cfg, _ := p.state()
	repo, ref, _, err := cfg.resolveTarget(c.Arg("target"))
	if err != nil {
		return err
	}
	if ref != "" {
		return sdk.Errorf("subscribe to a repository, and choose branches with: branches %s", ref)
	}
	src := c.Source()
	s := subscription{Repo: repo, Adapter: src.Adapter, Room: src.Room}
	if err := parseFilters(&s, c.Arg("filters")); err != nil {
		return err
	}
	if _, err := p.editSubscriptions(c, func(subs []subscription) ([]subscription, bool) {
		for i := range subs {
			if subs[i].roomKey() == s.roomKey() && strings.EqualFold(subs[i].Repo, repo) {
				subs[i] = s // a new subscription replaces the room's old one
				return subs, true
			}
		}
		return append(subs, s), true
	}); err != nil {
		return err
	}
	return c.Reply("This room now hears of the CI of %s.", s.describe())
}

func (p *ci) cmdUnsubscribe(c *sdk.Context) error {
	cfg, _ := p.state()
	repo, _, _, err := cfg.resolveTarget(c.Arg("target"))
	if err != nil {
		return err
	}
	src := c.Source()
	roomKey := src.Adapter + ":" + src.Room
	removed, err := p.editSubscriptions(c, func(subs []subscription) ([]subscription, bool) {
		for i := range subs {
			if subs[i].roomKey() == roomKey && strings.EqualFold(subs[i].Repo, repo) {
				return append(subs[:i], subs[i+1:]...), true
			}
		}
		return subs, false
	})
	if err != nil {
		return err
	}
	if !removed {
		for _, s := range cfg.subscriptions {
			if s.roomKey() == roomKey && strings.EqualFold(s.Repo, repo) {
				return sdk.Errorf("this room's subscription to %s is declared in the plugin's settings (chima.yaml); remove it there", repo)
			}
		}
		return sdk.Errorf("this room is not subscribed to %s", repo)
	}
	return c.Reply("This room no longer hears of the CI of %s.", repo)
}

func (p *ci) cmdSubscriptions(c *sdk.Context) error {
	subs, err := p.subscriptions(c)
	if err != nil {
		return err
	}
	src := c.Source()
	roomKey := src.Adapter + ":" + src.Room
	var lines []string
	for _, s := range subs {
		if s.roomKey() == roomKey {
			lines = append(lines, "• "+s.describe())
		}
	}
	if len(lines) == 0 {
		return c.Reply("This room has no CI subscriptions. Add one with: ci:subscribe <owner/repo|app>")
	}
	sort.Strings(lines)
	return c.Reply("CI subscriptions of this room:\n%s", strings.Join(lines, "\n"))
}

// keyedMutex serialises work on one key (one commit's message, one
// branch's history) among concurrent deliveries.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	users int
}

// lock takes key's lock and returns its release.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.users++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
