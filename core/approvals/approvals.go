// Package approvals is the lifecycle of approval requests: a command that a
// policy (or its plugin) says must be approved is stored as a request, with
// the exact parsed command, who asked and where; approvers approve or deny
// it; it expires; and once approved it is claimed, once, to run.
//
// The rules are kept here, whatever chat the votes come from:
//
//   - nobody approves their own request: the requester is a person (config
//     people:), so alice on Slack cannot approve what alice asked on
//     Mattermost;
//   - only the request's approvers (people named, or holders of the roles
//     named) approve;
//   - each person's vote counts once;
//   - a request expires at its TTL, and takes no votes after;
//   - a confirmation (a plugin's NeedConfirmation) is the requester's alone.
//
// Requests live in the store, so they outlive a restart, and the move from
// approved to done (Claim) is one atomic update: the command runs exactly
// once however many approvals arrive at once.
package approvals

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/chimaops/chima/core/store"
)

// DefaultTTL is how long a request stays open when nobody says.
const DefaultTTL = 30 * time.Minute

// Errors of votes, for the person who voted. Store errors for requests that
// are closed, already voted on or missing are wrapped too:
// store.ErrApprovalClosed, store.ErrAlreadyVoted, store.ErrNotFound.
var (
	// ErrSelfApproval: the requester cannot approve their own request.
	ErrSelfApproval = errors.New("you cannot approve your own request")
	// ErrNotApprover: the voter is none of the request's approvers.
	ErrNotApprover = errors.New("you are not one of its approvers")
	// ErrNotRequester: only the requester confirms a confirmation.
	ErrNotRequester = errors.New("only the person who asked can confirm it")
	// ErrUnknownApprover: an approver is no role or person.
	ErrUnknownApprover = errors.New("no role or person of that name")
	// ErrNoApprovers: a request that is no confirmation needs approvers.
	ErrNoApprovers = errors.New("no approvers")
)

// Identities says who accounts are, from the policy's people and roles.
type Identities interface {
	// Identity is the account's person, or "adapter:userid".
	Identity(adapter, userID string) string
	// IsApprover reports whether the account is one of approvers.
	IsApprover(approvers []string, adapter, userID string) bool
	// Known reports whether name is a role or a person.
	Known(name string) bool
}

// Voter is the account that votes.
type Voter struct {
	Adapter, UserID, UserName string
}

// Manager runs the lifecycle of approval requests on a store.
type Manager struct {
	store *store.Store
	ids   Identities
	now   func() time.Time
}

// New returns a Manager on st, naming people through ids. now is the clock
// (nil: time.Now).
func New(st *store.Store, ids Identities, now func() time.Time) *Manager {
	if now == nil {
		now = time.Now
	}
	return &Manager{store: st, ids: ids, now: now}
}

// Identity names the account as requests name requesters and voters.
func (m *Manager) Identity(adapter, userID string) string { return m.ids.Identity(adapter, userID) }

// Request stores r as a pending request that expires after ttl (0:
// DefaultTTL) and returns it as stored. The requester is named from
// r.RequesterAdapter and RequesterUser. Approvers must be roles or people,
// and there must be some unless r.Confirm.
func (m *Manager) Request(ctx context.Context, r store.ApprovalRequest, ttl time.Duration) (store.ApprovalRequest, error) {
	if !r.Confirm && len(r.Approvers) == 0 {
		return store.ApprovalRequest{}, fmt.Errorf("request approval of %s: %w", r.Command, ErrNoApprovers)
	}
	for _, a := range r.Approvers {
		if !m.ids.Known(a) {
			return store.ApprovalRequest{}, fmt.Errorf("request approval of %s: approver %q: %w", r.Command, a, ErrUnknownApprover)
		}
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	r.Requester = m.ids.Identity(r.RequesterAdapter, r.RequesterUser)
	r.Count = max(r.Count, 1)
	if r.Confirm {
		r.Approvers, r.Count = nil, 1
	}
	r.CreatedAt = m.now()
	r.ExpiresAt = r.CreatedAt.Add(ttl)
	id, err := m.store.CreateApprovalRequest(ctx, r)
	if err != nil {
		return store.ApprovalRequest{}, err
	}
	return m.store.ApprovalRequestByID(ctx, id)
}

// Get returns the request id.
func (m *Manager) Get(ctx context.Context, id int64) (store.ApprovalRequest, error) {
	return m.store.ApprovalRequestByID(ctx, id)
}

// Approve records v's approval of request id, or their confirmation of
// their own, and returns the request after it: State approved once the
// count is reached.
func (m *Manager) Approve(ctx context.Context, id int64, v Voter, reason string) (store.ApprovalRequest, error) {
	return m.vote(ctx, id, v, true, reason)
}

// Deny records v's denial of request id, which ends it. Its approvers may
// deny it, and its requester may withdraw it.
func (m *Manager) Deny(ctx context.Context, id int64, v Voter, reason string) (store.ApprovalRequest, error) {
	return m.vote(ctx, id, v, false, reason)
}

func (m *Manager) vote(ctx context.Context, id int64, v Voter, approve bool, reason string) (store.ApprovalRequest, error) {
	r, err := m.store.ApprovalRequestByID(ctx, id)
	if err != nil {
		return store.ApprovalRequest{}, err
	}
	who := m.ids.Identity(v.Adapter, v.UserID)
	self := who == r.Requester
	switch {
	case r.State != store.ApprovalPending:
		return r, &store.ApprovalClosedError{ID: id, State: r.State}
	case !m.now().Before(r.ExpiresAt):
		return r, &store.ApprovalClosedError{ID: id, State: store.ApprovalExpired}
	case r.Confirm && !self:
		return r, fmt.Errorf("approval request %d: %w", id, ErrNotRequester)
	case r.Confirm:
	case approve && self:
		return r, fmt.Errorf("approval request %d: %w", id, ErrSelfApproval)
	case !self && !m.ids.IsApprover(r.Approvers, v.Adapter, v.UserID):
		return r, fmt.Errorf("approval request %d: %w", id, ErrNotApprover)
	}
	return m.store.VoteApproval(ctx, id, store.ApprovalVote{
		Voter: who, Adapter: v.Adapter, UserID: v.UserID, UserName: v.UserName,
		Approve: approve, Reason: reason, At: m.now(),
	})
}

// Claim moves the approved request id to done, and reports whether this
// call did: only then may the caller run its command.
func (m *Manager) Claim(ctx context.Context, id int64) (bool, error) {
	return m.store.ClaimApprovedRun(ctx, id)
}

// Pending returns the open requests, oldest first.
func (m *Manager) Pending(ctx context.Context) ([]store.ApprovalRequest, error) {
	return m.store.ApprovalRequests(ctx, store.ApprovalPending, 0)
}

// Approved returns the requests approved whose command was not claimed
// (the bot stopped between the approval and the run): Run claims them at
// start.
func (m *Manager) Approved(ctx context.Context) ([]store.ApprovalRequest, error) {
	return m.store.ApprovalRequests(ctx, store.ApprovalApproved, 0)
}

// Expire marks the pending requests past their TTL expired and returns
// them.
func (m *Manager) Expire(ctx context.Context) ([]store.ApprovalRequest, error) {
	return m.store.ExpireApprovalRequests(ctx, m.now())
}

// Sweep runs Expire every interval until ctx ends, handing each expired
// request to expired (to tell its room).
func (m *Manager) Sweep(ctx context.Context, every time.Duration, log *slog.Logger, expired func(context.Context, store.ApprovalRequest)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		list, err := m.Expire(ctx)
		if err != nil && ctx.Err() == nil {
			log.Error("expire approval requests", "error", err)
		}
		for _, r := range list {
			expired(ctx, r)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refusal says in a sentence, for chat, why a vote was not taken; "" for
// an error that is not the voter's (the store failed).
func Refusal(err error) string {
	var closed *store.ApprovalClosedError
	switch {
	case errors.Is(err, ErrSelfApproval):
		return "You cannot approve your own request."
	case errors.Is(err, ErrNotApprover):
		return "You are not one of its approvers."
	case errors.Is(err, ErrNotRequester):
		return "Only the person who asked can confirm it."
	case errors.Is(err, store.ErrAlreadyVoted):
		return "You already voted on it; each person's vote counts once."
	case errors.Is(err, store.ErrNotFound):
		return "There is no such approval request."
	case errors.As(err, &closed):
		return "It is no longer open: it " + map[string]string{
			store.ApprovalApproved: "was approved", store.ApprovalDenied: "was denied",
			store.ApprovalExpired: "expired", store.ApprovalDone: "was approved and has run",
		}[closed.State] + "."
	}
	return ""
}
