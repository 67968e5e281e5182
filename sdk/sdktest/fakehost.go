package sdktest

import (
	"context"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

// FakeHost is an in-memory Host service: it records posts and enqueued jobs
// and keeps locks and key-value state in maps.
type FakeHost struct {
	pluginv1.UnimplementedHostServer

	mu      sync.Mutex
	posts   []*pluginv1.PostRequest
	updates []*pluginv1.UpdateRequest
	jobs    []*fakeJob
	locks   map[string]*pluginv1.LockInfo
	kv      map[string][]byte
	logs    map[string][]byte
	nextID  int64
	runs    []*pluginv1.RunCommandRequest
	// RunResult, when set, answers RunCommand; by default every command
	// runs with outcome sdk.CommandOK.
	RunResult func(CommandRun) sdk.RunResult
	// manifest is the plugin's, set once the harness has it: buttons must
	// name its actions and jobs its kinds, as the host checks. Nil accepts
	// every action and kind.
	manifest *pluginv1.Manifest
}

type fakeJob struct {
	info *pluginv1.JobInfo
	req  *pluginv1.EnqueueRequest
	// stop cancels the RunJob call of a running job (Harness.RunEnqueued).
	stop context.CancelFunc
}

// NewFakeHost returns an empty FakeHost.
func NewFakeHost() *FakeHost {
	return &FakeHost{locks: map[string]*pluginv1.LockInfo{}, kv: map[string][]byte{}, logs: map[string][]byte{}}
}

// Runs returns the commands the plugin ran with RunCommand.
func (f *FakeHost) Runs() []CommandRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]CommandRun, 0, len(f.runs))
	for _, r := range f.runs {
		out = append(out, commandRunFromProto(r))
	}
	return out
}

// RunCommand records the command and answers it with RunResult.
func (f *FakeHost) RunCommand(_ context.Context, r *pluginv1.RunCommandRequest) (*pluginv1.RunCommandResponse, error) {
	f.mu.Lock()
	f.runs = append(f.runs, r)
	answer := f.RunResult
	id := f.id()
	f.mu.Unlock()
	if strings.TrimSpace(r.GetText()) == "" {
		return nil, status.Error(codes.InvalidArgument, "run command: the command is empty")
	}
	if r.GetRoom().GetRoom() == "" {
		return nil, status.Error(codes.InvalidArgument, "run command: name the room it runs in")
	}
	if answer != nil {
		return runResultToProto(answer(commandRunFromProto(r))), nil
	}
	return runResultToProto(sdk.RunResult{RequestID: "run-" + strconv.FormatInt(id, 10), Outcome: sdk.CommandOK}), nil
}

// KVCompareAndSwap writes a key only over the value expected, as the host
// does.
func (f *FakeHost) KVCompareAndSwap(_ context.Context, r *pluginv1.KVCompareAndSwapRequest) (*pluginv1.KVCompareAndSwapResponse, error) {
	if err := checkKey("kv compare-and-swap", r.GetKey()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, found := f.kv[r.GetKey()]
	if (r.GetOldAbsent() && !found) || (!r.GetOldAbsent() && found && string(cur) == string(r.GetOld())) {
		v := append([]byte{}, r.GetValue()...)
		f.kv[r.GetKey()] = v
		return &pluginv1.KVCompareAndSwapResponse{Swapped: true, Current: v, Found: true}, nil
	}
	return &pluginv1.KVCompareAndSwapResponse{Current: cur, Found: found}, nil
}

// KVTransaction makes the writes only if every check holds, as the host
// does: all or nothing, under the fake's one lock.
func (f *FakeHost) KVTransaction(_ context.Context, r *pluginv1.KVTransactionRequest) (*pluginv1.KVTransactionResponse, error) {
	if n := len(r.GetChecks()) + len(r.GetWrites()); n > wire.MaxKVTransactionOps {
		return nil, status.Errorf(codes.InvalidArgument, "kv transaction: %d checks and writes, more than the %d one transaction may hold", n, wire.MaxKVTransactionOps)
	}
	for _, c := range r.GetChecks() {
		if err := checkKey("kv transaction: check", c.GetKey()); err != nil {
			return nil, err
		}
	}
	for _, w := range r.GetWrites() {
		if err := checkKey("kv transaction: write", w.GetKey()); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range r.GetChecks() {
		if cur, found := f.kv[c.GetKey()]; !found || string(cur) != string(c.GetValue()) {
			return &pluginv1.KVTransactionResponse{FailedKey: c.GetKey(), Current: cur, Found: found}, nil
		}
	}
	for _, w := range r.GetWrites() {
		if w.GetDelete() {
			delete(f.kv, w.GetKey())
		} else {
			f.kv[w.GetKey()] = append([]byte{}, w.GetValue()...)
		}
	}
	return &pluginv1.KVTransactionResponse{Committed: true}, nil
}

// KVIncrement adds to a decimal counter, as the host does.
func (f *FakeHost) KVIncrement(_ context.Context, r *pluginv1.KVIncrementRequest) (*pluginv1.KVIncrementResponse, error) {
	if err := checkKey("kv increment", r.GetKey()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	if cur, ok := f.kv[r.GetKey()]; ok {
		v, err := strconv.ParseInt(strings.TrimSpace(string(cur)), 10, 64)
		if err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "kv increment: the value %.20q is not a decimal counter", cur)
		}
		n = v
	}
	n += r.GetDelta()
	f.kv[r.GetKey()] = []byte(strconv.FormatInt(n, 10))
	return &pluginv1.KVIncrementResponse{Value: n}, nil
}

// Posts returns the messages the plugin posted with Post.
func (f *FakeHost) Posts() []Post {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Post, 0, len(f.posts))
	for _, p := range f.posts {
		out = append(out, Post{Target: refFromProto(p.GetTarget()), Output: outputFromProto(p.GetOutput()), RequestID: p.GetRequestId()})
	}
	return out
}

// Updates returns the message updates the plugin made.
func (f *FakeHost) Updates() []Update {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Update, 0, len(f.updates))
	for _, u := range f.updates {
		out = append(out, Update{Message: refFromProto(u.GetMessage()), Output: outputFromProto(u.GetOutput())})
	}
	return out
}

// Enqueued returns every job enqueued so far.
func (f *FakeHost) Enqueued() []EnqueuedJob {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]EnqueuedJob, 0, len(f.jobs))
	for _, j := range f.jobs {
		out = append(out, enqueuedFromProto(j.info.GetId(), j.req))
	}
	return out
}

// takeQueued marks the queued jobs running and returns them, oldest first.
func (f *FakeHost) takeQueued() []*pluginv1.JobInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*pluginv1.JobInfo
	for _, j := range f.jobs {
		if j.info.State == "queued" {
			setState(j.info, "running")
			out = append(out, j.info)
		}
	}
	return out
}

// starting notes that job id runs with its call cancelled by stop; it
// says false when the job was cancelled meanwhile (it must not run).
func (f *FakeHost) starting(id int64, stop context.CancelFunc) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range f.jobs {
		if j.info.Id == id {
			if j.info.State == "cancelled" {
				return false
			}
			j.stop = stop
		}
	}
	return true
}

func (f *FakeHost) finish(id int64, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range f.jobs {
		if j.info.Id == id {
			j.stop = nil
			if j.info.State == "cancelled" {
				continue // cancelled by CancelJob: it stays so, as on the host
			}
			setState(j.info, state)
		}
	}
}

// origin is the request that enqueued job id.
func (f *FakeHost) origin(id int64) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range f.jobs {
		if j.info.Id == id {
			return j.req.GetOriginRequestId()
		}
	}
	return ""
}

// Log returns a named log the plugin wrote with AppendLog.
func (f *FakeHost) Log(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.logs[name])
}

// KVValue returns a stored value, for assertions.
func (f *FakeHost) KVValue(key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.kv[key]
	return v, ok
}

func (f *FakeHost) id() int64 { f.nextID++; return f.nextID }

// Post records the message and returns a reference to it.
func (f *FakeHost) Post(_ context.Context, r *pluginv1.PostRequest) (*pluginv1.PostResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkButtons(outputFromProto(r.GetOutput())); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "post to %s: %v", r.GetTarget().GetRoom(), err)
	}
	f.posts = append(f.posts, r)
	ref := &pluginv1.MessageRef{
		Adapter: r.GetTarget().GetAdapter(), Room: r.GetTarget().GetRoom(),
		ThreadId: r.GetTarget().GetThreadId(), MessageId: "p" + itoa(int(f.id())),
	}
	return &pluginv1.PostResponse{Message: ref}, nil
}

// Update records the update.
func (f *FakeHost) Update(_ context.Context, r *pluginv1.UpdateRequest) (*pluginv1.UpdateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.checkButtons(outputFromProto(r.GetOutput())); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "update message: %v", err)
	}
	f.updates = append(f.updates, r)
	return &pluginv1.UpdateResponse{}, nil
}

// checkButtons refuses the buttons the host would refuse. Called with f.mu
// held.
func (f *FakeHost) checkButtons(o *sdk.Output) error {
	declared := func(string) bool { return true }
	if f.manifest != nil {
		declared = func(action string) bool {
			return slices.ContainsFunc(f.manifest.GetActions(), func(a *pluginv1.ActionSpec) bool { return a.GetName() == action })
		}
	}
	return checkButtons(o, declared)
}

// checkKey refuses an empty key, as the host does.
func checkKey(op, key string) error {
	if key == "" {
		return status.Errorf(codes.InvalidArgument, "%s: the key is empty", op)
	}
	return nil
}

// setState moves a job to state. Called with f.mu held.
func setState(j *pluginv1.JobInfo, state string) {
	// Both the name and the enum (protocol minor 8), as the host sets them.
	j.State, j.StateCode = state, wire.JobStateCode(state)
	switch state {
	case "queued":
	case "running":
		j.StartedUnix = time.Now().Unix()
	default:
		j.FinishedUnix = time.Now().Unix()
	}
}

// Enqueue records the job as queued. Its kind must be one the plugin
// declares, as the host checks.
func (f *FakeHost) Enqueue(_ context.Context, r *pluginv1.EnqueueRequest) (*pluginv1.EnqueueResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.GetKind() == "" || (f.manifest != nil && !slices.Contains(f.manifest.GetJobKinds(), r.GetKind())) {
		return nil, status.Errorf(codes.InvalidArgument, "plugin %s did not declare job kind %q", f.manifest.GetName(), r.GetKind())
	}
	id := f.id()
	info := &pluginv1.JobInfo{
		Id: id, Kind: r.GetKind(), QueueKey: r.GetQueueKey(),
		Payload: r.GetPayload(), CreatedUnix: time.Now().Unix(), Notify: r.GetNotify(),
	}
	setState(info, "queued")
	f.jobs = append(f.jobs, &fakeJob{req: r, info: info})
	return &pluginv1.EnqueueResponse{JobId: id}, nil
}

// CancelJob cancels a queued or running job: it ends cancelled, as the
// host's does once its RunJob call returns. A job that Harness.RunEnqueued
// is running has its RunJob call cancelled, as the host cancels it: the
// plugin's handler sees its context end, and what it streams after that is
// lost (only what it posts with Context.Detached reaches the room).
func (f *FakeHost) CancelJob(_ context.Context, r *pluginv1.CancelJobRequest) (*pluginv1.CancelJobResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range f.jobs {
		if j.info.Id == r.GetJobId() {
			ok := j.info.State == "queued" || j.info.State == "running"
			if ok {
				setState(j.info, "cancelled")
				if j.stop != nil {
					j.stop()
				}
			}
			return &pluginv1.CancelJobResponse{Cancelled: ok, Job: j.info}, nil
		}
	}
	return &pluginv1.CancelJobResponse{}, nil
}

// Jobs lists jobs newest first, filtered like the real host.
func (f *FakeHost) Jobs(_ context.Context, r *pluginv1.JobsRequest) (*pluginv1.JobsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &pluginv1.JobsResponse{}
	for i := len(f.jobs) - 1; i >= 0; i-- {
		j := f.jobs[i].info
		if (r.GetKind() != "" && j.Kind != r.GetKind()) || (r.GetQueueKey() != "" && j.QueueKey != r.GetQueueKey()) {
			continue
		}
		if (len(r.GetStates()) > 0 || len(r.GetStateCodes()) > 0) &&
			!slices.Contains(r.GetStates(), j.State) && !slices.Contains(r.GetStateCodes(), j.StateCode) {
			continue
		}
		resp.Jobs = append(resp.Jobs, j)
		if r.GetLimit() > 0 && len(resp.Jobs) >= int(r.GetLimit()) {
			break
		}
	}
	return resp, nil
}

// AppendLog appends to a named log; a log is found once something was
// written to it.
func (f *FakeHost) AppendLog(_ context.Context, r *pluginv1.AppendLogRequest) (*pluginv1.AppendLogResponse, error) {
	if r.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "append log: the log's name is empty")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(r.GetData()) == 0 {
		return &pluginv1.AppendLogResponse{Size: int64(len(f.logs[r.GetName()]))}, nil
	}
	f.logs[r.GetName()] = append(f.logs[r.GetName()], r.GetData()...)
	return &pluginv1.AppendLogResponse{Size: int64(len(f.logs[r.GetName()]))}, nil
}

// ReadLog reads a named log from an offset.
func (f *FakeHost) ReadLog(_ context.Context, r *pluginv1.ReadLogRequest) (*pluginv1.ReadLogResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, ok := f.logs[r.GetName()]
	resp := &pluginv1.ReadLogResponse{Size: int64(len(data)), Found: ok}
	off := min(max(r.GetOffset(), 0), int64(len(data)))
	end := int64(len(data))
	if r.GetLimit() > 0 {
		end = min(end, off+r.GetLimit())
	}
	resp.Data = append([]byte(nil), data[off:end]...)
	return resp, nil
}

// Lock takes a lock unless another owner holds an unexpired one. The owner
// takes its own lock again (a renewal: new reason and TTL, same
// acquired_unix), as the host does.
func (f *FakeHost) Lock(_ context.Context, r *pluginv1.LockRequest) (*pluginv1.LockResponse, error) {
	if r.GetName() == "" || r.GetOwner() == "" {
		return nil, status.Error(codes.InvalidArgument, "lock needs a name and an owner")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	l := &pluginv1.LockInfo{Name: r.GetName(), Owner: r.GetOwner(), Reason: r.GetReason(), AcquiredUnix: now.Unix(), JobId: r.GetJobId()}
	if held := f.held(r.GetName(), now); held != nil {
		if held.GetOwner() != r.GetOwner() {
			return &pluginv1.LockResponse{Acquired: false, Holder: held}, nil
		}
		l.AcquiredUnix = held.GetAcquiredUnix()
	}
	if r.GetTtlSeconds() > 0 {
		l.ExpiresUnix = now.Unix() + r.GetTtlSeconds()
	}
	f.locks[r.GetName()] = l
	return &pluginv1.LockResponse{Acquired: true, Holder: l}, nil
}

// held returns the unexpired lock name, forgetting a lapsed one. Called
// with f.mu held.
func (f *FakeHost) held(name string, now time.Time) *pluginv1.LockInfo {
	l, ok := f.locks[name]
	if !ok {
		return nil
	}
	if l.GetExpiresUnix() != 0 && l.GetExpiresUnix() <= now.Unix() {
		delete(f.locks, name)
		return nil
	}
	return l
}

// Unlock releases a lock held by the owner, or by anyone with force; a
// lapsed lock is held by nobody and releases nothing.
func (f *FakeHost) Unlock(_ context.Context, r *pluginv1.UnlockRequest) (*pluginv1.UnlockResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.held(r.GetName(), time.Now())
	if l == nil {
		return &pluginv1.UnlockResponse{}, nil
	}
	if l.GetOwner() != r.GetOwner() && !r.GetForce() {
		return &pluginv1.UnlockResponse{Released: false, Holder: l}, nil
	}
	delete(f.locks, r.GetName())
	return &pluginv1.UnlockResponse{Released: true, Holder: l}, nil
}

// Locks lists the unexpired locks by prefix.
func (f *FakeHost) Locks(_ context.Context, r *pluginv1.LocksRequest) (*pluginv1.LocksResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*pluginv1.LockInfo
	now := time.Now()
	for name := range f.locks {
		if l := f.held(name, now); l != nil && strings.HasPrefix(name, r.GetPrefix()) {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return &pluginv1.LocksResponse{Locks: out}, nil
}

// KVGet reads a key.
func (f *FakeHost) KVGet(_ context.Context, r *pluginv1.KVGetRequest) (*pluginv1.KVGetResponse, error) {
	if err := checkKey("kv get", r.GetKey()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.kv[r.GetKey()]
	return &pluginv1.KVGetResponse{Value: v, Found: ok}, nil
}

// KVSet writes a key.
func (f *FakeHost) KVSet(_ context.Context, r *pluginv1.KVSetRequest) (*pluginv1.KVSetResponse, error) {
	if err := checkKey("kv set", r.GetKey()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kv[r.GetKey()] = append([]byte(nil), r.GetValue()...)
	return &pluginv1.KVSetResponse{}, nil
}

// KVDelete removes a key.
func (f *FakeHost) KVDelete(_ context.Context, r *pluginv1.KVDeleteRequest) (*pluginv1.KVDeleteResponse, error) {
	if err := checkKey("kv delete", r.GetKey()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.kv, r.GetKey())
	return &pluginv1.KVDeleteResponse{}, nil
}

// KVList lists keys by prefix, sorted.
func (f *FakeHost) KVList(_ context.Context, r *pluginv1.KVListRequest) (*pluginv1.KVListResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var keys []string
	for k := range f.kv {
		if strings.HasPrefix(k, r.GetPrefix()) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return &pluginv1.KVListResponse{Keys: keys}, nil
}
