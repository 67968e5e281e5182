package sdk_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/sdktest"
	"github.com/chimaops/chima/sdk/wire"
)

// restorePlugin asks for confirmation, or for approval by release managers,
// until the host runs it again approved.
func restorePlugin(ran *int) *sdk.Plugin {
	return &sdk.Plugin{
		Name: "restore",
		Commands: []sdk.Command{{
			Name: "restore", Args: []sdk.Arg{{Name: "target", Required: true}},
			Run: func(c *sdk.Context) error {
				if a := c.Approval(); a != nil {
					*ran++
					return c.Reply("restoring %s, approved by %v", c.Arg("target"), a.Approvers)
				}
				if c.Arg("target") == "prod" {
					return sdk.NeedApproval(sdk.ApprovalOptions{Approvers: []string{"release-managers"}, Count: 2, TTL: 90 * time.Second, Reason: "prod is protected"})
				}
				return sdk.NeedConfirmation("this overwrites " + c.Arg("target"))
			},
		}},
	}
}

func TestACommandThatNeedsApprovalSaysSoAndRunsOnlyOnceApproved(t *testing.T) {
	ran := 0
	h := sdktest.New(t, restorePlugin(&ran))
	tests := []struct {
		name, target string
		want         *sdk.ApprovalRequiredError
	}{
		{"approval by others", "prod", &sdk.ApprovalRequiredError{Options: sdk.ApprovalOptions{
			Approvers: []string{"release-managers"}, Count: 2, TTL: 90 * time.Second, Reason: "prod is protected"}}},
		{"the requester's confirmation", "scratch", &sdk.ApprovalRequiredError{Options: sdk.ApprovalOptions{Reason: "this overwrites scratch"}, Confirm: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.Command("restore", sdktest.Args{"target": tt.target})
			got := res.ApprovalNeeded
			if got == nil {
				t.Fatalf("no ApprovalNeeded; events: %v", res.Events)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ApprovalNeeded = %v, want %v", got, tt.want)
			}
			if len(res.Errors) != 0 || res.Done.Outcome != "" {
				t.Errorf("asking for approval is not a failure: errors %v, done %v", res.Errors, res.Done)
			}
			if ran != 0 {
				t.Errorf("the command acted before it was approved")
			}
		})
	}
	res := h.ApprovedCommand("restore", sdktest.Args{"target": "prod"}, &sdk.Approval{ID: 3, Requester: "alice", Approvers: []string{"bob", "carol"}})
	if ran != 1 || res.ApprovalNeeded != nil {
		t.Fatalf("approved command: ran %d times, asked again: %v", ran, res.ApprovalNeeded)
	}
	if want := "restoring prod, approved by [bob carol]"; res.Text() != want {
		t.Errorf("reply = %q, want %q", res.Text(), want)
	}
}

func TestRunCommandReachesTheHostWithTheRequestItRunsFor(t *testing.T) {
	p := &sdk.Plugin{Name: "ci", Commands: []sdk.Command{{Name: "ship", Run: func(c *sdk.Context) error {
		res, err := c.RunCommand("deploy demo/main to staging", sdk.RunOptions{
			As: "alice", Room: &sdk.MessageRef{Adapter: "shell", Room: "ops"}, Reason: "green build",
		})
		if err != nil {
			return err
		}
		return c.Reply("%s %s", res.Outcome, res.RequestID)
	}}}}
	h := sdktest.New(t, p)
	res := h.Command("ship", nil)
	runs := h.Host.Runs()
	if len(runs) != 1 {
		t.Fatalf("host saw %d RunCommand calls, want 1 (reply %q, done %v)", len(runs), res.Text(), res.Done)
	}
	r := runs[0]
	if r.Text != "deploy demo/main to staging" || r.As != "alice" || r.Room.Room != "ops" || r.Reason != "green build" || r.RequestID == "" {
		t.Errorf("RunCommand request = %v", r)
	}
	if !strings.HasPrefix(res.Text(), "ok run-") {
		t.Errorf("reply = %q, want the host's outcome and request id", res.Text())
	}
}

func TestAnInterruptedJobReachesOnJobInterruptedOrTheOldEventHandler(t *testing.T) {
	job := &sdk.Job{JobID: 7, Kind: "deploy", Payload: []byte("p"), Notify: &sdk.MessageRef{Adapter: "shell", Room: "ops"}}
	tests := []struct {
		name   string
		plugin func(got *int64) *sdk.Plugin
	}{
		{"OnJobInterrupted", func(got *int64) *sdk.Plugin {
			return &sdk.Plugin{Name: "j", OnJobInterrupted: func(c *sdk.Context) error {
				*got = c.Job.JobID
				return nil
			}}
		}},
		{"an event handler of minors before 7", func(got *int64) *sdk.Plugin {
			return &sdk.Plugin{Name: "j", Events: []sdk.EventHandler{{Type: sdk.EventJobInterrupted, Run: func(c *sdk.Context) error {
				j, err := c.InterruptedJob()
				if err != nil {
					return err
				}
				*got = j.JobID
				return nil
			}}}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got int64
			h := sdktest.New(t, tt.plugin(&got))
			if !slices.Contains(h.Manifest.GetCapabilities(), wire.CapabilityJobInterrupted) {
				t.Errorf("manifest capabilities %v lack %q", h.Manifest.GetCapabilities(), wire.CapabilityJobInterrupted)
			}
			res := h.JobInterrupted(job)
			if got != 7 || res.Done.Outcome == "error" {
				t.Errorf("handler saw job %d, done %v", got, res.Done)
			}
		})
	}
	h := sdktest.New(t, &sdk.Plugin{Name: "none"})
	if slices.Contains(h.Manifest.GetCapabilities(), wire.CapabilityJobInterrupted) {
		t.Errorf("a plugin with no handler claims %q", wire.CapabilityJobInterrupted)
	}
}

func TestSchedulesSetByConfigureAreInTheManifest(t *testing.T) {
	p := &sdk.Plugin{Name: "backup", Jobs: []sdk.JobHandler{{Kind: "backup", Run: func(*sdk.Context) error { return nil }}}}
	p.Configure = func(s map[string]string) error {
		p.Schedules = []sdk.Schedule{{Name: "nightly-" + s["target"], Cron: "0 3 * * *", JobKind: "backup", Payload: []byte(s["target"]), Timezone: "Europe/Berlin", CatchUp: true, QueueKey: "backup:" + s["target"]}}
		return nil
	}
	h := sdktest.New(t, p, map[string]string{"target": "db"})
	got := h.Manifest.GetSchedules()
	if len(got) != 1 {
		t.Fatalf("manifest schedules = %v, want 1", got)
	}
	s := got[0]
	if s.GetName() != "nightly-db" || s.GetCron() != "0 3 * * *" || s.GetJobKind() != "backup" || string(s.GetPayload()) != "db" ||
		s.GetTimezone() != "Europe/Berlin" || !s.GetCatchUp() || s.GetQueueKey() != "backup:db" {
		t.Errorf("schedule = %v", s)
	}
}

func TestKVCreateCompareAndSwapAndIncrementThroughTheHost(t *testing.T) {
	var log []string
	p := &sdk.Plugin{Name: "kv", Commands: []sdk.Command{{Name: "kv", Run: func(c *sdk.Context) error {
		kv := c.KV()
		created, cur, err := kv.Create("k", []byte("a"))
		log = append(log, fmt.Sprint("create ", created, " ", string(cur), " ", err))
		created, cur, err = kv.Create("k", []byte("b"))
		log = append(log, fmt.Sprint("create ", created, " ", string(cur), " ", err))
		swapped, cur, err := kv.CompareAndSwap("k", []byte("x"), []byte("c"))
		log = append(log, fmt.Sprint("swap ", swapped, " ", string(cur), " ", err))
		swapped, cur, err = kv.CompareAndSwap("k", []byte("a"), []byte("c"))
		log = append(log, fmt.Sprint("swap ", swapped, " ", string(cur), " ", err))
		for range 2 {
			n, err := kv.Increment("seq", 5)
			log = append(log, fmt.Sprint("incr ", n, " ", err))
		}
		return nil
	}}}}
	sdktest.New(t, p).Command("kv", nil)
	want := []string{"create true a <nil>", "create false a <nil>", "swap false a <nil>", "swap true c <nil>", "incr 5 <nil>", "incr 10 <nil>"}
	if !slices.Equal(log, want) {
		t.Errorf("got %q, want %q", log, want)
	}
}
