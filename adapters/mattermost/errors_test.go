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
