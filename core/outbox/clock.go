package outbox

import "time"

// Clock is the outbox's time: when edits and retries are due. Tests give the
// outbox a clock they move by hand; nil in Options is the real one.
type Clock interface {
	Now() time.Time
	// At returns a channel that receives once the clock has reached t
	// (at once when it has already), and a function that releases the
	// wait early.
	At(t time.Time) (<-chan time.Time, func())
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) At(t time.Time) (<-chan time.Time, func()) {
	tm := time.NewTimer(time.Until(t))
	return tm.C, func() { tm.Stop() }
}
