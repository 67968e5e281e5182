package sdktest

import (
	"slices"
	"testing"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/sdktest/hostsuite"
)

// TestFakeHostKeepsTheHostSuiteContract runs the Host-service suite that
// the bot's real Host service passes (core/bot) against FakeHost: plugin
// authors test against what the bot does.
func TestFakeHostKeepsTheHostSuiteContract(t *testing.T) {
	f := NewFakeHost()
	f.manifest = &pluginv1.Manifest{
		Name:     "suite",
		JobKinds: []string{hostsuite.JobKind, hostsuite.OtherJobKind},
		Actions:  []*pluginv1.ActionSpec{{Name: hostsuite.Action}},
	}
	hostsuite.Run(t, hostsuite.Harness{
		Host: hostsuite.Serve(t, f),
		Room: &sdk.MessageRef{Adapter: "test", Room: "general"},
		Posted: func() []string {
			var out []string
			for _, p := range f.Posts() {
				out = append(out, p.Output.Text)
			}
			for _, u := range f.Updates() {
				out = append(out, u.Output.Text)
			}
			return out
		},
		StartJob: func(t *testing.T, id int64) {
			f.mu.Lock()
			defer f.mu.Unlock()
			i := slices.IndexFunc(f.jobs, func(j *fakeJob) bool { return j.info.GetId() == id && j.info.GetState() == "queued" })
			if i < 0 {
				t.Fatalf("job %d is not queued", id)
			}
			setState(f.jobs[i].info, "running")
		},
	})
}
