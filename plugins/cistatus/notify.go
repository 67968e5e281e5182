package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-github/v57/github"

	"github.com/chimaops/chima/sdk"
)

// msgRef is a posted message, as kept in the KV.
type msgRef struct {
	Adapter string `json:"adapter"`
	Room    string `json:"room"`
	ID      string `json:"id"`
	Thread  string `json:"thread,omitempty"`
	// Hash is the last content posted, so an unchanged message is not
	// edited again.
	Hash string `json:"hash,omitempty"`
}

func (m *msgRef) ref() *sdk.MessageRef {
	return &sdk.MessageRef{Adapter: m.Adapter, Room: m.Room, MessageID: m.ID, ThreadID: m.Thread}
}

// tracked is what the plugin knows of one commit, or of one pull request's
// head: its checks, who pushed, and the message of each room about it.
type tracked struct {
	Repo    string           `json:"repo"`
	SHA     string           `json:"sha"`
	Branch  string           `json:"branch,omitempty"`
	PR      int              `json:"pr,omitempty"`
	PRTitle string           `json:"pr_title,omitempty"`
	Checks  map[string]check `json:"checks"`
	Pusher  string           `json:"pusher,omitempty"`
	Actor   string           `json:"actor,omitempty"`
	Author  string           `json:"author,omitempty"`
	Event   string           `json:"event,omitempty"`
	Bot     bool             `json:"bot,omitempty"`
	// Messages by room key.
	Messages map[string]*msgRef `json:"messages,omitempty"`
	// Digests of failed checks, by check key.
	Digests map[string]*digest `json:"digests,omitempty"`
	// Old are a pull request's earlier heads: their late events are
	// ignored.
	Old []string `json:"old,omitempty"`
	// Open is set while the commit is kept for the poll (markOpen).
	Open bool `json:"open,omitempty"`
}

// commitInfo is what push and pull_request events leave for a commit's
// later events: who pushed, and its pull request (fork PRs' suites carry
// none).
type commitInfo struct {
	Pusher  string `json:"pusher,omitempty"`
	Author  string `json:"author,omitempty"`
	Branch  string `json:"branch,omitempty"`
	PR      int    `json:"pr,omitempty"`
	PRTitle string `json:"pr_title,omitempty"`
	Bot     bool   `json:"bot,omitempty"`
}

// lineage is the recent history of a branch or pull request in one room:
// the commits seen, newest last, and the last conclusive state.
type lineage struct {
	State   string   `json:"state,omitempty"`
	SHA     string   `json:"sha,omitempty"`
	History []string `json:"history,omitempty"`
}

// KV keys.
func trackKey(repo, sha string, pr int) string {
	if pr > 0 {
		return fmt.Sprintf("track/%s#%d", strings.ToLower(repo), pr)
	}
	return "track/" + strings.ToLower(repo) + "@" + sha
}
func commitKey(repo, sha string) string { return "commit/" + strings.ToLower(repo) + "@" + sha }
func lineKey(roomKey, repo string, t *tracked) string {
	if t.PR > 0 {
		return fmt.Sprintf("line/%s/%s#%d", roomKey, strings.ToLower(repo), t.PR)
	}
	return "line/" + roomKey + "/" + strings.ToLower(repo) + ":" + t.Branch
}

// kvJSON reads a JSON value; found is false for an absent key.
func kvJSON(c *sdk.Context, key string, into any) (bool, error) {
	raw, ok, err := c.KV().Get(key)
	if err != nil || !ok {
		return false, err
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return false, fmt.Errorf("decode %s: %w", key, err)
	}
	return true, nil
}

func kvPut(c *sdk.Context, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return c.KV().Set(key, raw)
}

// kvUpdate reads key's JSON value into a T (its zero value when absent),
// lets change decide the new value, and writes it with a compare-and-swap,
// deciding again from what is there when another replica of the bot wrote
// it first. change returns whether there is anything to write; kvUpdate
// returns the value last decided on and whether it was written.
func kvUpdate[T any](c *sdk.Context, key string, change func(*T) bool) (T, bool, error) {
	var v T
	for range 5 {
		raw, found, err := c.KV().Get(key)
		if err != nil {
			return v, false, err
		}
		v = *new(T)
		if found {
			if err := json.Unmarshal(raw, &v); err != nil {
				return v, false, fmt.Errorf("decode %s: %w", key, err)
			}
		}
		if !change(&v) {
			return v, false, nil
		}
		value, err := json.Marshal(v)
		if err != nil {
			return v, false, fmt.Errorf("encode %s: %w", key, err)
		}
		var swapped bool
		if found {
			swapped, _, err = c.KV().CompareAndSwap(key, raw, value)
		} else {
			swapped, _, err = c.KV().Create(key, value)
		}
		if err != nil {
			return v, false, err
		}
		if swapped {
			return v, true, nil
		}
	}
	return v, false, fmt.Errorf("update %s: it kept changing under me", key)
}

// onEvent handles every GitHub event the plugin listens to.
func (p *ci) onEvent(c *sdk.Context) error {
	d, err := decodeEvent(c.Event.Type, c.Event.Payload)
	if err != nil || d == nil {
		return err
	}
	if d.Repo == "" || d.SHA == "" {
		return nil
	}
	return p.handleDelta(c, d)
}

// handleDelta applies what an event (or the reconciling poll) says of a
// commit, and tells the rooms.
func (p *ci) handleDelta(c *sdk.Context, d *delta) error {
	info, err := p.recordCommit(c, d)
	if err != nil {
		return err
	}
	if d.Push {
		return nil // the runs it starts say the rest
	}
	pr := info.PR
	if len(d.PRs) > 0 {
		pr = d.PRs[0]
	}
	key := trackKey(d.Repo, d.SHA, pr)
	l, err := p.hold(c, key)
	if err != nil {
		return err
	}
	defer l.release() // when not saved below
	t, stale, err := p.applyDelta(c, d, info, pr, l.record)
	if err != nil || stale {
		return err
	}
	// The record is saved even when telling a room failed: the event is
	// then redelivered, and what was posted is not posted twice.
	nerr := p.notify(c, t)
	txn := c.KV().Txn()
	if err := p.markOpen(txn, t); err != nil {
		return err
	}
	raw, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := l.save(txn, raw); err != nil {
		return err
	}
	if nerr != nil {
		return nerr
	}
	return p.autoDeploy(c, t)
}

// recordCommit keeps what push and pull_request events say of a commit,
// and returns what is known of it. The record is written with a
// compare-and-swap: another replica may be writing it at the same time.
func (p *ci) recordCommit(c *sdk.Context, d *delta) (*commitInfo, error) {
	key := commitKey(d.Repo, d.SHA)
	unlock := p.locks.lock(key)
	defer unlock()
	info, _, err := kvUpdate(c, key, func(info *commitInfo) bool { return updateCommit(info, d) })
	if err != nil {
		return nil, err
	}
	return &info, nil
}

// updateCommit applies d to what is known of its commit, and reports
// whether that changed.
func updateCommit(info *commitInfo, d *delta) bool {
	before := *info
	if !d.Push && !d.PullRequest {
		if len(d.PRs) == 0 || info.PR != 0 {
			return false
		}
		// Its pull request, for the commit's later events that name none
		// (statuses never do).
		info.PR = d.PRs[0]
		info.Branch = firstNonEmpty(info.Branch, d.Branch)
		return true
	}
	if d.Push {
		info.Pusher, info.Author, info.Branch, info.Bot = d.Pusher, d.Author, d.Branch, d.Bot
	}
	if d.PullRequest {
		info.PR, info.PRTitle = d.PRs[0], d.PRTitle
		if info.Pusher == "" {
			info.Pusher, info.Bot = d.Pusher, d.Bot
		}
		info.Author = firstNonEmpty(info.Author, d.Author)
	}
	return *info != before
}

// applyDelta merges d into its commit's (or pull request's) record. stale
// is set for a late event of a pull request's earlier head.
func (p *ci) applyDelta(c *sdk.Context, d *delta, info *commitInfo, pr int, known []byte) (*tracked, bool, error) {
	key := trackKey(d.Repo, d.SHA, pr)
	t := &tracked{}
	var found bool
	var err error
	if known != nil {
		// Written last by this process, under the lease it holds again.
		if err := json.Unmarshal(known, t); err != nil {
			return nil, false, fmt.Errorf("decode %s: %w", key, err)
		}
		found = true
	} else if found, err = kvJSON(c, key, t); err != nil {
		return nil, false, err
	}
	if !found {
		t = &tracked{Repo: d.Repo, SHA: d.SHA, PR: pr}
	}
	if t.SHA != d.SHA {
		if contains(t.Old, d.SHA) {
			return nil, true, nil
		}
		// A new head of the pull request: its message now follows it.
		t.Old = append(t.Old, t.SHA)
		if len(t.Old) > 20 {
			t.Old = t.Old[len(t.Old)-20:]
		}
		t.SHA, t.Checks, t.Digests, t.Pusher, t.Author, t.Actor, t.Event = d.SHA, nil, nil, "", "", "", ""
	}
	if t.Checks == nil {
		t.Checks = map[string]check{}
	}
	t.Branch = firstNonEmpty(t.Branch, d.Branch, info.Branch)
	if d.PullRequest && d.Branch != "" {
		t.Branch = d.Branch
	}
	t.PRTitle = firstNonEmpty(d.PRTitle, t.PRTitle, info.PRTitle)
	t.Pusher = firstNonEmpty(info.Pusher, d.Pusher, t.Pusher)
	t.Actor = firstNonEmpty(t.Actor, d.Actor)
	t.Author = firstNonEmpty(info.Author, t.Author, d.Author)
	t.Bot = t.Bot || d.Bot || info.Bot
	if t.Event == "" || d.Event != "" {
		t.Event = firstNonEmpty(d.Event, t.Event)
	}
	if t.Event == "" && pr > 0 {
		t.Event = "pull_request"
	}
	for _, ch := range d.Checks {
		if !merge(t.Checks, ch) {
			continue
		}
		if ch.State == stateFailure {
			if err := p.digestFailure(c, t, ch, d); err != nil {
				c.Logger().Warn("no failure digest", "check", ch.Key, "error", err)
			}
		} else if t.Digests[ch.Key] != nil {
			delete(t.Digests, ch.Key) // rerun: the old digest no longer holds
		}
	}
	return t, false, nil // saved once the rooms have been told (save)
}

// notify posts or edits each subscribed room's message about t, and
// replies in its thread on a transition.
func (p *ci) notify(c *sdk.Context, t *tracked) error {
	subs, err := p.subscriptions(c)
	if err != nil {
		return err
	}
	for i := range subs {
		s := &subs[i]
		if !strings.EqualFold(s.Repo, t.Repo) || !s.matchBranch(t.Branch) || !s.matchEvent(t.Event) || (s.IgnoreBots && t.Bot) {
			continue
		}
		var cs []check
		for _, ch := range visible(t.Checks) {
			if s.keep(ch) {
				cs = append(cs, ch)
			}
		}
		if len(cs) == 0 {
			continue
		}
		st := overall(cs)
		if _, err := p.notifyRoom(c, s, t, cs, st); err != nil {
			return err
		}
	}
	return nil
}

// notifyRoom does one room's part of notify; it reports whether t changed.
func (p *ci) notifyRoom(c *sdk.Context, s *subscription, t *tracked, cs []check, st string) (bool, error) {
	changed := false
	msg := t.Messages[s.roomKey()]
	if s.Only != onlyTransitions && (msg != nil || s.Only != onlyFailures || st == stateFailure) {
		out := p.renderNotice(t, cs, st)
		hash := outputHash(out)
		switch {
		case msg == nil:
			ref, err := c.Post(s.target(), out)
			if err != nil {
				return false, err
			}
			msg = &msgRef{Adapter: ref.Adapter, Room: ref.Room, ID: ref.MessageID, Thread: ref.ThreadID, Hash: hash}
			if t.Messages == nil {
				t.Messages = map[string]*msgRef{}
			}
			t.Messages[s.roomKey()] = msg
			changed = true
		case msg.Hash != hash:
			if err := c.Update(msg.ref(), out); err != nil {
				return false, err
			}
			msg.Hash = hash
			changed = true
		}
	}
	if st != stateSuccess && st != stateFailure {
		return changed, nil
	}
	reply, err := p.transition(c, s, t, cs, st)
	if err != nil || reply == nil {
		return changed, err
	}
	to := s.target()
	if msg != nil {
		to = &sdk.MessageRef{Adapter: msg.Adapter, Room: msg.Room, ThreadID: firstNonEmpty(msg.Thread, msg.ID)}
	}
	_, err = c.Post(to, reply)
	return changed, err
}

// transition records st as the newest conclusive state of t's branch or
// pull request in the room, and returns the reply it calls for: broken,
// still failing or fixed; nil for none (the first state seen, the same
// state again, an older commit's late result). The record is written with
// a compare-and-swap, so that two replicas of the bot hearing of one
// branch at once reply once.
func (p *ci) transition(c *sdk.Context, s *subscription, t *tracked, cs []check, st string) (*sdk.Output, error) {
	if t.PR == 0 && t.Branch == "" {
		return nil, nil // a commit of no known branch has no history
	}
	key := lineKey(s.roomKey(), t.Repo, t)
	unlock := p.locks.lock(key)
	defer unlock()
	var word string
	_, written, err := kvUpdate(c, key, func(l *lineage) bool {
		var changed bool
		word, *l, changed = nextLineage(*l, t.SHA, st)
		return changed
	})
	if err != nil || !written || word == "" {
		return nil, err // nothing new to record, so nothing to say
	}
	return p.renderTransition(word, t, cs, st), nil
}

// nextLineage is l once sha ended as st, and the transition that is:
// "Broken", "Still failing", "Fixed" or "" for none. changed is false when
// there is nothing to record (a redelivery, an older commit's late result).
func nextLineage(l lineage, sha, st string) (word string, next lineage, changed bool) {
	if i := indexOf(l.History, sha); i >= 0 && i < len(l.History)-1 {
		return "", l, false // a newer commit came since: its result speaks
	}
	if l.SHA == sha && l.State == st {
		return "", l, false // a redelivery, or a check of the same outcome
	}
	prev, prevSHA := l.State, l.SHA
	next = lineage{State: st, SHA: sha, History: append([]string(nil), l.History...)}
	if indexOf(next.History, sha) < 0 {
		next.History = append(next.History, sha)
		if len(next.History) > 30 {
			next.History = next.History[len(next.History)-30:]
		}
	}
	switch {
	case prev == stateSuccess && st == stateFailure:
		word = "Broken"
	case prev == stateFailure && st == stateFailure && prevSHA != sha:
		word = "Still failing"
	case prev == stateFailure && st == stateSuccess:
		word = "Fixed"
	}
	return word, next, true
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// where names t's branch or pull request.
func (t *tracked) where() string {
	switch {
	case t.PR > 0 && t.PRTitle != "":
		return fmt.Sprintf("#%d %s", t.PR, t.PRTitle)
	case t.PR > 0:
		return fmt.Sprintf("#%d", t.PR)
	}
	return t.Branch
}

// person is the chat person (chima.yaml's people) the people setting maps
// a GitHub login to, or "" when it maps none.
func (p *ci) person(login string) string {
	cfg, _ := p.state()
	return strings.TrimPrefix(cfg.people[login], "@")
}

// mention names a GitHub account in a thread reply: a mention of the
// person the people setting maps its login to, which pings them where they
// have an account on the chat service, or the login.
func (p *ci) mention(login string) string {
	if name := p.person(login); name != "" {
		return sdk.MentionPerson(name)
	}
	return login
}

// name names a GitHub account in the room's message, which is edited as
// runs progress: the person, without a ping (edits would not notify, and
// the thread reply on a transition does), or the login.
func (p *ci) name(login string) string {
	if name := p.person(login); name != "" {
		return name
	}
	return login
}

// renderTransition is the thread reply on a transition.
func (p *ci) renderTransition(word string, t *tracked, cs []check, st string) *sdk.Output {
	who := firstNonEmpty(t.Pusher, t.Actor)
	text := fmt.Sprintf("%s: %s %s at %s", word, t.Repo, t.where(), short(t.SHA))
	if who != "" {
		text += ", pushed by " + p.mention(who)
	}
	if t.Author != "" && t.Author != who {
		text += ", authored by " + p.mention(t.Author)
	}
	text += "."
	var failed []string
	for _, ch := range cs {
		if ch.State == stateFailure && ch.Kind != kindJob {
			failed = append(failed, ch.label())
		}
	}
	if len(failed) > 0 {
		text += " Failing: " + strings.Join(failed, ", ") + "."
	}
	return &sdk.Output{Text: text, Status: outputStatus(st)}
}

// renderNotice is a room's message about t.
func (p *ci) renderNotice(t *tracked, cs []check, st string) *sdk.Output {
	now := p.now()
	o := &sdk.Output{
		Title:  fmt.Sprintf("%s %s @ %s: %s", t.Repo, firstNonEmpty(t.where(), short(t.SHA)), short(t.SHA), stateWord(st)),
		Status: outputStatus(st),
	}
	var lines []string
	if who := firstNonEmpty(t.Pusher, t.Actor); who != "" {
		lines = append(lines, "Pushed by "+p.name(who)+" · "+summary(cs))
	} else {
		lines = append(lines, summary(cs))
	}
	for _, ch := range cs {
		lines = append(lines, ch.line(now))
	}
	keys := make([]string, 0, len(t.Digests))
	for k := range t.Digests {
		if ch, ok := t.Checks[k]; ok && ch.State == stateFailure {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i == 3 {
			lines = append(lines, fmt.Sprintf("…and %d more failures.", len(keys)-3))
			break
		}
		dg := t.Digests[k]
		lines = append(lines, "", dg.text())
		if i == 0 && dg.Log != "" {
			o.Code = dg.Log
		}
	}
	o.Text = strings.Join(lines, "\n")
	o.Buttons = runButtons(t.Repo, cs)
	return o
}

// outputHash is a digest of what a message shows.
func outputHash(o *sdk.Output) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s", o.Title, o.Text, o.Code, o.Status)
	for _, b := range o.Buttons {
		fmt.Fprintf(h, "\x00%s\x00%s\x00%s", b.Label, b.Action, b.Value)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// stepsFor finds a failed job's steps: from its workflow_job event, else
// from the API.
func stepsOf(d *delta, key string) []*github.TaskStep {
	if d == nil {
		return nil
	}
	return d.Steps[key]
}
