package mattermost

import (
	"errors"
	"net/http"
	"testing"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/chimaops/chima/core/chat"
)

// TestRESTErrorsMapToWhatTheOutboxNeeds: the outbox retries what may pass
// later (5xx, timeouts) and gives up at once on the server's refusals.
func TestRESTErrorsMapToWhatTheOutboxNeeds(t *testing.T) {
	cases := []struct {
		status int
		want   error // nil: left as it is (the outbox retries it)
	}{
		{http.StatusNotFound, chat.ErrUnknownRoom},
		{http.StatusForbidden, chat.ErrUnknownRoom},
		{http.StatusUnauthorized, chat.ErrUnauthorized},
		{http.StatusBadRequest, chat.ErrRefused},
		{http.StatusRequestEntityTooLarge, chat.ErrRefused},
		{http.StatusRequestTimeout, nil},
		{http.StatusInternalServerError, nil},
		{http.StatusBadGateway, nil},
	}
	for _, tc := range cases {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			err := apiError("create post", &model.Response{StatusCode: tc.status, Header: http.Header{}},
				model.NewAppError("CreatePost", "some.error", nil, "", tc.status), chat.ErrUnknownRoom)
			for _, sentinel := range []error{chat.ErrUnknownRoom, chat.ErrUnauthorized, chat.ErrRefused} {
				if got := errors.Is(err, sentinel); got != (sentinel == tc.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, sentinel, got)
				}
			}
		})
	}
	var rl *chat.RetryAfterError
	if err := apiError("create post", &model.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"3"}}}, errors.New("429"), nil); !errors.As(err, &rl) {
		t.Errorf("429: %v, want a RetryAfterError", err)
	}
}

// TestButtonsSignedBeforeARestartStillVerifyAfterIt: without
// action_secret_env, the key comes from the bot's token, so the adapter a
// restart builds accepts the buttons its predecessor posted, and an adapter
// with another token does not.
func TestButtonsSignedBeforeARestartStillVerifyAfterIt(t *testing.T) {
	build := func(token string) *Adapter {
		t.Helper()
		a, err := Factory(chat.Setup{
			Name: "mattermost",
			Decode: func(v any) error {
				c := v.(*Config)
				c.URL, c.TokenEnv, c.Team, c.ActionsURL = "http://127.0.0.1:1", "T", "acme", "http://127.0.0.1:2"
				return nil
			},
			Secret: func(string) (string, error) { return token, nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		return a.(*Adapter)
	}
	before, after, other := build("token-1"), build("token-1"), build("token-2")
	if got, want := after.sign("chima.act:deploy:cancel", "42"), before.sign("chima.act:deploy:cancel", "42"); got != want {
		t.Errorf("the restarted adapter signs the button %q, its predecessor %q", got, want)
	}
	if other.sign("chima.act:deploy:cancel", "42") == before.sign("chima.act:deploy:cancel", "42") {
		t.Error("an adapter with another token signs buttons with the same key")
	}
}
