package approvals

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/config"
	"github.com/chimaops/chima/core/policy"
	"github.com/chimaops/chima/core/store"
)

// ids: alice speaks from Slack and Mattermost and is a release manager
// too; bob is one on the console and Slack; carol is a deployer only.
var ids = policy.NewWithPeople(
	map[string][]string{
		"alice": {"slack:UALICE", "mattermost:alice1"},
		"bob":   {"shell:bob", "slack:UBOB"},
		"carol": {"shell:carol"},
	},
	map[string]config.Role{
		"release-managers": {People: []string{"alice", "bob"}},
		"deployer":         {People: []string{"alice", "bob", "carol"}, Permissions: []string{"deploy"}},
	}, nil)

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

func openStore(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newManager(t *testing.T) (*Manager, *clock, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chima.db")
	c := &clock{t: time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)}
	return New(openStore(t, path), ids, c.now), c, path
}

// alicesDeploy is alice asking from Mattermost for a production deploy.
func alicesDeploy(count int) store.ApprovalRequest {
	return store.ApprovalRequest{
		Plugin: "deploy", Command: "deploy", Args: map[string]string{"app": "demo", "env": "production"},
		Text: "deploy demo to production", RequesterAdapter: "mattermost", RequesterUser: "alice1",
		Adapter: "mattermost", Room: "town-square", Approvers: []string{"release-managers"}, Count: count,
	}
}

func TestVotesFollowTheRules(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		confirm bool
		voter   Voter
		approve bool
		want    error  // nil: the vote is taken
		state   string // after a vote taken
	}{
		{"an approver on another adapter approves", false, Voter{Adapter: "slack", UserID: "UBOB"}, true, nil, store.ApprovalApproved},
		{"the requester cannot approve from the adapter she asked on", false, Voter{Adapter: "mattermost", UserID: "alice1"}, true, ErrSelfApproval, ""},
		{"nor from another of her accounts", false, Voter{Adapter: "slack", UserID: "UALICE"}, true, ErrSelfApproval, ""},
		{"someone who is no approver cannot approve", false, Voter{Adapter: "shell", UserID: "carol"}, true, ErrNotApprover, ""},
		{"nor deny", false, Voter{Adapter: "shell", UserID: "carol"}, false, ErrNotApprover, ""},
		{"an approver denies", false, Voter{Adapter: "shell", UserID: "bob"}, false, nil, store.ApprovalDenied},
		{"the requester withdraws her request", false, Voter{Adapter: "slack", UserID: "UALICE"}, false, nil, store.ApprovalDenied},
		{"a confirmation is the requester's, from any of her accounts", true, Voter{Adapter: "slack", UserID: "UALICE"}, true, nil, store.ApprovalApproved},
		{"an approver cannot confirm it for her", true, Voter{Adapter: "shell", UserID: "bob"}, true, ErrNotRequester, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, _ := newManager(t)
			req := alicesDeploy(1)
			req.Confirm = tt.confirm
			r, err := m.Request(ctx, req, 0)
			if err != nil {
				t.Fatal(err)
			}
			if r.Requester != "alice" {
				t.Fatalf("requester = %q, want the person alice", r.Requester)
			}
			vote := m.Deny
			if tt.approve {
				vote = m.Approve
			}
			got, err := vote(ctx, r.ID, tt.voter, "because")
			if !errors.Is(err, tt.want) {
				t.Fatalf("vote: %v, want %v", err, tt.want)
			}
			if tt.want == nil && got.State != tt.state {
				t.Errorf("state after the vote = %q, want %q", got.State, tt.state)
			}
			if tt.want != nil && Refusal(err) == "" {
				t.Errorf("no sentence for the refusal %v", err)
			}
		})
	}
}

func TestEachPersonsApprovalCountsOnce(t *testing.T) {
	ctx := context.Background()
	m, _, _ := newManager(t)
	r, _ := m.Request(ctx, alicesDeploy(2), 0)
	if r, err := m.Approve(ctx, r.ID, Voter{Adapter: "shell", UserID: "bob"}, ""); err != nil || r.State != store.ApprovalPending {
		t.Fatalf("bob's approval: %v, state %q; want pending, one of two", err, r.State)
	}
	_, err := m.Approve(ctx, r.ID, Voter{Adapter: "slack", UserID: "UBOB"}, "")
	if !errors.Is(err, store.ErrAlreadyVoted) {
		t.Fatalf("bob approving again from Slack: %v, want ErrAlreadyVoted", err)
	}
	if ok, _ := m.Claim(ctx, r.ID); ok {
		t.Fatal("a request approved once of twice was claimed to run")
	}
}

func TestARequestExpires(t *testing.T) {
	ctx := context.Background()
	m, c, _ := newManager(t)
	r, _ := m.Request(ctx, alicesDeploy(1), 10*time.Minute)
	c.add(9 * time.Minute)
	if list, _ := m.Expire(ctx); len(list) != 0 {
		t.Fatalf("expired before its ttl: %+v", list)
	}
	c.add(time.Minute)
	_, err := m.Approve(ctx, r.ID, Voter{Adapter: "shell", UserID: "bob"}, "")
	var closed *store.ApprovalClosedError
	if !errors.As(err, &closed) || closed.State != store.ApprovalExpired {
		t.Fatalf("approving at its expiry: %v, want closed as expired", err)
	}
	list, err := m.Expire(ctx)
	if err != nil || len(list) != 1 || list[0].ID != r.ID || list[0].State != store.ApprovalExpired {
		t.Fatalf("Expire = %+v, %v; want the request, expired", list, err)
	}
	if p, _ := m.Pending(ctx); len(p) != 0 {
		t.Errorf("still pending after expiry: %+v", p)
	}
}

func TestARequestOutlivesARestart(t *testing.T) {
	ctx := context.Background()
	m, c, path := newManager(t)
	r, _ := m.Request(ctx, alicesDeploy(1), 0)
	// Another process on the same file: the bot after a restart.
	after := New(openStore(t, path), ids, c.now)
	got, err := after.Approve(ctx, r.ID, Voter{Adapter: "slack", UserID: "UBOB"}, "")
	if err != nil || got.State != store.ApprovalApproved || got.Text != r.Text || got.Args["env"] != "production" {
		t.Fatalf("approval after restart: %+v, %v; want the same command, approved", got, err)
	}
	if ok, err := after.Claim(ctx, r.ID); !ok || err != nil {
		t.Fatalf("Claim = %v, %v; want this call to run it", ok, err)
	}
	if ok, _ := m.Claim(ctx, r.ID); ok {
		t.Error("the run was claimed twice")
	}
}

func TestARequestNeedsKnownApprovers(t *testing.T) {
	ctx := context.Background()
	m, _, _ := newManager(t)
	req := alicesDeploy(1)
	req.Approvers = []string{"release-managers", "nobody"}
	if _, err := m.Request(ctx, req, 0); !errors.Is(err, ErrUnknownApprover) {
		t.Errorf("Request with an unknown approver: %v, want ErrUnknownApprover", err)
	}
	req.Approvers = nil
	if _, err := m.Request(ctx, req, 0); !errors.Is(err, ErrNoApprovers) {
		t.Errorf("Request without approvers: %v, want ErrNoApprovers", err)
	}
}
