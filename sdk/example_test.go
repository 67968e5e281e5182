package sdk_test

import (
	"fmt"
	"strconv"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/sdktest"
)

// A command that replies. sdktest runs the plugin through the real gRPC
// glue, with arguments already parsed, as the bot hands them over.
func Example_command() {
	h := sdktest.Start(&sdk.Plugin{
		Name: "hello",
		Commands: []sdk.Command{{
			Name:  "hello",
			Usage: "hello <name>",
			Args:  []sdk.Arg{{Name: "name", Required: true, Rest: true}},
			Run: func(c *sdk.Context) error {
				return c.Reply("Hello, %s!", c.Arg("name"))
			},
		}},
	})
	defer h.Close()
	fmt.Println(h.Command("hello", sdktest.Args{"name": "world"}).Text())
	// Output: Hello, world!
}

// Typed arguments: the bot checks an Int, a Duration and an Enum before
// the handler runs; the handler reads them typed.
func Example_typedArgs() {
	h := sdktest.Start(&sdk.Plugin{
		Name: "scale",
		Commands: []sdk.Command{{
			Name:  "scale",
			Usage: "scale <app> <replicas> [for <duration>]",
			Args: []sdk.Arg{
				{Name: "app", Required: true, Enum: []string{"web", "worker"}},
				{Name: "replicas", Type: sdk.Int, Required: true},
				{Name: "for", Type: sdk.Duration, Default: "1h"},
			},
			Run: func(c *sdk.Context) error {
				return c.Reply("%s: %d replicas for %s", c.Arg("app"), c.Int("replicas"), c.Duration("for"))
			},
		}},
	})
	defer h.Close()
	fmt.Println(h.Command("scale", sdktest.Args{"app": "web", "replicas": "3", "for": "30m"}).Text())
	// Output: web: 3 replicas for 30m0s
}

// A rich reply: the SDK's own Output, with a status and a button, whose
// fixed values are Go constants. The test reads the reply back as the same
// type.
func Example_output() {
	h := sdktest.Start(&sdk.Plugin{
		Name:    "status",
		Actions: []sdk.Action{{Name: "refresh", Run: func(c *sdk.Context) error { return nil }}},
		Commands: []sdk.Command{{
			Name: "status",
			Run: func(c *sdk.Context) error {
				return c.ReplyOutput(&sdk.Output{
					Title:   "web is up",
					Status:  sdk.StatusGood,
					Fields:  []*sdk.Field{{Title: "Replicas", Value: "3", Short: true}},
					Buttons: []*sdk.Button{sdk.ActionButton("Refresh", "refresh", "web", sdk.ButtonPrimary)},
				})
			},
		}},
	})
	defer h.Close()
	o := h.Command("status", nil).Replies[0]
	fmt.Println(o.Title, o.Status, o.Fields[0].Value, o.Buttons[0].Label, o.Buttons[0].Style)
	// Output: web is up good 3 Refresh primary
}

// A command that enqueues a durable job; the bot's workers run it later
// (RunEnqueued plays them), and the job reports to the room it was given.
func Example_job() {
	h := sdktest.Start(&sdk.Plugin{
		Name: "build",
		Commands: []sdk.Command{{
			Name: "build",
			Args: []sdk.Arg{{Name: "ref", Required: true}},
			Run: func(c *sdk.Context) error {
				id, err := c.Enqueue("build", []byte(c.Arg("ref")), sdk.EnqueueOptions{Title: "build " + c.Arg("ref")})
				if err != nil {
					return err
				}
				return c.Reply("build of %s queued as job %d", c.Arg("ref"), id)
			},
		}},
		Jobs: []sdk.JobHandler{{
			Kind: "build",
			Run: func(c *sdk.Context) error {
				return c.Reply("built %s", c.Job.Payload)
			},
		}},
	})
	defer h.Close()
	fmt.Println(h.Command("build", sdktest.Args{"ref": "main"}).Text())
	for _, res := range h.RunEnqueued() {
		fmt.Println(res.Text())
	}
	// Output:
	// build of main queued as job 1
	// built main
}

// Key-value state kept by the bot for the plugin, across restarts.
func Example_kv() {
	h := sdktest.Start(&sdk.Plugin{
		Name: "count",
		Commands: []sdk.Command{{
			Name: "count",
			Run: func(c *sdk.Context) error {
				n, err := c.KV().Increment("count", 1)
				if err != nil {
					return err
				}
				if err := c.KV().Set("last", []byte(strconv.FormatInt(n, 10))); err != nil {
					return err
				}
				return c.Reply("count is %d", n)
			},
		}},
	})
	defer h.Close()
	h.Command("count", nil)
	fmt.Println(h.Command("count", nil).Text())
	last, _ := h.Host.KVValue("last")
	fmt.Printf("last = %s\n", last)
	// Output:
	// count is 2
	// last = 2
}

// A lock: one deploy per environment at a time. The second taker is told
// who holds it.
func Example_lock() {
	h := sdktest.Start(&sdk.Plugin{
		Name: "deploy",
		Commands: []sdk.Command{{
			Name: "deploy",
			Args: []sdk.Arg{{Name: "env", Required: true}, {Name: "who", Required: true}},
			Run: func(c *sdk.Context) error {
				ok, holder, err := c.Lock("deploy:"+c.Arg("env"), sdk.LockOptions{Owner: c.Arg("who"), Reason: "deploying"})
				if err != nil {
					return err
				}
				if !ok {
					return c.Reply("%s is locked by %s", c.Arg("env"), holder.Owner)
				}
				return c.Reply("%s deploys %s", c.Arg("who"), c.Arg("env"))
			},
		}},
	})
	defer h.Close()
	fmt.Println(h.Command("deploy", sdktest.Args{"env": "live", "who": "alice"}).Text())
	fmt.Println(h.Command("deploy", sdktest.Args{"env": "live", "who": "bob"}).Text())
	// Output:
	// alice deploys live
	// live is locked by alice
}
