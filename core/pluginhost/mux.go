package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

// errStreamBroken means the Multiplex stream ended under a call.
var errStreamBroken = errors.New("plugin stream broken")

// muxClient multiplexes many calls over one long-lived Multiplex stream, so a
// chat message costs one message each way instead of a new HTTP/2 stream.
type muxClient struct {
	stream pluginv1.Plugin_MultiplexClient
	cancel context.CancelFunc

	sendMu sync.Mutex
	next   atomic.Uint64

	mu     sync.Mutex
	calls  map[uint64]*pending
	broken error
	done   chan struct{}
}

func newMux(ctx context.Context, client pluginv1.PluginClient) (*muxClient, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := client.Multiplex(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open multiplex stream: %w", err)
	}
	m := &muxClient{stream: stream, cancel: cancel, calls: map[uint64]*pending{}, done: make(chan struct{})}
	go m.recvLoop()
	return m, nil
}

// pending is one call in flight. gone is closed when the caller abandons the
// call, so that recvLoop never blocks on a channel nobody reads.
type pending struct {
	ch   chan *pluginv1.Event
	gone chan struct{}
}

// pendings are reused: most calls are short and end with Done.
var pendings = sync.Pool{New: func() any {
	return &pending{ch: make(chan *pluginv1.Event, 16), gone: make(chan struct{})}
}}

// call sends c and feeds its events to fn until Done, the stream breaks or
// ctx ends (then the plugin is told to cancel the call).
func (m *muxClient) call(ctx context.Context, c *pluginv1.Call, fn func(*pluginv1.Event)) error {
	id := m.next.Add(1)
	p := pendings.Get().(*pending)
	m.mu.Lock()
	if m.broken != nil {
		m.mu.Unlock()
		pendings.Put(p)
		return m.broken
	}
	m.calls[id] = p
	m.mu.Unlock()

	c.Id = id
	m.sendMu.Lock()
	err := m.stream.Send(c)
	m.sendMu.Unlock()
	if err != nil {
		m.forget(id)
		close(p.gone) // p is not reused
		return fmt.Errorf("%w: send: %v", errStreamBroken, err)
	}
	for {
		select {
		case ev, ok := <-p.ch:
			if !ok {
				return m.brokenErr()
			}
			fn(ev)
			if _, end := ev.GetKind().(*pluginv1.Event_Done); end {
				// recvLoop forgot the call before delivering Done, so the
				// channel is ours alone again.
				pendings.Put(p)
				return nil
			}
		case <-ctx.Done():
			reason := ""
			if errors.Is(context.Cause(ctx), wire.ErrShutdown) {
				reason = wire.CancelReasonShutdown
			}
			m.sendMu.Lock()
			_ = m.stream.Send(&pluginv1.Call{Id: id, Kind: &pluginv1.Call_Cancel{Cancel: &pluginv1.CancelCall{Reason: reason}}})
			m.sendMu.Unlock()
			m.drain(id, p, fn)
			return ctx.Err()
		}
	}
}

// CancelGrace is how long a cancelled call may take to wind down (stop its
// processes, report) before the host stops listening to it. Waiting matters:
// the next job of the same queue must not start while this one still runs.
var CancelGrace = 15 * time.Second

// drain delivers the events of a cancelled call until its Done, the stream
// breaking or CancelGrace.
func (m *muxClient) drain(id uint64, p *pending, fn func(*pluginv1.Event)) {
	t := time.NewTimer(CancelGrace)
	defer t.Stop()
	for {
		select {
		case ev, ok := <-p.ch:
			if !ok {
				return
			}
			fn(ev)
			if _, end := ev.GetKind().(*pluginv1.Event_Done); end {
				pendings.Put(p)
				return
			}
		case <-t.C:
			m.forget(id)
			close(p.gone) // p is not reused
			return
		}
	}
}

func (m *muxClient) forget(id uint64) {
	m.mu.Lock()
	delete(m.calls, id)
	m.mu.Unlock()
}

func (m *muxClient) brokenErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.broken == nil {
		return errStreamBroken
	}
	return m.broken
}

func (m *muxClient) recvLoop() {
	defer close(m.done)
	for {
		ce, err := m.stream.Recv()
		if err != nil {
			m.mu.Lock()
			m.broken = fmt.Errorf("%w: %v", errStreamBroken, err)
			for id, p := range m.calls {
				close(p.ch) // p is not reused
				delete(m.calls, id)
			}
			m.mu.Unlock()
			return
		}
		ev := ce.GetEvent()
		_, end := ev.GetKind().(*pluginv1.Event_Done)
		m.mu.Lock()
		p := m.calls[ce.GetId()]
		if end {
			delete(m.calls, ce.GetId())
		}
		m.mu.Unlock()
		if p != nil {
			select {
			case p.ch <- ev:
			case <-p.gone:
			}
		}
	}
}
