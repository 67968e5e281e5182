package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The states of an approval request. Pending is the only one votes change;
// Approved becomes Done when its command is run (ClaimApprovedRun).
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalDenied   = "denied"
	ApprovalExpired  = "expired"
	ApprovalDone     = "done"
)

// ErrApprovalClosed is returned (wrapped) by VoteApproval when the request
// is no longer pending: approved, denied, expired or done.
var ErrApprovalClosed = errors.New("approval request is closed")

// ApprovalClosedError is the ErrApprovalClosed of one request: it says the
// state it is in (expired for a pending one past its expiry).
type ApprovalClosedError struct {
	ID    int64
	State string
}

// Error says which request is closed and how.
func (e *ApprovalClosedError) Error() string {
	return fmt.Sprintf("approval request %d is closed: it is %s", e.ID, e.State)
}

// Is makes an ApprovalClosedError match ErrApprovalClosed.
func (e *ApprovalClosedError) Is(target error) bool { return target == ErrApprovalClosed }

// ErrAlreadyVoted is returned (wrapped) by VoteApproval when the voter
// already approved or denied the request: each vote is single use.
var ErrAlreadyVoted = errors.New("already voted on this approval request")

// ApprovalRequest is a command waiting for approval, or one that was.
type ApprovalRequest struct {
	ID int64
	// Plugin, Command, Args and Text are the exact parsed command: what
	// runs once it is approved.
	Plugin, Command string
	Args            map[string]string
	Text            string
	// Requester is who asked: their person, or the "adapter:userid" of
	// an account of nobody. RequesterAdapter, RequesterUser and
	// RequesterName are the account they asked from, which the command
	// runs as.
	Requester                                      string
	RequesterAdapter, RequesterUser, RequesterName string
	// Adapter, Room, RoomName, ThreadID and MessageID are where it was
	// asked (the command's message), where it runs and answers.
	Adapter, Room, RoomName, ThreadID, MessageID string
	// Direct is true when it was asked in a direct conversation.
	Direct bool
	// Approvers are the roles and people who may approve; Count how many
	// distinct people must.
	Approvers []string
	Count     int
	// Reason says why approval is needed.
	Reason string
	// Confirm: only the requester confirms.
	Confirm bool
	// RequestID is the request id of the command that asked.
	RequestID string
	CreatedAt time.Time
	ExpiresAt time.Time
	// State is one of the Approval* states.
	State     string
	UpdatedAt time.Time
	// Votes are the approvals and denials, in order.
	Votes []ApprovalVote
}

// Approvals returns the votes that approve.
func (r ApprovalRequest) Approvals() []ApprovalVote {
	var out []ApprovalVote
	for _, v := range r.Votes {
		if v.Approve {
			out = append(out, v)
		}
	}
	return out
}

// ApprovalVote is one approval or denial of a request.
type ApprovalVote struct {
	// Voter is who voted, named as ApprovalRequest.Requester is.
	Voter string
	// Adapter, UserID and UserName are the account they voted from.
	Adapter, UserID, UserName string
	// Approve is true for an approval, false for a denial.
	Approve bool
	Reason  string
	At      time.Time
}

const approvalColumns = `id, plugin, command, args, text, requester, requester_adapter, requester_user,
	requester_name, adapter, room, room_name, thread_id, message_id, direct, approvers, count, reason,
	confirm, request_id, created_at, expires_at, state, updated_at`

// CreateApprovalRequest stores r as a pending request and returns its id.
// CreatedAt defaults to now; ExpiresAt is required.
func (s *Store) CreateApprovalRequest(ctx context.Context, r ApprovalRequest) (int64, error) {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now()
	}
	if r.ExpiresAt.IsZero() {
		return 0, errors.New("create approval request: no expiry")
	}
	args, err := json.Marshal(nonNil(r.Args))
	if err != nil {
		return 0, fmt.Errorf("create approval request: encode args: %w", err)
	}
	approvers, err := json.Marshal(append([]string{}, r.Approvers...))
	if err != nil {
		return 0, fmt.Errorf("create approval request: encode approvers: %w", err)
	}
	var id int64
	err = s.queryRow(ctx, s.q(`INSERT INTO approval_requests
		(plugin, command, args, text, requester, requester_adapter, requester_user, requester_name,
		 adapter, room, room_name, thread_id, message_id, direct, approvers, count, reason, confirm,
		 request_id, created_at, expires_at, state, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		r.Plugin, r.Command, string(args), r.Text, r.Requester, r.RequesterAdapter, r.RequesterUser, r.RequesterName,
		r.Adapter, r.Room, r.RoomName, r.ThreadID, r.MessageID, boolInt(r.Direct), string(approvers), max(r.Count, 1),
		r.Reason, boolInt(r.Confirm), r.RequestID, r.CreatedAt.UnixMilli(), r.ExpiresAt.UnixMilli(),
		ApprovalPending, r.CreatedAt.UnixMilli(),
	).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("create approval request: %w", err)
	}
	return id, nil
}

// ApprovalRequestByID returns the request with its votes, or ErrNotFound.
func (s *Store) ApprovalRequestByID(ctx context.Context, id int64) (ApprovalRequest, error) {
	r, err := scanApproval(s.queryRow(ctx, s.q(`SELECT `+approvalColumns+` FROM approval_requests WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return ApprovalRequest{}, fmt.Errorf("approval request %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return ApprovalRequest{}, fmt.Errorf("approval request %d: %w", id, err)
	}
	if r.Votes, err = s.approvalVotes(ctx, s.db, id); err != nil {
		return ApprovalRequest{}, err
	}
	return r, nil
}

// ApprovalRequests returns the requests in state (every state when ""),
// oldest first, with their votes; at most limit (0: 100).
func (s *Store) ApprovalRequests(ctx context.Context, state string, limit int) ([]ApprovalRequest, error) {
	if limit <= 0 {
		limit = 100
	}
	q := `SELECT ` + approvalColumns + ` FROM approval_requests`
	var args []any
	if state != "" {
		q += ` WHERE state = ?`
		args = append(args, state)
	}
	q += ` ORDER BY id LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.q(q), args...) // one text per filter: not for the statement cache
	if err != nil {
		return nil, fmt.Errorf("list approval requests: %w", err)
	}
	list, err := scanAll(rows, scanApproval)
	if err != nil {
		return nil, fmt.Errorf("list approval requests: %w", err)
	}
	for i := range list {
		if list[i].Votes, err = s.approvalVotes(ctx, s.db, list[i].ID); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// VoteApproval records v on the pending request id, in one transaction: a
// denial denies the request, and the approval that reaches the request's
// count approves it. It returns the request as it is after the vote.
//
// It fails with ErrApprovalClosed when the request is not pending or has
// expired by now (the sweeper marks it), with ErrAlreadyVoted when v.Voter
// voted on it before, and with ErrNotFound for no such request. Who may
// vote is the caller's to check (core/approvals).
func (s *Store) VoteApproval(ctx context.Context, id int64, v ApprovalVote) (ApprovalRequest, error) {
	if v.At.IsZero() {
		v.At = s.now()
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		// Votes on one request take turns: this no-op UPDATE locks the
		// row (on SQLite the transaction holds the write lock already),
		// so that two approvals at once both count, and the one that
		// reaches the count sees the other.
		if _, err := s.txExec(ctx, tx, s.q(`UPDATE approval_requests SET updated_at = updated_at WHERE id = ?`), id); err != nil {
			return err
		}
		var state string
		var count int
		var expires int64
		err := s.txQueryRow(ctx, tx, s.q(`SELECT state, count, expires_at FROM approval_requests WHERE id = ?`), id).
			Scan(&state, &count, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if state != ApprovalPending {
			return &ApprovalClosedError{ID: id, State: state}
		}
		if v.At.UnixMilli() >= expires {
			return &ApprovalClosedError{ID: id, State: ApprovalExpired}
		}
		res, err := s.txExec(ctx, tx, s.q(`INSERT INTO approval_votes (request, voter, adapter, user_id, user_name, approve, reason, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request, voter) DO NOTHING`),
			id, v.Voter, v.Adapter, v.UserID, v.UserName, boolInt(v.Approve), v.Reason, v.At.UnixMilli())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrAlreadyVoted
		}
		next := ""
		if !v.Approve {
			next = ApprovalDenied
		} else {
			var approvals int
			if err := s.txQueryRow(ctx, tx, s.q(`SELECT COUNT(*) FROM approval_votes WHERE request = ? AND approve = 1`), id).Scan(&approvals); err != nil {
				return err
			}
			if approvals >= count {
				next = ApprovalApproved
			}
		}
		if next != "" {
			if _, err := s.txExec(ctx, tx, s.q(`UPDATE approval_requests SET state = ?, updated_at = ? WHERE id = ? AND state = ?`),
				next, v.At.UnixMilli(), id, ApprovalPending); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return ApprovalRequest{}, fmt.Errorf("vote on approval request %d: %w", id, err)
	}
	return s.ApprovalRequestByID(ctx, id)
}

// ClaimApprovedRun moves the approved request id to done and reports
// whether this call did: the one caller that gets true runs the command,
// so that two approvals at once, two processes or a restart never run it
// twice.
func (s *Store) ClaimApprovedRun(ctx context.Context, id int64) (bool, error) {
	res, err := s.exec(ctx, s.q(`UPDATE approval_requests SET state = ?, updated_at = ? WHERE id = ? AND state = ?`),
		ApprovalDone, s.now().UnixMilli(), id, ApprovalApproved)
	if err != nil {
		return false, fmt.Errorf("claim the run of approval request %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim the run of approval request %d: %w", id, err)
	}
	return n == 1, nil
}

// ExpireApprovalRequests marks every pending request whose expiry is at or
// before now as expired and returns them (as they were before, with their
// votes, State set to expired). A request another caller expired or voted
// on meanwhile is left out.
func (s *Store) ExpireApprovalRequests(ctx context.Context, now time.Time) ([]ApprovalRequest, error) {
	rows, err := s.query(ctx, s.q(`SELECT `+approvalColumns+` FROM approval_requests
		WHERE state = ? AND expires_at <= ? ORDER BY id`), ApprovalPending, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("expire approval requests: %w", err)
	}
	due, err := scanAll(rows, scanApproval)
	if err != nil {
		return nil, fmt.Errorf("expire approval requests: %w", err)
	}
	var out []ApprovalRequest
	for _, r := range due {
		res, err := s.exec(ctx, s.q(`UPDATE approval_requests SET state = ?, updated_at = ? WHERE id = ? AND state = ?`),
			ApprovalExpired, now.UnixMilli(), r.ID, ApprovalPending)
		if err != nil {
			return out, fmt.Errorf("expire approval request %d: %w", r.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			continue
		}
		if r.Votes, err = s.approvalVotes(ctx, s.db, r.ID); err != nil {
			return out, err
		}
		r.State, r.UpdatedAt = ApprovalExpired, now
		out = append(out, r)
	}
	return out, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Store) approvalVotes(ctx context.Context, q querier, id int64) ([]ApprovalVote, error) {
	rows, err := q.QueryContext(ctx, s.q(`SELECT voter, adapter, user_id, user_name, approve, reason, at
		FROM approval_votes WHERE request = ? ORDER BY at, voter`), id)
	if err != nil {
		return nil, fmt.Errorf("votes of approval request %d: %w", id, err)
	}
	votes, err := scanAll(rows, func(sc scanner) (ApprovalVote, error) {
		var v ApprovalVote
		var approve int
		var at int64
		err := sc.Scan(&v.Voter, &v.Adapter, &v.UserID, &v.UserName, &approve, &v.Reason, &at)
		v.Approve, v.At = approve != 0, time.UnixMilli(at)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("votes of approval request %d: %w", id, err)
	}
	return votes, nil
}

func scanApproval(sc scanner) (ApprovalRequest, error) {
	var r ApprovalRequest
	var args, approvers string
	var direct, confirm int
	var created, expires, updated int64
	err := sc.Scan(&r.ID, &r.Plugin, &r.Command, &args, &r.Text, &r.Requester, &r.RequesterAdapter, &r.RequesterUser,
		&r.RequesterName, &r.Adapter, &r.Room, &r.RoomName, &r.ThreadID, &r.MessageID, &direct, &approvers, &r.Count,
		&r.Reason, &confirm, &r.RequestID, &created, &expires, &r.State, &updated)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(args), &r.Args); err != nil {
		return r, fmt.Errorf("approval request %d: decode args: %w", r.ID, err)
	}
	if err := json.NewDecoder(strings.NewReader(approvers)).Decode(&r.Approvers); err != nil {
		return r, fmt.Errorf("approval request %d: decode approvers: %w", r.ID, err)
	}
	r.Direct, r.Confirm = direct != 0, confirm != 0
	r.CreatedAt, r.ExpiresAt, r.UpdatedAt = time.UnixMilli(created), time.UnixMilli(expires), time.UnixMilli(updated)
	return r, nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
