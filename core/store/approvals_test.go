package store

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
)

func pendingRequest(count int) ApprovalRequest {
	return ApprovalRequest{
		Plugin: "deploy", Command: "deploy", Args: map[string]string{"app": "demo", "env": "production"},
		Text: "deploy demo to production", Requester: "alice", RequesterAdapter: "shell", RequesterUser: "alice",
		Adapter: "shell", Room: "general", MessageID: "m1", Approvers: []string{"release-managers"}, Count: count,
		Reason: "production needs approval", RequestID: "r-1", ExpiresAt: base.Add(30 * time.Minute),
	}
}

func TestAnApprovalRequestKeepsTheExactCommand(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	want := pendingRequest(1)
	id, err := s.CreateApprovalRequest(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ApprovalRequestByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want.ID, want.State, want.CreatedAt, want.UpdatedAt = id, ApprovalPending, base, base
	got.CreatedAt, got.ExpiresAt, got.UpdatedAt = got.CreatedAt.UTC(), got.ExpiresAt.UTC(), got.UpdatedAt.UTC()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stored\n %+v\nread back\n %+v", want, got)
	}
	if _, err := s.ApprovalRequestByID(ctx, id+1); !errors.Is(err, ErrNotFound) {
		t.Errorf("ApprovalRequestByID of no request = %v, want ErrNotFound", err)
	}
}

func TestVotesApproveAtTheCountAndEachVoterVotesOnce(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	id, _ := s.CreateApprovalRequest(ctx, pendingRequest(2))
	r, err := s.VoteApproval(ctx, id, ApprovalVote{Voter: "bob", Adapter: "slack", UserID: "UBOB", Approve: true})
	if err != nil || r.State != ApprovalPending {
		t.Fatalf("first of two approvals: state %q, %v; want pending", r.State, err)
	}
	if _, err := s.VoteApproval(ctx, id, ApprovalVote{Voter: "bob", Adapter: "shell", UserID: "bob", Approve: true}); !errors.Is(err, ErrAlreadyVoted) {
		t.Fatalf("bob approving again from another adapter: %v, want ErrAlreadyVoted", err)
	}
	r, err = s.VoteApproval(ctx, id, ApprovalVote{Voter: "carol", Approve: true})
	if err != nil || r.State != ApprovalApproved || len(r.Approvals()) != 2 {
		t.Fatalf("second approval: %+v, %v; want approved by two", r, err)
	}
	if _, err := s.VoteApproval(ctx, id, ApprovalVote{Voter: "dave", Reason: "too late"}); !errors.Is(err, ErrApprovalClosed) {
		t.Fatalf("a denial after approval: %v, want ErrApprovalClosed", err)
	}
}

func TestADenialDeniesAndAnExpiredRequestTakesNoVotes(t *testing.T) {
	s, clock := newStore(t)
	ctx := context.Background()
	denied, _ := s.CreateApprovalRequest(ctx, pendingRequest(1))
	r, err := s.VoteApproval(ctx, denied, ApprovalVote{Voter: "bob", Reason: "not on a Friday"})
	if err != nil || r.State != ApprovalDenied || r.Votes[0].Reason != "not on a Friday" {
		t.Fatalf("denial: %+v, %v; want denied with its reason", r, err)
	}
	old, _ := s.CreateApprovalRequest(ctx, pendingRequest(1))
	clock.set(base.Add(31 * time.Minute))
	if _, err := s.VoteApproval(ctx, old, ApprovalVote{Voter: "bob", Approve: true}); !errors.Is(err, ErrApprovalClosed) {
		t.Fatalf("approving an expired request: %v, want ErrApprovalClosed", err)
	}
	expired, err := s.ExpireApprovalRequests(ctx, clock.now())
	if err != nil || len(expired) != 1 || expired[0].ID != old {
		t.Fatalf("ExpireApprovalRequests = %+v, %v; want request %d alone", expired, err, old)
	}
	if again, _ := s.ExpireApprovalRequests(ctx, clock.now()); len(again) != 0 {
		t.Errorf("a request expired twice: %+v", again)
	}
	if r, _ := s.ApprovalRequestByID(ctx, old); r.State != ApprovalExpired {
		t.Errorf("state after expiry = %q, want expired", r.State)
	}
}

func TestAnApprovedRunIsClaimedOnceAcrossStoresOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chima.db")
	a, b := openAt(t, path), openAt(t, path)
	ctx := context.Background()
	req := pendingRequest(1)
	req.ExpiresAt = time.Now().Add(time.Hour)
	id, err := a.CreateApprovalRequest(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := a.ClaimApprovedRun(ctx, id); ok || err != nil {
		t.Fatalf("claiming a pending request = %v, %v; want false", ok, err)
	}
	if _, err := b.VoteApproval(ctx, id, ApprovalVote{Voter: "bob", Approve: true}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wins := make(chan bool, 8)
	for i := range 8 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.ClaimApprovedRun(ctx, id)
			if err != nil {
				t.Errorf("ClaimApprovedRun: %v", err)
			}
			wins <- ok
		}()
	}
	wg.Wait()
	close(wins)
	n := 0
	for ok := range wins {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("run claimed %d times, want once", n)
	}
	if list, _ := a.ApprovalRequests(ctx, ApprovalDone, 0); len(list) != 1 {
		t.Errorf("done requests = %+v, want the one", list)
	}
}

func TestApprovalsAtOnceAllCountAcrossStoresOnOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chima.db")
	a, b := openAt(t, path), openAt(t, path)
	ctx := context.Background()
	req := pendingRequest(4)
	req.ExpiresAt = time.Now().Add(time.Hour)
	id, err := a.CreateApprovalRequest(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, voter := range []string{"bob", "carol", "dave", "erin"} {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.VoteApproval(ctx, id, ApprovalVote{Voter: voter, Approve: true}); err != nil {
				t.Errorf("VoteApproval(%s): %v", voter, err)
			}
		}()
	}
	wg.Wait()
	r, err := a.ApprovalRequestByID(ctx, id)
	if err != nil || r.State != ApprovalApproved || len(r.Approvals()) != 4 {
		t.Fatalf("after four approvals at once of four needed: %+v, %v; want approved", r, err)
	}
}
