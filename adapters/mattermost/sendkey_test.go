package mattermost_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/chimaops/chima/adapters/mattermost"
	"github.com/chimaops/chima/core/chat"
)

// losesFirstPostAnswer is a transport whose first POST /posts reaches the
// server but whose answer is lost, as when the connection is cut while the
// server answers.
type losesFirstPostAnswer struct {
	lost atomic.Bool
}

func (l *losesFirstPostAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/api/v4/posts") && !l.lost.Swap(true) {
		resp.Body.Close()
		return nil, errors.New("connection reset by peer")
	}
	return resp, err
}

// A post tried again with the same chat.SendKey after its answer was lost
// is the same post: the room shows it once.
func TestARetriedPostWhoseAnswerWasLostShowsOnce(t *testing.T) {
	for name, newBackend := range map[string]func(*testing.T) backend{
		"fake": func(t *testing.T) backend { return newFakeBackend(t) },
		"real": func(t *testing.T) backend { return needReal(t) },
	} {
		t.Run(name, func(t *testing.T) {
			b := newBackend(t)
			room := b.channel(t, "sendkey-"+strings.ToLower(model.NewId()[:8]))
			_, _, token := b.bot()
			a, err := mattermost.New(mattermost.Options{URL: b.url(), Token: token, Team: b.teamName(),
				HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: &losesFirstPostAnswer{}},
				Logger:     slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			ctx := chat.WithSendKey(context.Background(), "chima-test-"+model.NewId())
			to := chat.MessageRef{Room: room}
			if _, err := a.Send(ctx, to, chat.Text("once")); err == nil {
				t.Fatal("the first attempt's answer was lost, but Send said it passed")
			}
			ref, err := a.Send(ctx, to, chat.Text("once"))
			if err != nil {
				t.Fatalf("the retry: %v", err)
			}
			list, _, err := adminOrBot(t, b, token).GetPostsForChannel(room, 0, 50, "", false)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, p := range list.Posts {
				if p.Message == "once" {
					n++
					if p.Id != ref.MessageID {
						t.Errorf("the retry returned post %s, the room has %s", ref.MessageID, p.Id)
					}
				}
			}
			if n != 1 {
				t.Fatalf("the room shows the post %d times, want once", n)
			}
		})
	}
}

// adminOrBot is a client of the bot's, to read the room.
func adminOrBot(_ *testing.T, b backend, token string) *model.Client4 {
	c := model.NewAPIv4Client(b.url())
	c.SetToken(token)
	return c
}
