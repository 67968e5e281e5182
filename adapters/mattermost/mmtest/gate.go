package mmtest

import (
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// Gate is a TCP proxy in front of a server (the fake or the real
// Mattermost) that can cut every connection and refuse new ones until it is
// opened again: the network between bot and server going down and coming
// back, which the server itself never notices.
type Gate struct {
	// URL is the gate's own address, to give the bot instead of the
	// server's.
	URL    string
	closed atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]bool
}

// NewGate starts a gate to target (an http:// URL) on loopback; it stops,
// closing every connection, when t ends.
func NewGate(t testing.TB, target string) *Gate {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &Gate{URL: "http://" + l.Addr().String(), conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if g.closed.Load() {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", u.Host)
			if err != nil {
				c.Close()
				continue
			}
			g.mu.Lock()
			g.conns[c], g.conns[up] = true, true
			g.mu.Unlock()
			wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer wg.Done()
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		g.Cut()
		wg.Wait()
	})
	return g
}

// Cut closes every connection through the gate and refuses new ones.
func (g *Gate) Cut() {
	g.closed.Store(true)
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		c.Close()
		delete(g.conns, c)
	}
}

// Open lets new connections through again.
func (g *Gate) Open() { g.closed.Store(false) }
