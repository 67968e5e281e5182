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

	"github.com/chimaops/chima/sdk/pluginv1"
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
	// runs with outcome "ok".
	RunResult func(*pluginv1.RunCommandRequest) *pluginv1.RunCommandResponse
	// declared says whether the plugin declares an action; set once the
	// harness has the manifest. Nil accepts every action.
	declared func(action string) bool
}

type fakeJob struct {
	info *pluginv1.JobInfo
	req  *pluginv1.EnqueueRequest
}

// NewFakeHost returns an empty FakeHost.
func NewFakeHost() *FakeHost {
	return &FakeHost{locks: map[string]*pluginv1.LockInfo{}, kv: map[string][]byte{}, logs: map[string][]byte{}}
}

// Runs returns the commands the plugin ran with RunCommand.
func (f *FakeHost) Runs() []*pluginv1.RunCommandRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*pluginv1.RunCommandRequest(nil), f.runs...)
}

// RunCommand records the command and answers it with RunResult.
func (f *FakeHost) RunCommand(_ context.Context, r *pluginv1.RunCommandRequest) (*pluginv1.RunCommandResponse, error) {
	f.mu.Lock()
	f.runs = append(f.runs, r)
	answer := f.RunResult
	id := f.id()
	f.mu.Unlock()
	if strings.TrimSpace(r.GetText()) == "" {
		return nil, status.Error(codes.InvalidArgument, "no command to run")
	}
	if answer != nil {
		return answer(r), nil
	}
	return &pluginv1.RunCommandResponse{RequestId: "run-" + strconv.FormatInt(id, 10), Outcome: "ok"}, nil
}

// KVCompareAndSwap writes a key only over the value expected, as the host
// does.
func (f *FakeHost) KVCompareAndSwap(_ context.Context, r *pluginv1.KVCompareAndSwapRequest) (*pluginv1.KVCompareAndSwapResponse, error) {
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

// KVIncrement adds to a decimal counter, as the host does.
func (f *FakeHost) KVIncrement(_ context.Context, r *pluginv1.KVIncrementRequest) (*pluginv1.KVIncrementResponse, error) {
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
func (f *FakeHost) Posts() []*pluginv1.PostRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*pluginv1.PostRequest(nil), f.posts...)
}

// Updates returns the message updates the plugin made.
func (f *FakeHost) Updates() []*pluginv1.UpdateRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*pluginv1.UpdateRequest(nil), f.updates...)
}

// Enqueued returns every job enqueued so far.
func (f *FakeHost) Enqueued() []*pluginv1.EnqueueRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*pluginv1.EnqueueRequest, 0, len(f.jobs))
	for _, j := range f.jobs {
		out = append(out, j.req)
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
			j.info.State = "running"
			out = append(out, j.info)
		}
	}
	return out
}

func (f *FakeHost) finish(id int64, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range f.jobs {
		if j.info.Id == id {
			j.info.State = state
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
	if err := f.checkButtons(r.GetOutput()); err != nil {
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
	if err := f.checkButtons(r.GetOutput()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "update message: %v", err)
	}
	f.updates = append(f.updates, r)
	return &pluginv1.UpdateResponse{}, nil
}

// checkButtons refuses the buttons the host would refuse. Called with f.mu
// held.
func (f *FakeHost) checkButtons(o *pluginv1.Output) error {
	declared := f.declared
	if declared == nil {
		declared = func(string) bool { return true }
	}
	return checkButtons(o, declared)
}

// Enqueue records the job as queued.
func (f *FakeHost) Enqueue(_ context.Context, r *pluginv1.EnqueueRequest) (*pluginv1.EnqueueResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.id()
	f.jobs = append(f.jobs, &fakeJob{req: r, info: &pluginv1.JobInfo{
		Id: id, Kind: r.GetKind(), QueueKey: r.GetQueueKey(), State: "queued",
		Payload: r.GetPayload(), CreatedUnix: time.Now().Unix(), Notify: r.GetNotify(),
	}})
	return &pluginv1.EnqueueResponse{JobId: id}, nil
}

// CancelJob cancels a queued job.
func (f *FakeHost) CancelJob(_ context.Context, r *pluginv1.CancelJobRequest) (*pluginv1.CancelJobResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range f.jobs {
		if j.info.Id == r.GetJobId() {
			ok := j.info.State == "queued"
			if ok {
				j.info.State = "cancelled"
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
		if len(r.GetStates()) > 0 && !slices.Contains(r.GetStates(), j.State) {
			continue
		}
		resp.Jobs = append(resp.Jobs, j)
		if r.GetLimit() > 0 && len(resp.Jobs) >= int(r.GetLimit()) {
			break
		}
	}
	return resp, nil
}

// AppendLog appends to a named log.
func (f *FakeHost) AppendLog(_ context.Context, r *pluginv1.AppendLogRequest) (*pluginv1.AppendLogResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
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

// Lock takes a lock unless another owner holds an unexpired one.
func (f *FakeHost) Lock(_ context.Context, r *pluginv1.LockRequest) (*pluginv1.LockResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if l, ok := f.locks[r.GetName()]; ok && l.GetOwner() != r.GetOwner() &&
		(l.GetExpiresUnix() == 0 || l.GetExpiresUnix() > now.Unix()) {
		return &pluginv1.LockResponse{Acquired: false, Holder: l}, nil
	}
	l := &pluginv1.LockInfo{Name: r.GetName(), Owner: r.GetOwner(), Reason: r.GetReason(), AcquiredUnix: now.Unix(), JobId: r.GetJobId()}
	if r.GetTtlSeconds() > 0 {
		l.ExpiresUnix = now.Unix() + r.GetTtlSeconds()
	}
	f.locks[r.GetName()] = l
	return &pluginv1.LockResponse{Acquired: true, Holder: l}, nil
}

// Unlock releases a lock held by the owner, or by anyone with force.
func (f *FakeHost) Unlock(_ context.Context, r *pluginv1.UnlockRequest) (*pluginv1.UnlockResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.locks[r.GetName()]
	if !ok {
		return &pluginv1.UnlockResponse{}, nil
	}
	if l.GetOwner() != r.GetOwner() && !r.GetForce() {
		return &pluginv1.UnlockResponse{Released: false, Holder: l}, nil
	}
	delete(f.locks, r.GetName())
	return &pluginv1.UnlockResponse{Released: true, Holder: l}, nil
}

// Locks lists locks by prefix.
func (f *FakeHost) Locks(_ context.Context, r *pluginv1.LocksRequest) (*pluginv1.LocksResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*pluginv1.LockInfo
	for name, l := range f.locks {
		if strings.HasPrefix(name, r.GetPrefix()) {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return &pluginv1.LocksResponse{Locks: out}, nil
}

// KVGet reads a key.
func (f *FakeHost) KVGet(_ context.Context, r *pluginv1.KVGetRequest) (*pluginv1.KVGetResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.kv[r.GetKey()]
	return &pluginv1.KVGetResponse{Value: v, Found: ok}, nil
}

// KVSet writes a key.
func (f *FakeHost) KVSet(_ context.Context, r *pluginv1.KVSetRequest) (*pluginv1.KVSetResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kv[r.GetKey()] = append([]byte(nil), r.GetValue()...)
	return &pluginv1.KVSetResponse{}, nil
}

// KVDelete removes a key.
func (f *FakeHost) KVDelete(_ context.Context, r *pluginv1.KVDeleteRequest) (*pluginv1.KVDeleteResponse, error) {
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
