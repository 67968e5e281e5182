package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/outbox"
	"github.com/chimaops/chima/core/pluginhost"
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// HostService returns the Host gRPC service for one plugin: posting to chat,
// durable jobs, locks and key-value state, each scoped to that plugin. The
// plugin host serves it to the plugin through go-plugin's broker.
func (b *Bot) HostService(plugin string) pluginv1.HostServer {
	return &hostService{b: b, plugin: plugin}
}

type hostService struct {
	pluginv1.UnimplementedHostServer
	b      *Bot
	plugin string
}

// adapter returns the adapter of ref, the default one when ref names none,
// with ref completed and its room resolved to the adapter's id for it.
func (h *hostService) adapter(ctx context.Context, r *pluginv1.MessageRef) (chat.Adapter, chat.MessageRef, error) {
	ref := h.b.withAdapter(refFromProto(r))
	a := h.b.adapters[ref.Adapter]
	if a == nil {
		if ref.Adapter == "" {
			return nil, ref, status.Errorf(codes.NotFound, "room %q names no chat adapter, and there is no default adapter (bot.default_adapter)", ref.Room)
		}
		return nil, ref, status.Errorf(codes.NotFound, "no chat adapter %q", ref.Adapter)
	}
	ref, err := h.b.resolveRoom(ctx, ref)
	if err != nil {
		return nil, ref, status.Errorf(codes.NotFound, "%v", err)
	}
	return a, ref, nil
}

// Post sends a message for the plugin.
func (h *hostService) Post(ctx context.Context, r *pluginv1.PostRequest) (*pluginv1.PostResponse, error) {
	a, to, err := h.adapter(ctx, r.GetTarget())
	if err != nil {
		return nil, err
	}
	to.MessageID = ""
	out, err := h.b.pluginOutput(h.plugin, r.GetOutput())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "post to %s: %v", to.Room, err)
	}
	ref, err := h.b.deliver(ctx, a, h.b.caps[a.Name()], to, out)
	if err != nil {
		return nil, status.Errorf(chatCode(err), "post to %s: %v", to.Room, err)
	}
	return &pluginv1.PostResponse{Message: refToProto(ref)}, nil
}

// Update edits a message for the plugin, or posts anew where edits are not
// possible. An edit returns once the outbox has queued it: edits of one
// message coalesce there, the latest winning.
func (h *hostService) Update(ctx context.Context, r *pluginv1.UpdateRequest) (*pluginv1.UpdateResponse, error) {
	a, ref, err := h.adapter(ctx, r.GetMessage())
	if err != nil {
		return nil, err
	}
	out, err := h.b.pluginOutput(h.plugin, r.GetOutput())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "update message: %v", err)
	}
	if h.b.caps[a.Name()].Edits {
		if err := h.b.update(ctx, a, ref, out); err != nil {
			return nil, status.Errorf(chatCode(err), "update message: %v", err)
		}
		return &pluginv1.UpdateResponse{}, nil
	}
	ref.MessageID = ""
	if _, err := h.b.deliver(ctx, a, h.b.caps[a.Name()], ref, out); err != nil {
		return nil, status.Errorf(chatCode(err), "post update: %v", err)
	}
	return &pluginv1.UpdateResponse{}, nil
}

// chatCode is the gRPC code of an error posting or editing a message: a
// full outbox asks the plugin to slow down, an unknown room will stay
// unknown, the rest may pass.
func chatCode(err error) codes.Code {
	switch {
	case errors.Is(err, outbox.ErrFull):
		return codes.ResourceExhausted
	case errors.Is(err, chat.ErrUnknownRoom):
		return codes.NotFound
	}
	return codes.Unavailable
}

// Enqueue stores a durable job of one of the plugin's declared kinds.
func (h *hostService) Enqueue(ctx context.Context, r *pluginv1.EnqueueRequest) (*pluginv1.EnqueueResponse, error) {
	if m := h.b.o.Plugins.Manifest(h.plugin); m == nil || !slices.Contains(m.GetJobKinds(), r.GetKind()) {
		return nil, status.Errorf(codes.InvalidArgument, "plugin %s did not declare job kind %q", h.plugin, r.GetKind())
	}
	now := time.Now()
	j := store.Job{
		Plugin: h.plugin, Kind: r.GetKind(), Payload: r.GetPayload(),
		QueueKey:        h.queueKey(r.GetQueueKey()),
		Notify:          h.b.notifyRef(ctx, refFromProto(r.GetNotify())),
		OriginRequestID: r.GetOriginRequestId(),
		Title:           h.b.o.Redactor.String(r.GetTitle()),
		CreatedAt:       now,
		RunAfter:        now.Add(time.Duration(r.GetDelaySeconds()) * time.Second),
	}
	id, err := h.b.o.Store.EnqueueJob(ctx, j)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "enqueue: %v", err)
	}
	j.ID = id
	detail := ""
	if r.GetDelaySeconds() > 0 {
		detail = "to start in " + (time.Duration(r.GetDelaySeconds()) * time.Second).String()
	}
	h.b.auditJob(j, "enqueued", detail, nil)
	h.b.jobs.Wake()
	return &pluginv1.EnqueueResponse{JobId: id}, nil
}

// CancelJob stops one of the plugin's jobs.
func (h *hostService) CancelJob(ctx context.Context, r *pluginv1.CancelJobRequest) (*pluginv1.CancelJobResponse, error) {
	j, err := h.b.o.Store.GetJob(ctx, r.GetJobId())
	if errors.Is(err, store.ErrNotFound) || (err == nil && j.Plugin != h.plugin) {
		return &pluginv1.CancelJobResponse{}, nil
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "get job: %v", err)
	}
	ok, err := h.b.jobs.Cancel(ctx, j.ID)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "cancel job: %v", err)
	}
	if j2, err := h.b.o.Store.GetJob(ctx, j.ID); err == nil {
		j = j2
	}
	return &pluginv1.CancelJobResponse{Cancelled: ok, Job: h.jobInfo(j)}, nil
}

// Jobs lists the plugin's jobs.
func (h *hostService) Jobs(ctx context.Context, r *pluginv1.JobsRequest) (*pluginv1.JobsResponse, error) {
	f := store.JobFilter{Plugin: h.plugin, Kind: r.GetKind(), Limit: int(r.GetLimit()), NewestFirst: true}
	f.QueueKey = h.queueKey(r.GetQueueKey())
	for _, st := range r.GetStates() {
		f.States = append(f.States, store.JobState(st))
	}
	// Minor 8 asks for the union of the names and the enums.
	for _, c := range r.GetStateCodes() {
		if st := jobStateName(c); st != "" && !slices.Contains(f.States, store.JobState(st)) {
			f.States = append(f.States, store.JobState(st))
		}
	}
	jobs, err := h.b.o.Store.ListJobs(ctx, f)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "list jobs: %v", err)
	}
	resp := &pluginv1.JobsResponse{}
	for _, j := range jobs {
		resp.Jobs = append(resp.Jobs, h.jobInfo(j))
	}
	return resp, nil
}

func (h *hostService) jobInfo(j store.Job) *pluginv1.JobInfo {
	unix := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.Unix()
	}
	return &pluginv1.JobInfo{
		Id: j.ID, Kind: j.Kind, QueueKey: strings.TrimPrefix(j.QueueKey, h.plugin+"/"), State: string(j.State), StateCode: jobStateCode(j.State),
		Payload: j.Payload, Detail: j.Detail, Attempt: uint32(j.Attempt),
		CreatedUnix: unix(j.CreatedAt), StartedUnix: unix(j.StartedAt), FinishedUnix: unix(j.FinishedAt),
		Notify: refToProto(j.Notify),
	}
}

// AppendLog appends to one of the plugin's logs.
func (h *hostService) AppendLog(ctx context.Context, r *pluginv1.AppendLogRequest) (*pluginv1.AppendLogResponse, error) {
	if r.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "append log: the log's name is empty")
	}
	size, err := h.b.o.Store.AppendLog(ctx, h.plugin, r.GetName(), h.b.o.Redactor.Bytes(r.GetData()))
	if err != nil {
		return nil, status.Errorf(codes.Internal, "append log: %v", err)
	}
	return &pluginv1.AppendLogResponse{Size: size}, nil
}

// ReadLog reads one of the plugin's logs.
func (h *hostService) ReadLog(ctx context.Context, r *pluginv1.ReadLogRequest) (*pluginv1.ReadLogResponse, error) {
	data, size, found, err := h.b.o.Store.ReadLog(ctx, h.plugin, r.GetName(), r.GetOffset(), r.GetLimit())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "read log: %v", err)
	}
	return &pluginv1.ReadLogResponse{Data: data, Size: size, Found: found}, nil
}

// queueKey namespaces a job queue key per plugin; an empty key stays empty
// (no queue: such jobs run in parallel).
func (h *hostService) queueKey(key string) string {
	if key == "" {
		return ""
	}
	return h.plugin + "/" + key
}

// lockName namespaces lock names per plugin.
func (h *hostService) lockName(name string) string { return h.plugin + "/" + name }

func (h *hostService) lockInfo(l store.Lock) *pluginv1.LockInfo {
	if l.Name == "" {
		return nil
	}
	info := &pluginv1.LockInfo{
		Name: strings.TrimPrefix(l.Name, h.plugin+"/"), Owner: l.Owner, Reason: l.Reason,
		AcquiredUnix: l.AcquiredAt.Unix(), JobId: l.JobID,
	}
	if !l.ExpiresAt.IsZero() {
		info.ExpiresUnix = l.ExpiresAt.Unix()
	}
	return info
}

// Lock takes a named lock for the plugin.
func (h *hostService) Lock(ctx context.Context, r *pluginv1.LockRequest) (*pluginv1.LockResponse, error) {
	if r.GetName() == "" || r.GetOwner() == "" {
		return nil, status.Error(codes.InvalidArgument, "lock needs a name and an owner")
	}
	now := time.Now()
	// The reason is typed in chat ("because …"): it is stored and shown
	// with secret values masked. The owner is left as is: it identifies.
	l := store.Lock{Name: h.lockName(r.GetName()), Owner: r.GetOwner(), Reason: h.b.o.Redactor.String(r.GetReason()), AcquiredAt: now, JobID: r.GetJobId()}
	if r.GetTtlSeconds() > 0 {
		l.ExpiresAt = now.Add(time.Duration(r.GetTtlSeconds()) * time.Second)
	}
	// What is there before, for the audit: a lapsed lock someone else
	// held is taken over, and that is worth saying.
	prev, had, err := h.b.o.Store.LockRow(ctx, l.Name)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "lock: %v", err)
	}
	holder, ok, err := h.b.o.Store.AcquireLock(ctx, l)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "lock: %v", err)
	}
	short := func(x store.Lock) store.Lock { x.Name = strings.TrimPrefix(x.Name, h.plugin+"/"); return x }
	switch {
	case !ok:
		h.b.auditLock(h.plugin, short(l), "busy", "held by "+holder.Owner)
	case had && prev.Owner == l.Owner && !prev.Expired(now):
		h.b.auditLock(h.plugin, short(holder), "renewed", "")
	default:
		if had && prev.Owner != l.Owner {
			h.b.auditLock(h.plugin, short(prev), "expired", "taken over by "+l.Owner)
		}
		h.b.auditLock(h.plugin, short(holder), "taken", l.Reason)
	}
	return &pluginv1.LockResponse{Acquired: ok, Holder: h.lockInfo(holder)}, nil
}

// Unlock releases a named lock of the plugin.
func (h *hostService) Unlock(ctx context.Context, r *pluginv1.UnlockRequest) (*pluginv1.UnlockResponse, error) {
	released, holder, err := h.b.o.Store.ReleaseLock(ctx, h.lockName(r.GetName()), r.GetOwner(), r.GetForce())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "unlock: %v", err)
	}
	if released {
		l := holder
		l.Name = r.GetName()
		if holder.Owner == r.GetOwner() {
			h.b.auditLock(h.plugin, l, "released", "")
		} else {
			h.b.auditLock(h.plugin, l, "forced", "released by "+r.GetOwner())
		}
	}
	return &pluginv1.UnlockResponse{Released: released, Holder: h.lockInfo(holder)}, nil
}

// Locks lists the plugin's locks by prefix.
func (h *hostService) Locks(ctx context.Context, r *pluginv1.LocksRequest) (*pluginv1.LocksResponse, error) {
	ls, err := h.b.o.Store.Locks(ctx, h.lockName(r.GetPrefix()))
	if err != nil {
		return nil, status.Errorf(codes.Internal, "locks: %v", err)
	}
	resp := &pluginv1.LocksResponse{}
	for _, l := range ls {
		resp.Locks = append(resp.Locks, h.lockInfo(l))
	}
	return resp, nil
}

// KVGet reads the plugin's state.
func (h *hostService) KVGet(ctx context.Context, r *pluginv1.KVGetRequest) (*pluginv1.KVGetResponse, error) {
	if err := checkKey("kv get", r.GetKey()); err != nil {
		return nil, err
	}
	v, ok, err := h.b.o.Store.KVGet(ctx, h.plugin, r.GetKey())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "kv get: %v", err)
	}
	return &pluginv1.KVGetResponse{Value: v, Found: ok}, nil
}

// KVSet writes the plugin's state.
func (h *hostService) KVSet(ctx context.Context, r *pluginv1.KVSetRequest) (*pluginv1.KVSetResponse, error) {
	if err := checkKey("kv set", r.GetKey()); err != nil {
		return nil, err
	}
	// Text values (JSON, plain text) are stored with secret values masked;
	// binary ones are left whole, masking would corrupt them.
	if err := h.b.o.Store.KVSet(ctx, h.plugin, r.GetKey(), h.b.o.Redactor.Text(r.GetValue())); err != nil {
		return nil, status.Errorf(codes.Internal, "kv set: %v", err)
	}
	return &pluginv1.KVSetResponse{}, nil
}

// KVDelete removes a key of the plugin's state.
func (h *hostService) KVDelete(ctx context.Context, r *pluginv1.KVDeleteRequest) (*pluginv1.KVDeleteResponse, error) {
	if err := checkKey("kv delete", r.GetKey()); err != nil {
		return nil, err
	}
	if err := h.b.o.Store.KVDelete(ctx, h.plugin, r.GetKey()); err != nil {
		return nil, status.Errorf(codes.Internal, "kv delete: %v", err)
	}
	return &pluginv1.KVDeleteResponse{}, nil
}

// KVList lists keys of the plugin's state.
func (h *hostService) KVList(ctx context.Context, r *pluginv1.KVListRequest) (*pluginv1.KVListResponse, error) {
	keys, err := h.b.o.Store.KVList(ctx, h.plugin, r.GetPrefix())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "kv list: %v", err)
	}
	return &pluginv1.KVListResponse{Keys: keys}, nil
}

// RunJob implements jobs.Executor: it runs a claimed job on its plugin and
// streams what the plugin says into the job's notify room/thread.
func (b *Bot) RunJob(ctx context.Context, j store.Job) (store.JobState, string) {
	out := b.replierTo(j.Notify, j.Notify)
	out.plugin = j.Plugin
	// What the plugin says while a cancelled job winds down still reaches
	// the room.
	rctx := context.WithoutCancel(ctx)
	// A job has ended when its messages are delivered (WaitJobs, `chima
	// send`); the job's worker waits, its plugin's stream did not.
	defer out.wait(rctx)
	var done *pluginv1.Done
	requestID := b.newRequestID()
	// A job's RunCommand nests as deep as the command that enqueued it.
	if d, ok := b.runDepth.Load(j.OriginRequestID); ok {
		b.runDepth.Store(requestID, d)
		defer b.runDepth.Delete(requestID)
	}
	b.auditJob(j, "started", "attempt "+strconv.Itoa(j.Attempt), nil)
	err := b.o.Plugins.Call(ctx, j.Plugin, &pluginv1.Call{Kind: &pluginv1.Call_Job{Job: &pluginv1.JobRequest{
		RequestId: requestID, JobId: j.ID, Kind: j.Kind, Payload: j.Payload,
		Attempt: uint32(j.Attempt), Notify: refToProto(j.Notify), OriginRequestId: j.OriginRequestID,
	}}}, func(ev *pluginv1.Event) {
		if d, ok := ev.GetKind().(*pluginv1.Event_Done); ok {
			done = d.Done
		}
		out.event(rctx, ev)
	})
	if err != nil {
		if ctx.Err() != nil {
			return store.JobCancelled, "cancelled"
		}
		if errors.Is(err, pluginhost.ErrCrashed) {
			// The plugin died under the job: it ends interrupted, and the
			// restarted plugin hears of it (jobFinished).
			return store.JobInterrupted, crashDetail(j.Plugin)
		}
		return store.JobError, b.o.Redactor.String(err.Error())
	}
	detail := b.o.Redactor.String(done.GetDetail()) // stored with the job
	switch doneOutcome(done) {
	case "success", "":
		return store.JobSucceeded, detail
	case "cancelled":
		return store.JobCancelled, detail
	case "error":
		return store.JobError, detail
	default:
		return store.JobFailed, detail
	}
}

// jobPlugins lists the running plugins, whose jobs may be claimed.
func (b *Bot) jobPlugins() []string {
	var out []string
	for _, p := range b.o.Plugins.Plugins() {
		if b.o.Plugins.State(p) == "running" {
			out = append(out, p)
		}
	}
	return out
}

// jobFinished is called by the runner for every job that ended.
func (b *Bot) jobFinished(j store.Job, state store.JobState, detail string) {
	b.o.Metrics.Jobs.WithLabelValues(j.Plugin, j.Kind, string(state)).Inc()
	b.auditJob(j, string(state), detail, nil)
	b.scheduledJobEnded(j, state)
	switch {
	case state == store.JobInterrupted:
		b.jobInterrupted(context.Background(), j, detail)
	case state == store.JobError,
		// A job cancelled before it started never ran its plugin, which
		// reports a cancel itself when it did.
		state == store.JobCancelled && j.StartedAt.IsZero():
		b.notifyJobEnd(context.Background(), j, state, detail)
	}
	b.wakeJobWaiters()
}

// notifyJobEnd tells a job's room about an end the plugin could not report
// itself: a crash, a cancel, a restart.
func (b *Bot) notifyJobEnd(ctx context.Context, j store.Job, state store.JobState, detail string) {
	j.Notify = b.withAdapter(j.Notify)
	a := b.adapters[j.Notify.Adapter]
	if a == nil || j.Notify.Room == "" {
		return
	}
	to, err := b.resolveRoom(ctx, j.Notify)
	if err != nil {
		b.log.Error("cannot tell a job's room how it ended", "job", j.ID, "error", err)
		return
	}
	j.Notify = to
	var text string
	what := jobName(j)
	switch state {
	case store.JobInterrupted:
		text = fmt.Sprintf("⚠ %s was %s. Its locks were released; it was not re-run — ask again to retry.", what, detail)
	case store.JobCancelled:
		text = fmt.Sprintf("%s was cancelled.", what)
	default:
		text = fmt.Sprintf("⚠ %s ended with an error: %s", what, detail)
	}
	_, _ = b.deliver(ctx, a, b.caps[a.Name()], j.Notify, chat.Output{Text: text, Status: "danger"})
}

// jobName names a job in chat: by the title its plugin gave it
// ("Deployment #8 of demo/main to staging"), else by plugin, kind and id.
func jobName(j store.Job) string {
	if j.Title != "" {
		return upperFirst(j.Title)
	}
	return fmt.Sprintf("The %s plugin's %s job (#%d)", j.Plugin, j.Kind, j.ID)
}

// upperFirst capitalises a title that starts a sentence.
func upperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}
