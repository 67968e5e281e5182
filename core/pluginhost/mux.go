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

var (
	// errStreamBroken means the Multiplex stream ended under a call.
	errStreamBroken = errors.New("plugin stream broken")
	// errNotSent means a call never reached the plugin: its stream (or
	// process) had ended before the call was sent.
	errNotSent = errors.New("plugin gone before the call was sent")
)

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

// pending is one call in flight: a mailbox that recvLoop appends to and
// the caller drains. recvLoop never blocks on it, so a caller slowed down by
// its chat service (rate limits) never holds up the plugin's other calls.
type pending struct {
	mu     sync.Mutex
	queue  []*pluginv1.Event
	broken bool
	wake   chan struct{} // holds a token while the queue may be non-empty
}

// pendings are reused: most calls are short and end with Done.
var pendings = sync.Pool{New: func() any { return &pending{wake: make(chan struct{}, 1)} }}

func (p *pending) push(ev *pluginv1.Event) {
	p.mu.Lock()
	p.queue = append(p.queue, ev)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// fail tells the caller the stream ended.
func (p *pending) fail() {
	p.mu.Lock()
	p.broken = true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// pop takes the next event; ok is false when there is none, broken then
// says whether none will come.
func (p *pending) pop() (ev *pluginv1.Event, ok, broken bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) > 0 {
		ev = p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		return ev, true, false
	}
	return nil, false, p.broken
}

// recycle returns p to the pool once its call ended with Done (recvLoop
// forgot it before delivering Done, so nobody else holds it).
func (p *pending) recycle() {
	p.queue, p.broken = p.queue[:0], false
	select {
	case <-p.wake:
	default:
	}
	pendings.Put(p)
}

// call sends c and feeds its events to fn until Done, the stream breaks or
// ctx ends (then the plugin is told to cancel the call).
func (m *muxClient) call(ctx context.Context, c *pluginv1.Call, fn func(*pluginv1.Event)) error {
	id := m.next.Add(1)
	p := pendings.Get().(*pending)
	m.mu.Lock()
	if m.broken != nil {
		err := m.broken
		m.mu.Unlock()
		pendings.Put(p)
		return fmt.Errorf("%w: %w", errNotSent, err)
	}
	m.calls[id] = p
	m.mu.Unlock()

	c.Id = id
	m.sendMu.Lock()
	err := m.stream.Send(c)
	m.sendMu.Unlock()
	if err != nil {
		m.forget(id) // p is not reused: recvLoop may still hold it
		return fmt.Errorf("%w: %w: send: %v", errNotSent, errStreamBroken, err)
	}
	for {
		ev, ok, broken := p.pop()
		switch {
		case ok:
			fn(ev)
			if _, end := ev.GetKind().(*pluginv1.Event_Done); end {
				p.recycle()
				return nil
			}
			continue
		case broken:
			return m.brokenErr()
		}
		select {
		case <-p.wake:
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
		ev, ok, broken := p.pop()
		switch {
		case ok:
			fn(ev)
			if _, end := ev.GetKind().(*pluginv1.Event_Done); end {
				p.recycle()
				return
			}
			continue
		case broken:
			return
		}
		select {
		case <-p.wake:
		case <-t.C:
			m.forget(id) // p is not reused: recvLoop may still hold it
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
				p.fail()
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
			p.push(ev)
		}
	}
}
