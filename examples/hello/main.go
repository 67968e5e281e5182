// Command hello is the smallest useful Chima plugin: `chima hello world`
// answers "Hello, world!". Copy it to start a plugin of your own.
package main

import "github.com/chimaops/chima/sdk"

func main() { sdk.Serve(plugin()) }

func plugin() *sdk.Plugin {
	return &sdk.Plugin{
		Name:        "hello",
		Version:     "1.0.0",
		Description: "Says hello.",
		Commands: []sdk.Command{{
			Name:     "hello",
			Usage:    "hello <name>",
			Help:     "Greets someone by name.",
			Args:     []sdk.Arg{{Name: "name", Required: true, Rest: true, Help: "who to greet"}},
			Examples: []string{"hello world"},
			Run: func(c *sdk.Context) error {
				return c.Reply("Hello, %s!", c.Arg("name"))
			},
		}},
	}
}
