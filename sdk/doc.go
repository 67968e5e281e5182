// Package sdk is what a Chima plugin author uses. A plugin is a small Go
// program whose main declares its commands and calls Serve:
//
//	func main() {
//		sdk.Serve(&sdk.Plugin{
//			Name:    "hello",
//			Version: "1.0.0",
//			Commands: []sdk.Command{{
//				Name:  "hello",
//				Usage: "hello <name>",
//				Help:  "Says hello.",
//				Args:  []sdk.Arg{{Name: "name", Required: true, Rest: true}},
//				Run: func(c *sdk.Context) error {
//					return c.Reply("Hello, %s!", c.Arg("name"))
//				},
//			}},
//		})
//	}
//
// The Chima host starts the binary, parses and validates the typed arguments
// against the declaration (chat text never reaches a handler unparsed), checks
// rooms and permissions, and calls Run with a Context that can reply, report
// progress, post elsewhere, enqueue durable jobs, take locks and keep
// key-value state. Package sdktest runs a plugin through the real gRPC glue
// in a test, without a bot.
//
// The types a handler reads and sends (Output, Button, MessageRef, User,
// Job, Event, LockInfo, JobInfo, ...) are the SDK's own structs, converted
// to and from the generated protocol (package pluginv1) in one place, so a
// change of the protocol does not change a plugin's code. Fields with a
// fixed set of values are string types with constants (Status, ButtonStyle,
// JobState, Outcome, CommandOutcome).
package sdk
