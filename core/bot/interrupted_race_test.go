package bot

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
	"github.com/chimaops/chima/core/pluginhost"
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// slowPlugins runs one plugin, "p", that does not listen for interrupted
// jobs, and whose first manifest is given only once release is closed.
type slowPlugins struct {
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (f *slowPlugins) Call(context.Context, string, *pluginv1.Call, func(*pluginv1.Event)) error {
	return errors.New("no calls")
}
func (f *slowPlugins) State(string) pluginhost.State { return pluginhost.StateRunning }
func (f *slowPlugins) PluginStatus(p string) (pluginhost.Status, bool) {
	return pluginhost.Status{Name: p, State: pluginhost.StateRunning}, true
}
func (f *slowPlugins) Manifest(string) *pluginv1.Manifest {
	f.once.Do(func() { close(f.entered); <-f.release })
	return &pluginv1.Manifest{}
}
func (f *slowPlugins) Plugins() []string { return []string{"p"} }
func (f *slowPlugins) HTTP(context.Context, string, *pluginv1.HTTPRequest) (*pluginv1.HTTPResponse, error) {
	return nil, errors.New("no pages")
}

func TestAJobsRoomIsToldWhenItsPluginCameBackWhileTheJobWasBeingEnded(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite", t.TempDir()+"/chima.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mem := chattest.NewMemory("mem")
	plugins := &slowPlugins{entered: make(chan struct{}), release: make(chan struct{})}
	b := New(Options{Plugins: plugins, Store: st, Adapters: []chat.Adapter{mem}})
	b.running.Store(true)
	now := time.Now()
	id, err := st.EnqueueJob(ctx, store.Job{Plugin: "p", Kind: "k", Title: "job seven",
		Notify: chat.MessageRef{Adapter: "mem", Room: "general"}, CreatedAt: now, RunAfter: now})
	if err != nil {
		t.Fatal(err)
	}
	j, err := st.GetJob(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	// The plugin is back: it is being told of the job (pluginBack), which
	// the job's end had just recorded as pending, and is slow to answer.
	if err := st.KVSet(ctx, pendingNS, pendingKey(j), []byte("1")); err != nil {
		t.Fatal(err)
	}
	go b.tellPending(ctx, "p")
	<-plugins.entered
	// Meanwhile the job's end is handled.
	ended := make(chan struct{})
	go func() { b.jobInterrupted(ctx, j, crashDetail("p")); close(ended) }()
	select {
	case <-ended:
	case <-time.After(500 * time.Millisecond):
	}
	close(plugins.release)
	<-ended
	// The plugin does not listen for interrupted jobs: the core tells the
	// room.
	var said []string
	for _, s := range mem.Sent() {
		said = append(said, s.Out.PlainText())
	}
	if !strings.Contains(strings.Join(said, "\n"), "Job seven was interrupted because the p plugin crashed") {
		t.Fatalf("the job's room heard %q, want it told the job was interrupted", said)
	}
}
