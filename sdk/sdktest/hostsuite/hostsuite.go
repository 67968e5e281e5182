// Package hostsuite is one behaviour suite of the Host service (the service
// a plugin calls back: chat, key-value state, locks, jobs, logs), run
// against every implementation of it: sdktest's FakeHost, which plugin
// authors test against, and the bot's real Host service, on each store. The
// real host is the truth; the suite keeps the fake from drifting from it.
//
// A host implementation's test builds a Harness for one plugin and calls
// Run:
//
//	func TestMyHostKeepsTheContract(t *testing.T) {
//		srv := newMyHost(t) // a pluginv1.HostServer for plugin "suite"
//		hostsuite.Run(t, hostsuite.Harness{
//			Host: hostsuite.Serve(t, srv), Room: &sdk.MessageRef{Room: "general"},
//		})
//	}
package hostsuite

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/internal/bridge"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

// The job kinds and action the plugin behind a Harness must declare in its
// manifest (Manifest.job_kinds, Manifest.actions).
const (
	// JobKind is a job kind the plugin declares.
	JobKind = "build"
	// OtherJobKind is a second job kind the plugin declares.
	OtherJobKind = "deploy"
	// Action is an action the plugin declares, for buttons.
	Action = "approve"
)

// Harness is one Host service under test, connected for one plugin whose
// manifest declares JobKind, OtherJobKind and Action and whose store starts
// empty.
type Harness struct {
	// Host is a client of the Host service, for the plugin.
	Host pluginv1.HostClient
	// Room is a room of the host's chat that Post reaches.
	Room *sdk.MessageRef
	// Posted returns the texts of the messages posted and edited so far,
	// oldest first.
	Posted func() []string
	// StartJob makes the host start the queued, due job id, as a worker
	// would: its RunJob call runs until the job is cancelled. Nil when the
	// host's own workers start due jobs.
	StartJob func(t *testing.T, id int64)
}

// Serve serves srv on an in-memory gRPC connection and returns a client of
// it, closed when the test ends: calls go through gRPC's encoding as a
// plugin's do (nil and empty bytes are one value, errors are statuses).
func Serve(t testing.TB, srv pluginv1.HostServer) pluginv1.HostClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	s := grpc.NewServer()
	pluginv1.RegisterHostServer(s, srv)
	go func() { _ = s.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///hostsuite",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial the host service: %v", err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		s.Stop()
	})
	return pluginv1.NewHostClient(conn)
}

// Run runs the whole suite against h.
func Run(t *testing.T, h Harness) {
	s := &suite{h: h, room: refToProto(h.Room)}
	t.Run("KV", s.kv)
	t.Run("KVAtomic", s.kvAtomic)
	t.Run("Locks", s.locks)
	t.Run("Jobs", s.jobs)
	t.Run("Logs", s.logs)
	t.Run("Chat", s.chat)
	t.Run("InvalidArguments", s.invalid)
}

type suite struct {
	h    Harness
	room *pluginv1.MessageRef // h.Room as the protocol carries it
}

// refToProto is the SDK's conversion of a MessageRef, written once in sdk.
var refToProto = bridge.Func[func(*sdk.MessageRef) *pluginv1.MessageRef]()

// ctx is one call's context.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// result is a call's answer and error, for try(call).must(t).
type result[T any] struct {
	v   T
	err error
}

// try holds a call's answer and error.
func try[T any](v T, err error) result[T] { return result[T]{v, err} }

// must returns the answer, failing the test on the error.
func (r result[T]) must(t *testing.T) T {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%v", r.err)
	}
	return r.v
}

// eventually calls cond until it holds, failing the test after a generous
// deadline (what it waits for is the host's doing, not a duration).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// unique is a name no other subtest uses.
func unique(t *testing.T) string {
	return strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
}

type step struct {
	name string
	run  func(t *testing.T, host pluginv1.HostClient, k string)
}

func (s *suite) steps(t *testing.T, steps []step) {
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) { st.run(t, s.h.Host, unique(t)) })
	}
}

func get(t *testing.T, host pluginv1.HostClient, key string) (string, bool) {
	t.Helper()
	r := try(host.KVGet(ctx(t), &pluginv1.KVGetRequest{Key: key})).must(t)
	return string(r.GetValue()), r.GetFound()
}

func set(t *testing.T, host pluginv1.HostClient, key, value string) {
	t.Helper()
	try(host.KVSet(ctx(t), &pluginv1.KVSetRequest{Key: key, Value: []byte(value)})).must(t)
}

func (s *suite) kv(t *testing.T) {
	s.steps(t, []step{
		{"a value set is read back and overwritten", func(t *testing.T, host pluginv1.HostClient, k string) {
			set(t, host, k, "one")
			if v, ok := get(t, host, k); !ok || v != "one" {
				t.Fatalf("get = %q, %v; want one, true", v, ok)
			}
			set(t, host, k, "two")
			if v, ok := get(t, host, k); !ok || v != "two" {
				t.Fatalf("get after overwrite = %q, %v; want two, true", v, ok)
			}
		}},
		{"a missing key is not found and has no value", func(t *testing.T, host pluginv1.HostClient, k string) {
			if v, ok := get(t, host, k); ok || v != "" {
				t.Fatalf("get = %q, %v; want \"\", false", v, ok)
			}
		}},
		{"an empty value is found", func(t *testing.T, host pluginv1.HostClient, k string) {
			set(t, host, k, "")
			if v, ok := get(t, host, k); !ok || v != "" {
				t.Fatalf("get = %q, %v; want \"\", true", v, ok)
			}
		}},
		{"binary and large values are kept whole", func(t *testing.T, host pluginv1.HostClient, k string) {
			for _, v := range [][]byte{{0, 0xff, 0xfe, 1, '\n'}, bytes.Repeat([]byte("0123456789abcdef"), 16<<10)} {
				try(host.KVSet(ctx(t), &pluginv1.KVSetRequest{Key: k, Value: v})).must(t)
				r := try(host.KVGet(ctx(t), &pluginv1.KVGetRequest{Key: k})).must(t)
				if !bytes.Equal(r.GetValue(), v) {
					t.Fatalf("get returned %d bytes, not the %d set", len(r.GetValue()), len(v))
				}
			}
		}},
		{"a deleted key is gone and deleting a missing key is no error", func(t *testing.T, host pluginv1.HostClient, k string) {
			set(t, host, k, "x")
			try(host.KVDelete(ctx(t), &pluginv1.KVDeleteRequest{Key: k})).must(t)
			if _, ok := get(t, host, k); ok {
				t.Fatal("deleted key still found")
			}
			try(host.KVDelete(ctx(t), &pluginv1.KVDeleteRequest{Key: k})).must(t)
		}},
		{"list returns the keys with a prefix, sorted", func(t *testing.T, host pluginv1.HostClient, k string) {
			for _, key := range []string{k + "/b", k + "/a", k + "/a/x", k + "x", k + "_%/lit"} {
				set(t, host, key, "v")
			}
			cases := []struct {
				prefix string
				want   []string
			}{
				{k + "/", []string{k + "/a", k + "/a/x", k + "/b"}},
				{k + "/a", []string{k + "/a", k + "/a/x"}},
				// LIKE's wildcards are letters like any other in a prefix.
				{k + "_%", []string{k + "_%/lit"}},
				{k + "/none", nil},
			}
			for _, c := range cases {
				got := try(host.KVList(ctx(t), &pluginv1.KVListRequest{Prefix: c.prefix})).must(t).GetKeys()
				if !slices.Equal(got, c.want) {
					t.Errorf("list %q = %q; want %q", c.prefix, got, c.want)
				}
			}
		}},
	})
}

func cas(t *testing.T, host pluginv1.HostClient, r *pluginv1.KVCompareAndSwapRequest) *pluginv1.KVCompareAndSwapResponse {
	t.Helper()
	return try(host.KVCompareAndSwap(ctx(t), r)).must(t)
}

func incr(t *testing.T, host pluginv1.HostClient, key string, delta int64) int64 {
	t.Helper()
	return try(host.KVIncrement(ctx(t), &pluginv1.KVIncrementRequest{Key: key, Delta: delta})).must(t).GetValue()
}

func (s *suite) kvAtomic(t *testing.T) {
	s.steps(t, []step{
		{"create only if absent: the first wins, the second sees its value", func(t *testing.T, host pluginv1.HostClient, k string) {
			r := cas(t, host, &pluginv1.KVCompareAndSwapRequest{Key: k, OldAbsent: true, Value: []byte("first")})
			if !r.GetSwapped() || !r.GetFound() || string(r.GetCurrent()) != "first" {
				t.Fatalf("first create = %v; want swapped, current first", r)
			}
			r = cas(t, host, &pluginv1.KVCompareAndSwapRequest{Key: k, OldAbsent: true, Value: []byte("second")})
			if r.GetSwapped() || !r.GetFound() || string(r.GetCurrent()) != "first" {
				t.Fatalf("second create = %v; want not swapped, current first", r)
			}
			if v, _ := get(t, host, k); v != "first" {
				t.Fatalf("value = %q; want first", v)
			}
		}},
		{"a swap over a stale value is refused and says the current one", func(t *testing.T, host pluginv1.HostClient, k string) {
			set(t, host, k, "2")
			r := cas(t, host, &pluginv1.KVCompareAndSwapRequest{Key: k, Old: []byte("1"), Value: []byte("3")})
			if r.GetSwapped() || !r.GetFound() || string(r.GetCurrent()) != "2" {
				t.Fatalf("stale swap = %v; want not swapped, current 2", r)
			}
			r = cas(t, host, &pluginv1.KVCompareAndSwapRequest{Key: k, Old: []byte("2"), Value: []byte("3")})
			if !r.GetSwapped() || string(r.GetCurrent()) != "3" {
				t.Fatalf("fresh swap = %v; want swapped, current 3", r)
			}
		}},
		{"a swap of a missing key over a value is refused", func(t *testing.T, host pluginv1.HostClient, k string) {
			r := cas(t, host, &pluginv1.KVCompareAndSwapRequest{Key: k, Old: []byte(""), Value: []byte("x")})
			if r.GetSwapped() || r.GetFound() || len(r.GetCurrent()) != 0 {
				t.Fatalf("swap of a missing key = %v; want not swapped, not found", r)
			}
			if _, ok := get(t, host, k); ok {
				t.Fatal("a refused swap created the key")
			}
		}},
		{"an increment starts from zero and adds any delta", func(t *testing.T, host pluginv1.HostClient, k string) {
			for _, c := range []struct{ delta, want int64 }{{5, 5}, {1, 6}, {-10, -4}, {0, -4}} {
				if got := incr(t, host, k, c.delta); got != c.want {
					t.Fatalf("increment by %d = %d; want %d", c.delta, got, c.want)
				}
			}
			if v, _ := get(t, host, k); v != "-4" {
				t.Fatalf("stored counter = %q; want -4", v)
			}
		}},
		{"an increment counts on a decimal value set", func(t *testing.T, host pluginv1.HostClient, k string) {
			set(t, host, k, "41")
			if got := incr(t, host, k, 1); got != 42 {
				t.Fatalf("increment = %d; want 42", got)
			}
		}},
		{"an increment of a value that is no counter fails its precondition", func(t *testing.T, host pluginv1.HostClient, k string) {
			set(t, host, k, "not a number")
			_, err := host.KVIncrement(ctx(t), &pluginv1.KVIncrementRequest{Key: k, Delta: 1})
			if status.Code(err) != codes.FailedPrecondition {
				t.Fatalf("increment error = %v; want FailedPrecondition", err)
			}
			if v, _ := get(t, host, k); v != "not a number" {
				t.Fatalf("value after a failed increment = %q", v)
			}
		}},
		{"concurrent increments hand out distinct values and an exact total", func(t *testing.T, host pluginv1.HostClient, k string) {
			const workers, each = 8, 25
			var mu sync.Mutex
			seen := map[int64]bool{}
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						r, err := host.KVIncrement(context.Background(), &pluginv1.KVIncrementRequest{Key: k, Delta: 1})
						if err != nil {
							errs <- err
							return
						}
						mu.Lock()
						seen[r.GetValue()] = true
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("concurrent increment: %v", err)
			}
			if len(seen) != workers*each {
				t.Errorf("%d distinct values handed out; want %d", len(seen), workers*each)
			}
			if v, _ := get(t, host, k); v != strconv.Itoa(workers*each) {
				t.Errorf("total = %s; want %d", v, workers*each)
			}
		}},
		{"a transaction whose checks hold makes every write, in order", func(t *testing.T, host pluginv1.HostClient, k string) {
			set(t, host, k+"/lease", "mine")
			set(t, host, k+"/open", "yes")
			r := txn(t, host, &pluginv1.KVTransactionRequest{
				Checks: []*pluginv1.KVCheck{{Key: k + "/lease", Value: []byte("mine")}},
				Writes: []*pluginv1.KVWrite{{Key: k + "/record", Value: []byte("r1")}, {Key: k + "/open", Delete: true},
					{Key: k + "/lease", Value: []byte("x")}, {Key: k + "/lease", Value: []byte("free")}},
			})
			if !r.GetCommitted() || r.GetFailedKey() != "" {
				t.Fatalf("transaction = %v; want committed", r)
			}
			for key, want := range map[string]string{k + "/record": "r1", k + "/lease": "free"} {
				if v, ok := get(t, host, key); !ok || v != want {
					t.Errorf("%s = %q (found %v); want %q", key, v, ok, want)
				}
			}
			if _, ok := get(t, host, k+"/open"); ok {
				t.Error("the deleted key is still there")
			}
		}},
		{"a transaction whose check fails writes nothing and names the key and its value", func(t *testing.T, host pluginv1.HostClient, k string) {
			set(t, host, k+"/a", "1")
			set(t, host, k+"/lease", "theirs")
			r := txn(t, host, &pluginv1.KVTransactionRequest{
				Checks: []*pluginv1.KVCheck{{Key: k + "/a", Value: []byte("1")}, {Key: k + "/lease", Value: []byte("mine")}},
				Writes: []*pluginv1.KVWrite{{Key: k + "/a", Value: []byte("2")}, {Key: k + "/b", Value: []byte("2")}},
			})
			if r.GetCommitted() || r.GetFailedKey() != k+"/lease" || !r.GetFound() || string(r.GetCurrent()) != "theirs" {
				t.Fatalf("transaction = %v; want not committed, failed on %s holding theirs", r, k+"/lease")
			}
			r = txn(t, host, &pluginv1.KVTransactionRequest{
				Checks: []*pluginv1.KVCheck{{Key: k + "/missing", Value: []byte("")}},
				Writes: []*pluginv1.KVWrite{{Key: k + "/a", Value: []byte("3")}},
			})
			if r.GetCommitted() || r.GetFailedKey() != k+"/missing" || r.GetFound() {
				t.Fatalf("transaction over a missing key = %v; want not committed, not found", r)
			}
			if v, _ := get(t, host, k+"/a"); v != "1" {
				t.Errorf("a refused transaction wrote %q", v)
			}
			if _, ok := get(t, host, k+"/b"); ok {
				t.Error("a refused transaction created a key")
			}
		}},
		{"concurrent transactions over one key lose no update", func(t *testing.T, host pluginv1.HostClient, k string) {
			const workers, each = 4, 10
			set(t, host, k, "0")
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						for {
							cur, err := host.KVGet(context.Background(), &pluginv1.KVGetRequest{Key: k})
							if err != nil {
								errs <- err
								return
							}
							n, _ := strconv.Atoi(string(cur.GetValue()))
							next := []byte(strconv.Itoa(n + 1))
							r, err := host.KVTransaction(context.Background(), &pluginv1.KVTransactionRequest{
								Checks: []*pluginv1.KVCheck{{Key: k, Value: cur.GetValue()}},
								Writes: []*pluginv1.KVWrite{{Key: k, Value: next}, {Key: k + "/n/" + string(next), Value: next}},
							})
							if err != nil {
								errs <- err
								return
							}
							if r.GetCommitted() {
								break
							}
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("concurrent transaction: %v", err)
			}
			if v, _ := get(t, host, k); v != strconv.Itoa(workers*each) {
				t.Errorf("total = %s; want %d", v, workers*each)
			}
			keys := try(host.KVList(ctx(t), &pluginv1.KVListRequest{Prefix: k + "/n/"})).must(t).GetKeys()
			if len(keys) != workers*each {
				t.Errorf("%d numbered keys; want %d: two transactions passed one check", len(keys), workers*each)
			}
		}},
	})
}

func txn(t *testing.T, host pluginv1.HostClient, r *pluginv1.KVTransactionRequest) *pluginv1.KVTransactionResponse {
	t.Helper()
	return try(host.KVTransaction(ctx(t), r)).must(t)
}

func lock(t *testing.T, host pluginv1.HostClient, r *pluginv1.LockRequest) *pluginv1.LockResponse {
	t.Helper()
	return try(host.Lock(ctx(t), r)).must(t)
}

func unlock(t *testing.T, host pluginv1.HostClient, r *pluginv1.UnlockRequest) *pluginv1.UnlockResponse {
	t.Helper()
	return try(host.Unlock(ctx(t), r)).must(t)
}

func lockNames(t *testing.T, host pluginv1.HostClient, prefix string) []string {
	t.Helper()
	var out []string
	for _, l := range try(host.Locks(ctx(t), &pluginv1.LocksRequest{Prefix: prefix})).must(t).GetLocks() {
		out = append(out, l.GetName())
	}
	return out
}

func (s *suite) locks(t *testing.T) {
	s.steps(t, []step{
		{"a lock is exclusive between owners and says who holds it", func(t *testing.T, host pluginv1.HostClient, k string) {
			r := lock(t, host, &pluginv1.LockRequest{Name: k, Owner: "alice", Reason: "deploying", JobId: 7})
			if !r.GetAcquired() || r.GetHolder().GetOwner() != "alice" || r.GetHolder().GetName() != k ||
				r.GetHolder().GetReason() != "deploying" || r.GetHolder().GetJobId() != 7 || r.GetHolder().GetAcquiredUnix() == 0 {
				t.Fatalf("first lock = %v; want acquired and held by alice, named %s, job 7", r, k)
			}
			r = lock(t, host, &pluginv1.LockRequest{Name: k, Owner: "bob"})
			if r.GetAcquired() || r.GetHolder().GetOwner() != "alice" || r.GetHolder().GetReason() != "deploying" {
				t.Fatalf("second owner's lock = %v; want refused, held by alice", r)
			}
		}},
		{"the owner takes its lock again, with the new reason", func(t *testing.T, host pluginv1.HostClient, k string) {
			first := lock(t, host, &pluginv1.LockRequest{Name: k, Owner: "alice", Reason: "one"})
			r := lock(t, host, &pluginv1.LockRequest{Name: k, Owner: "alice", Reason: "two"})
			if !r.GetAcquired() || r.GetHolder().GetReason() != "two" {
				t.Fatalf("re-lock = %v; want acquired with reason two", r)
			}
			if r.GetHolder().GetAcquiredUnix() != first.GetHolder().GetAcquiredUnix() {
				t.Errorf("re-lock moved acquired_unix from %d to %d; a renewal keeps it",
					first.GetHolder().GetAcquiredUnix(), r.GetHolder().GetAcquiredUnix())
			}
		}},
		{"only the owner releases, unless forced", func(t *testing.T, host pluginv1.HostClient, k string) {
			lock(t, host, &pluginv1.LockRequest{Name: k, Owner: "alice"})
			r := unlock(t, host, &pluginv1.UnlockRequest{Name: k, Owner: "bob"})
			if r.GetReleased() || r.GetHolder().GetOwner() != "alice" {
				t.Fatalf("non-owner unlock = %v; want refused, held by alice", r)
			}
			if got := lockNames(t, host, k); !slices.Equal(got, []string{k}) {
				t.Fatalf("locks after a refused unlock = %q", got)
			}
			r = unlock(t, host, &pluginv1.UnlockRequest{Name: k, Owner: "bob", Force: true})
			if !r.GetReleased() || r.GetHolder().GetOwner() != "alice" {
				t.Fatalf("forced unlock = %v; want released, holder alice", r)
			}
			if !lock(t, host, &pluginv1.LockRequest{Name: k, Owner: "bob"}).GetAcquired() {
				t.Fatal("lock after a forced release refused")
			}
		}},
		{"the owner's release frees the lock for others", func(t *testing.T, host pluginv1.HostClient, k string) {
			lock(t, host, &pluginv1.LockRequest{Name: k, Owner: "alice"})
			if r := unlock(t, host, &pluginv1.UnlockRequest{Name: k, Owner: "alice"}); !r.GetReleased() {
				t.Fatalf("owner unlock = %v; want released", r)
			}
			if got := lockNames(t, host, k); len(got) != 0 {
				t.Fatalf("locks after release = %q", got)
			}
			if !lock(t, host, &pluginv1.LockRequest{Name: k, Owner: "bob"}).GetAcquired() {
				t.Fatal("lock after release refused")
			}
		}},
		{"releasing a lock nobody holds releases nothing", func(t *testing.T, host pluginv1.HostClient, k string) {
			r := unlock(t, host, &pluginv1.UnlockRequest{Name: k, Owner: "alice", Force: true})
			if r.GetReleased() || r.GetHolder() != nil {
				t.Fatalf("unlock of a free lock = %v; want nothing released, no holder", r)
			}
		}},
		{"a lock with a TTL lapses: it is no longer listed, its owner releases nothing, another takes it", func(t *testing.T, host pluginv1.HostClient, k string) {
			r := lock(t, host, &pluginv1.LockRequest{Name: k, Owner: "alice", TtlSeconds: 1})
			if !r.GetAcquired() || r.GetHolder().GetExpiresUnix() < r.GetHolder().GetAcquiredUnix()+1 {
				t.Fatalf("lock with a ttl = %v; want acquired, expiring a second after", r)
			}
			eventually(t, "the lock to lapse from the list", func() bool { return len(lockNames(t, host, k)) == 0 })
			if r := unlock(t, host, &pluginv1.UnlockRequest{Name: k, Owner: "alice"}); r.GetReleased() {
				t.Fatalf("unlock of a lapsed lock = %v; want nothing released", r)
			}
			if r := lock(t, host, &pluginv1.LockRequest{Name: k, Owner: "bob"}); !r.GetAcquired() || r.GetHolder().GetOwner() != "bob" {
				t.Fatalf("lock over a lapsed one = %v; want taken by bob", r)
			}
		}},
		{"a lock without a TTL never expires", func(t *testing.T, host pluginv1.HostClient, k string) {
			if r := lock(t, host, &pluginv1.LockRequest{Name: k, Owner: "alice"}); r.GetHolder().GetExpiresUnix() != 0 {
				t.Fatalf("lock without ttl = %v; want expires_unix 0", r)
			}
		}},
		{"locks are listed by prefix, sorted by name", func(t *testing.T, host pluginv1.HostClient, k string) {
			for _, n := range []string{k + "/b", k + "/a", k + "x"} {
				lock(t, host, &pluginv1.LockRequest{Name: n, Owner: "alice"})
			}
			if got, want := lockNames(t, host, k+"/"), []string{k + "/a", k + "/b"}; !slices.Equal(got, want) {
				t.Fatalf("locks %q = %q; want %q", k+"/", got, want)
			}
		}},
	})
}

func jobsOf(t *testing.T, host pluginv1.HostClient, r *pluginv1.JobsRequest) []*pluginv1.JobInfo {
	t.Helper()
	return try(host.Jobs(ctx(t), r)).must(t).GetJobs()
}

func ids(jobs []*pluginv1.JobInfo) []int64 {
	var out []int64
	for _, j := range jobs {
		out = append(out, j.GetId())
	}
	return out
}

// queued enqueues a job that stays queued for an hour.
func queued(t *testing.T, host pluginv1.HostClient, kind, queue string) int64 {
	t.Helper()
	return try(host.Enqueue(ctx(t), &pluginv1.EnqueueRequest{Kind: kind, QueueKey: queue, DelaySeconds: 3600})).must(t).GetJobId()
}

// job returns the job id in queue, or nil.
func job(t *testing.T, host pluginv1.HostClient, queue string, id int64) *pluginv1.JobInfo {
	t.Helper()
	for _, j := range jobsOf(t, host, &pluginv1.JobsRequest{QueueKey: queue}) {
		if j.GetId() == id {
			return j
		}
	}
	return nil
}

func (s *suite) jobs(t *testing.T) {
	s.steps(t, []step{
		{"an enqueued job is listed with what it was given", func(t *testing.T, host pluginv1.HostClient, k string) {
			notify := &pluginv1.MessageRef{Adapter: s.room.GetAdapter(), Room: s.room.GetRoom()}
			id := try(host.Enqueue(ctx(t), &pluginv1.EnqueueRequest{
				Kind: JobKind, Payload: []byte(`{"n":1}`), QueueKey: k, Notify: notify,
				OriginRequestId: "req-1", DelaySeconds: 3600, Title: "build #1",
			})).must(t).GetJobId()
			if id <= 0 {
				t.Fatalf("job id = %d", id)
			}
			j := job(t, host, k, id)
			if j == nil {
				t.Fatalf("job %d not listed in its queue", id)
			}
			if j.GetKind() != JobKind || j.GetQueueKey() != k || j.GetState() != "queued" || j.GetStateCode() != pluginv1.JobState_JOB_STATE_QUEUED || string(j.GetPayload()) != `{"n":1}` ||
				j.GetCreatedUnix() == 0 || j.GetStartedUnix() != 0 || j.GetFinishedUnix() != 0 || j.GetNotify().GetRoom() != notify.GetRoom() {
				t.Fatalf("job = %v; want kind %s, queue %s, queued (name and code), its payload, created, not started, notify %s", j, JobKind, k, notify.GetRoom())
			}
		}},
		{"jobs are listed newest first, by kind, state and limit", func(t *testing.T, host pluginv1.HostClient, k string) {
			a := queued(t, host, JobKind, k)
			b := queued(t, host, OtherJobKind, k)
			c := queued(t, host, JobKind, k)
			queued(t, host, JobKind, k+"-other")
			cases := []struct {
				name string
				req  *pluginv1.JobsRequest
				want []int64
			}{
				{"queue", &pluginv1.JobsRequest{QueueKey: k}, []int64{c, b, a}},
				{"kind", &pluginv1.JobsRequest{QueueKey: k, Kind: JobKind}, []int64{c, a}},
				{"limit", &pluginv1.JobsRequest{QueueKey: k, Limit: 2}, []int64{c, b}},
				{"state queued", &pluginv1.JobsRequest{QueueKey: k, States: []string{"queued"}}, []int64{c, b, a}},
				{"state running", &pluginv1.JobsRequest{QueueKey: k, States: []string{"running", "succeeded"}}, nil},
				{"state code queued", &pluginv1.JobsRequest{QueueKey: k, StateCodes: []pluginv1.JobState{pluginv1.JobState_JOB_STATE_QUEUED}}, []int64{c, b, a}},
				{"state names and codes united", &pluginv1.JobsRequest{QueueKey: k, States: []string{"running"},
					StateCodes: []pluginv1.JobState{pluginv1.JobState_JOB_STATE_QUEUED}}, []int64{c, b, a}},
			}
			for _, cs := range cases {
				if got := ids(jobsOf(t, host, cs.req)); !slices.Equal(got, cs.want) {
					t.Errorf("%s: jobs = %v; want %v", cs.name, got, cs.want)
				}
			}
			all := ids(jobsOf(t, host, &pluginv1.JobsRequest{}))
			if !slices.IsSortedFunc(all, func(x, y int64) int { return int(y - x) }) || !slices.Contains(all, a) {
				t.Errorf("all jobs = %v; want newest first, %d among them", all, a)
			}
		}},
		{"a queued job is cancelled once", func(t *testing.T, host pluginv1.HostClient, k string) {
			id := queued(t, host, JobKind, k)
			r := try(host.CancelJob(ctx(t), &pluginv1.CancelJobRequest{JobId: id})).must(t)
			if !r.GetCancelled() || r.GetJob().GetId() != id || r.GetJob().GetState() != "cancelled" ||
				r.GetJob().GetStateCode() != pluginv1.JobState_JOB_STATE_CANCELLED {
				t.Fatalf("cancel = %v; want cancelled, job %d in state cancelled", r, id)
			}
			if got := ids(jobsOf(t, host, &pluginv1.JobsRequest{QueueKey: k, States: []string{"cancelled"}})); !slices.Equal(got, []int64{id}) {
				t.Fatalf("cancelled jobs = %v; want [%d]", got, id)
			}
			r = try(host.CancelJob(ctx(t), &pluginv1.CancelJobRequest{JobId: id})).must(t)
			if r.GetCancelled() || r.GetJob().GetState() != "cancelled" {
				t.Fatalf("second cancel = %v; want not cancelled, job still cancelled", r)
			}
		}},
		{"cancelling an unknown job cancels nothing", func(t *testing.T, host pluginv1.HostClient, k string) {
			r := try(host.CancelJob(ctx(t), &pluginv1.CancelJobRequest{JobId: 1 << 40})).must(t)
			if r.GetCancelled() || r.GetJob() != nil {
				t.Fatalf("cancel of an unknown job = %v; want nothing", r)
			}
		}},
		{"a running job is cancelled and ends cancelled", func(t *testing.T, host pluginv1.HostClient, k string) {
			id := try(host.Enqueue(ctx(t), &pluginv1.EnqueueRequest{Kind: JobKind, QueueKey: k})).must(t).GetJobId()
			if s.h.StartJob != nil {
				s.h.StartJob(t, id)
			}
			eventually(t, "the job to run", func() bool { return job(t, host, k, id).GetState() == "running" })
			if j := job(t, host, k, id); j.GetStartedUnix() == 0 {
				t.Errorf("running job %v has no started_unix", j)
			}
			r := try(host.CancelJob(ctx(t), &pluginv1.CancelJobRequest{JobId: id})).must(t)
			if !r.GetCancelled() || r.GetJob().GetId() != id {
				t.Fatalf("cancel of a running job = %v; want cancelled", r)
			}
			eventually(t, "the job to end cancelled", func() bool { return job(t, host, k, id).GetState() == "cancelled" })
		}},
	})
}

func readLog(t *testing.T, host pluginv1.HostClient, r *pluginv1.ReadLogRequest) *pluginv1.ReadLogResponse {
	t.Helper()
	return try(host.ReadLog(ctx(t), r)).must(t)
}

func (s *suite) logs(t *testing.T) {
	s.steps(t, []step{
		{"appends return the size and reads take offsets and limits", func(t *testing.T, host pluginv1.HostClient, k string) {
			for _, c := range []struct {
				data string
				size int64
			}{{"hello ", 6}, {"world\n", 12}} {
				r := try(host.AppendLog(ctx(t), &pluginv1.AppendLogRequest{Name: k, Data: []byte(c.data)})).must(t)
				if r.GetSize() != c.size {
					t.Fatalf("append %q: size %d; want %d", c.data, r.GetSize(), c.size)
				}
			}
			cases := []struct {
				offset, limit int64
				want          string
			}{
				{0, 0, "hello world\n"}, {6, 0, "world\n"}, {3, 4, "lo w"}, {-5, 5, "hello"}, {12, 0, ""}, {100, 10, ""},
			}
			for _, c := range cases {
				r := readLog(t, host, &pluginv1.ReadLogRequest{Name: k, Offset: c.offset, Limit: c.limit})
				if string(r.GetData()) != c.want || r.GetSize() != 12 || !r.GetFound() {
					t.Errorf("read at %d limit %d = %q size %d found %v; want %q size 12 found", c.offset, c.limit, r.GetData(), r.GetSize(), r.GetFound(), c.want)
				}
			}
		}},
		{"a large log reads back whole across any offset", func(t *testing.T, host pluginv1.HostClient, k string) {
			var data []byte
			for i := 0; len(data) < 200<<10; i++ {
				data = fmt.Appendf(data, "line %d\n", i)
			}
			try(host.AppendLog(ctx(t), &pluginv1.AppendLogRequest{Name: k, Data: data})).must(t)
			for _, c := range []struct{ offset, limit int64 }{{0, 0}, {65530, 20}, {131071, 3}, {int64(len(data)) - 4, 100}} {
				want := data[c.offset:]
				if c.limit > 0 && int64(len(want)) > c.limit {
					want = want[:c.limit]
				}
				if r := readLog(t, host, &pluginv1.ReadLogRequest{Name: k, Offset: c.offset, Limit: c.limit}); !bytes.Equal(r.GetData(), want) {
					t.Errorf("read at %d limit %d: %d bytes, not the %d written there", c.offset, c.limit, len(r.GetData()), len(want))
				}
			}
		}},
		{"a log never written, or written nothing, is not found", func(t *testing.T, host pluginv1.HostClient, k string) {
			if r := readLog(t, host, &pluginv1.ReadLogRequest{Name: k}); r.GetFound() || r.GetSize() != 0 || len(r.GetData()) != 0 {
				t.Fatalf("read of a missing log = %v; want not found", r)
			}
			if r := try(host.AppendLog(ctx(t), &pluginv1.AppendLogRequest{Name: k})).must(t); r.GetSize() != 0 {
				t.Fatalf("empty append: size %d", r.GetSize())
			}
			if r := readLog(t, host, &pluginv1.ReadLogRequest{Name: k}); r.GetFound() {
				t.Fatalf("read of a log with nothing written = %v; want not found", r)
			}
		}},
	})
}

func (s *suite) posted(t *testing.T, text string) bool {
	t.Helper()
	if s.h.Posted == nil {
		return true
	}
	return slices.Contains(s.h.Posted(), text)
}

func (s *suite) chat(t *testing.T) {
	s.steps(t, []step{
		{"a post returns a reference to the message, in its room", func(t *testing.T, host pluginv1.HostClient, k string) {
			r := try(host.Post(ctx(t), &pluginv1.PostRequest{Target: s.room, Output: &pluginv1.Output{Text: k}})).must(t)
			m := r.GetMessage()
			if m.GetMessageId() == "" || m.GetRoom() != s.room.GetRoom() {
				t.Fatalf("post returned %v; want a message id in room %s", m, s.room.GetRoom())
			}
			if s.room.GetAdapter() != "" && m.GetAdapter() != s.room.GetAdapter() {
				t.Errorf("post returned adapter %q; want %q", m.GetAdapter(), s.room.GetAdapter())
			}
			if !s.posted(t, k) {
				t.Fatalf("posted %q not among %q", k, s.h.Posted())
			}
			r2 := try(host.Post(ctx(t), &pluginv1.PostRequest{Target: s.room, Output: &pluginv1.Output{Text: k + "2"}})).must(t)
			if r2.GetMessage().GetMessageId() == m.GetMessageId() {
				t.Fatalf("two posts share message id %s", m.GetMessageId())
			}
		}},
		{"a post in a thread stays in it", func(t *testing.T, host pluginv1.HostClient, k string) {
			root := try(host.Post(ctx(t), &pluginv1.PostRequest{Target: s.room, Output: &pluginv1.Output{Text: k}})).must(t).GetMessage()
			target := &pluginv1.MessageRef{Adapter: s.room.GetAdapter(), Room: s.room.GetRoom(), ThreadId: root.GetMessageId()}
			r := try(host.Post(ctx(t), &pluginv1.PostRequest{Target: target, Output: &pluginv1.Output{Text: k + " reply"}})).must(t)
			if r.GetMessage().GetThreadId() != root.GetMessageId() {
				t.Fatalf("reply in thread returned %v; want thread %s", r.GetMessage(), root.GetMessageId())
			}
		}},
		{"an update of a posted message shows the new text", func(t *testing.T, host pluginv1.HostClient, k string) {
			ref := try(host.Post(ctx(t), &pluginv1.PostRequest{Target: s.room, Output: &pluginv1.Output{Text: k}})).must(t).GetMessage()
			try(host.Update(ctx(t), &pluginv1.UpdateRequest{Message: ref, Output: &pluginv1.Output{Text: k + " done"}})).must(t)
			eventually(t, "the edit to show", func() bool { return s.posted(t, k+" done") })
		}},
		{"buttons of declared actions and commands are posted", func(t *testing.T, host pluginv1.HostClient, k string) {
			try(host.Post(ctx(t), &pluginv1.PostRequest{Target: s.room, Output: &pluginv1.Output{Text: k, Buttons: []*pluginv1.Button{
				{Label: "Approve", Action: Action, Value: "42"}, {Label: "Status", Command: "status"},
			}}})).must(t)
		}},
	})
}

// invalid: every request the host refuses, with the code it refuses it with.
func (s *suite) invalid(t *testing.T) {
	host := s.h.Host
	room := s.room
	badButton := &pluginv1.Output{Text: "x", Buttons: []*pluginv1.Button{{Label: "Nope", Action: "undeclared"}}}
	cases := []struct {
		name string
		call func(context.Context) error
		want codes.Code
	}{
		{"kv get of an empty key", func(c context.Context) error { _, err := host.KVGet(c, &pluginv1.KVGetRequest{}); return err }, codes.InvalidArgument},
		{"kv set of an empty key", func(c context.Context) error {
			_, err := host.KVSet(c, &pluginv1.KVSetRequest{Value: []byte("x")})
			return err
		}, codes.InvalidArgument},
		{"kv delete of an empty key", func(c context.Context) error { _, err := host.KVDelete(c, &pluginv1.KVDeleteRequest{}); return err }, codes.InvalidArgument},
		{"compare-and-swap of an empty key", func(c context.Context) error {
			_, err := host.KVCompareAndSwap(c, &pluginv1.KVCompareAndSwapRequest{OldAbsent: true, Value: []byte("x")})
			return err
		}, codes.InvalidArgument},
		{"increment of an empty key", func(c context.Context) error {
			_, err := host.KVIncrement(c, &pluginv1.KVIncrementRequest{Delta: 1})
			return err
		}, codes.InvalidArgument},
		{"transaction writing an empty key", func(c context.Context) error {
			_, err := host.KVTransaction(c, &pluginv1.KVTransactionRequest{Writes: []*pluginv1.KVWrite{{Value: []byte("x")}}})
			return err
		}, codes.InvalidArgument},
		{"transaction checking an empty key", func(c context.Context) error {
			_, err := host.KVTransaction(c, &pluginv1.KVTransactionRequest{Checks: []*pluginv1.KVCheck{{Value: []byte("x")}}})
			return err
		}, codes.InvalidArgument},
		{"transaction of more checks and writes than one may hold", func(c context.Context) error {
			r := &pluginv1.KVTransactionRequest{}
			for i := range wire.MaxKVTransactionOps + 1 {
				r.Writes = append(r.Writes, &pluginv1.KVWrite{Key: "k" + strconv.Itoa(i)})
			}
			_, err := host.KVTransaction(c, r)
			return err
		}, codes.InvalidArgument},
		{"lock without a name", func(c context.Context) error {
			_, err := host.Lock(c, &pluginv1.LockRequest{Owner: "alice"})
			return err
		}, codes.InvalidArgument},
		{"lock without an owner", func(c context.Context) error { _, err := host.Lock(c, &pluginv1.LockRequest{Name: "x"}); return err }, codes.InvalidArgument},
		{"enqueue of an undeclared kind", func(c context.Context) error {
			_, err := host.Enqueue(c, &pluginv1.EnqueueRequest{Kind: "undeclared"})
			return err
		}, codes.InvalidArgument},
		{"enqueue without a kind", func(c context.Context) error { _, err := host.Enqueue(c, &pluginv1.EnqueueRequest{}); return err }, codes.InvalidArgument},
		{"append to a log without a name", func(c context.Context) error {
			_, err := host.AppendLog(c, &pluginv1.AppendLogRequest{Data: []byte("x")})
			return err
		}, codes.InvalidArgument},
		{"post of a button of an undeclared action", func(c context.Context) error {
			_, err := host.Post(c, &pluginv1.PostRequest{Target: room, Output: badButton})
			return err
		}, codes.InvalidArgument},
		{"update with a button of an undeclared action", func(c context.Context) error {
			ref, err := host.Post(c, &pluginv1.PostRequest{Target: room, Output: &pluginv1.Output{Text: "x"}})
			if err != nil {
				return fmt.Errorf("post: %w", err)
			}
			_, err = host.Update(c, &pluginv1.UpdateRequest{Message: ref.GetMessage(), Output: badButton})
			return err
		}, codes.InvalidArgument},
		{"run of an empty command", func(c context.Context) error {
			_, err := host.RunCommand(c, &pluginv1.RunCommandRequest{Text: "  ", As: "alice", Room: room})
			return err
		}, codes.InvalidArgument},
		{"run of a command in no room", func(c context.Context) error {
			_, err := host.RunCommand(c, &pluginv1.RunCommandRequest{Text: "help", As: "alice"})
			return err
		}, codes.InvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(ctx(t)); status.Code(err) != c.want {
				t.Fatalf("error = %v; want code %s", err, c.want)
			}
		})
	}
}
