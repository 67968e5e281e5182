package slack

import (
	"errors"
	"fmt"
	"testing"

	slackgo "github.com/slack-go/slack"

	"github.com/chimaops/chima/core/chat"
)

// TestSlackErrorsMapToWhatTheOutboxNeeds: the outbox retries what may pass
// later and gives up at once on what never will, so each ok:false error
// must land on the right side.
func TestSlackErrorsMapToWhatTheOutboxNeeds(t *testing.T) {
	cases := []struct {
		slackErr string
		want     error // nil: left as it is (the outbox retries it)
	}{
		{"channel_not_found", chat.ErrUnknownRoom},
		{"not_in_channel", chat.ErrUnknownRoom},
		{"invalid_auth", chat.ErrUnauthorized},
		{"missing_scope", chat.ErrUnauthorized},
		{"invalid_blocks", chat.ErrRefused},
		{"msg_too_long", chat.ErrRefused},
		{"cant_update_message", chat.ErrRefused},
		{"internal_error", nil},
		{"service_unavailable", nil},
	}
	for _, tc := range cases {
		t.Run(tc.slackErr, func(t *testing.T) {
			err := mapError(fmt.Errorf("chat.postMessage: %w", slackgo.SlackErrorResponse{Err: tc.slackErr}))
			for _, sentinel := range []error{chat.ErrUnknownRoom, chat.ErrUnauthorized, chat.ErrRefused} {
				if got := errors.Is(err, sentinel); got != (sentinel == tc.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, sentinel, got)
				}
			}
		})
	}
}
