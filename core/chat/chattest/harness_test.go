package chattest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
)

// Memory behind a connection, routes or an unordered service: the harnesses
// that exercise DropPeer, RoutePeer and Harness.Unordered, each passing the
// suite when built right (the tests here) and failing it when not
// (brokenHarnesses).

// connected is Memory behind a live connection that the peer can drop. It
// reconnects unless quitOnDrop, when its Run returns as a careless adapter's
// would.
type connected struct {
	*chattest.Memory
	drops      chan struct{}
	quitOnDrop bool
}

func (a *connected) Run(ctx context.Context, h chat.Handler) error {
	for {
		conn, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-a.drops:
				cancel()
			case <-conn.Done():
			}
		}()
		err := a.Memory.Run(conn, h)
		cancel()
		switch {
		case err != nil:
			return err
		case ctx.Err() != nil:
			return nil
		case a.quitOnDrop:
			return errors.New("connection lost")
		}
	}
}

// dropPeer drops the connection of a connected.
type dropPeer struct {
	*memoryPeer
	drops chan struct{}
}

func (p dropPeer) Drop(t *testing.T) {
	t.Helper()
	select {
	case p.drops <- struct{}{}:
	case <-time.After(chattest.Guard):
		t.Fatal("the adapter holds no connection to drop")
	}
}

func connectedHarness(quitOnDrop bool) chattest.Harness {
	h := newMemoryHarness(nil)
	h.New = func(*testing.T) (chat.Adapter, chattest.Peer) {
		m, p := newMemoryPeer()
		drops := make(chan struct{})
		return &connected{Memory: m, drops: drops, quitOnDrop: quitOnDrop}, dropPeer{p, drops}
	}
	return h
}

// hooked is Memory that receives over an HTTP route, as a webhook adapter
// does: a JSON {room, user, text} with a bearer token. open skips the check.
type hooked struct {
	*chattest.Memory
	open bool
}

const hookToken = "Bearer s3cret"

func (a hooked) Routes() []chat.Route {
	verify := func(r *http.Request, _ []byte) error {
		if !a.open && r.Header.Get("Authorization") != hookToken {
			return fmt.Errorf("hook: %w: wrong token", chat.ErrUnauthorized)
		}
		return nil
	}
	return []chat.Route{{
		Method: http.MethodPost,
		Path:   "in/{hook}",
		Verify: verify,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var in struct{ Room, User, Text string }
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			a.Inject(chat.Message{Ref: chat.MessageRef{Room: in.Room}, User: chat.User{ID: in.User}, Text: in.Text})
		}),
	}}
}

// hookPeer says things over the adapter's route.
type hookPeer struct {
	*memoryPeer
	base *string
}

func (p hookPeer) Mounted(_ *testing.T, base string) { *p.base = base }

func (p hookPeer) Say(t *testing.T, room, user, thread, text string) {
	t.Helper()
	if thread != "" {
		p.memoryPeer.Say(t, room, user, thread, text)
		return
	}
	body, _ := json.Marshal(map[string]string{"room": p.RoomID(t, room), "user": p.author(t, user).ID, "text": text})
	req, err := http.NewRequest(http.MethodPost, *p.base+"/memory/in/ci", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", hookToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("hook answered %s", res.Status)
	}
}

func hookedHarness(open bool) chattest.Harness {
	h := newMemoryHarness(nil)
	h.New = func(*testing.T) (chat.Adapter, chattest.Peer) {
		m, p := newMemoryPeer()
		return hooked{Memory: m, open: open}, hookPeer{p, new(string)}
	}
	return h
}

// shufflePeer is a service that shows posts out of order: of two posts
// waiting, the later comes first.
type shufflePeer struct {
	*memoryPeer
	held *chattest.PeerMessage
}

func (p *shufflePeer) Said(t *testing.T) chattest.PeerMessage {
	t.Helper()
	if m := p.held; m != nil {
		p.held = nil
		return *m
	}
	first := p.memoryPeer.Said(t)
	select {
	case s := <-p.posts:
		p.held = &first
		return peerMessage(s)
	default:
		return first
	}
}

func unorderedHarness(unordered bool) chattest.Harness {
	h := newMemoryHarness(nil)
	h.Unordered = unordered
	h.New = func(*testing.T) (chat.Adapter, chattest.Peer) {
		m, p := newMemoryPeer()
		return m, &shufflePeer{memoryPeer: p}
	}
	return h
}

func TestConformanceOfAReconnectingAdapter(t *testing.T) {
	chattest.RunConformance(t, connectedHarness(false))
}

func TestConformanceOfAnAdapterWithRoutes(t *testing.T) {
	chattest.RunConformance(t, hookedHarness(false))
}

func TestConformanceOfAnUnorderedService(t *testing.T) {
	chattest.RunConformance(t, unorderedHarness(true))
}

// brokenHarnesses are harnesses of broken adapters (or of a service that
// does not keep the order it is said to), run by TestBrokenAdapter.
var brokenHarnesses = map[string]chattest.Harness{
	"quitsOnDrop":          connectedHarness(true),
	"openRoute":            hookedHarness(true),
	"unorderedClaimsOrder": unorderedHarness(false),
}
