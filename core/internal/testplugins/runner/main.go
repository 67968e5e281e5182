// Command runner is a test fixture plugin for the core platform: it runs
// other commands through Host.RunCommand (runas, recurse), says who it was
// run as (whoami), and declares a schedule from its settings (tick_cron,
// and bad_cron for a schedule whose cron is wrong) whose job says "tick".
package main

import (
	"github.com/chimaops/chima/sdk"
)

func main() { sdk.Serve(plugin()) }

func plugin() *sdk.Plugin {
	p := &sdk.Plugin{
		Name:    "runner",
		Version: "0.0.1",
		Jobs: []sdk.JobHandler{{Kind: "tick", Run: func(c *sdk.Context) error {
			return c.Reply("tick job ran: %s", c.Job.Payload)
		}}},
		Commands: []sdk.Command{
			{Name: "runas", Usage: "runas <who> <command>",
				Args: []sdk.Arg{{Name: "who", Required: true}, {Name: "command", Required: true, Rest: true}},
				Run: func(c *sdk.Context) error {
					res, err := c.RunCommand(c.Arg("command"), sdk.RunOptions{
						As: c.Arg("who"), Room: c.Source(), Reason: "asked by " + c.User().ID,
					})
					if err != nil {
						return c.Reply("runas failed: %v", err)
					}
					if res.ApprovalID != 0 {
						return c.Reply("runas %s: %s %s (approval #%d)", res.RequestID, res.Outcome, res.Detail, res.ApprovalID)
					}
					return c.Reply("runas %s: %s %s", res.RequestID, res.Outcome, res.Detail)
				}},
			{Name: "recurse", Usage: "recurse <who>", Args: []sdk.Arg{{Name: "who", Required: true}},
				Run: func(c *sdk.Context) error {
					res, err := c.RunCommand("recurse "+c.Arg("who"), sdk.RunOptions{As: c.Arg("who"), Room: c.Source()})
					if err != nil {
						return c.Reply("recursion stopped: %v", err)
					}
					return c.Reply("recurse returned %s", res.Outcome)
				}},
			{Name: "whoami", Usage: "whoami", Run: func(c *sdk.Context) error {
				u := c.User()
				return c.Reply("whoami id=%s person=%s triggered_by=%s", u.ID, u.Person, c.TriggeredBy())
			}},
		},
	}
	p.Configure = func(s map[string]string) error {
		p.Schedules = nil
		if cron := s["tick_cron"]; cron != "" {
			p.Schedules = append(p.Schedules, sdk.Schedule{
				Name: "tick", Cron: cron, JobKind: "tick", Payload: []byte(s["tick_payload"]),
				CatchUp: s["tick_catch_up"] == "true", Notify: &sdk.MessageRef{Room: s["tick_room"]},
				Title: "the tick", Help: "says tick",
			})
		}
		if cron := s["bad_cron"]; cron != "" {
			p.Schedules = append(p.Schedules, sdk.Schedule{Name: "broken", Cron: cron, JobKind: "tick"})
		}
		if kind := s["bad_kind"]; kind != "" {
			p.Schedules = append(p.Schedules, sdk.Schedule{Name: "unknown-kind", Cron: "@daily", JobKind: kind})
		}
		return nil
	}
	return p
}
