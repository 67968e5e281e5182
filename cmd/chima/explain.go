package main

import (
	"encoding/json"
	"os"

	"github.com/spf13/cobra"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/policy"
	"github.com/chimaops/chima/core/router"
)

// explanation is what `chima explain` prints: how the router understood a
// message and whether policy would let it run, without running it.
type explanation struct {
	Message    string            `json:"message"`
	Adapter    string            `json:"adapter"`
	Room       string            `json:"room"`
	User       string            `json:"user"`
	Addressed  bool              `json:"addressed"`
	Command    string            `json:"command_text,omitempty"`
	Kind       string            `json:"kind,omitempty"`
	Plugin     string            `json:"plugin,omitempty"`
	Name       string            `json:"command,omitempty"`
	Args       map[string]string `json:"args,omitempty"`
	Permission string            `json:"permission,omitempty"`
	Allowed    *bool             `json:"allowed,omitempty"`
	Reason     string            `json:"reason,omitempty"`
	Roles      []string          `json:"roles,omitempty"`
	Problem    string            `json:"problem,omitempty"`
	Suggestion string            `json:"suggestion,omitempty"`
	Usage      string            `json:"usage,omitempty"`
	Topic      string            `json:"help_topic,omitempty"`
}

func newExplainCmd(g *globalFlags) *cobra.Command {
	var adapter, room, user string
	var direct bool
	cmd := &cobra.Command{
		Use:   `explain [--adapter A] [--room R] [--user U] "<message>"`,
		Short: "Print, as JSON, how the bot understands a message and whether it would be allowed, without running it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openTool(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			defer a.close()
			name, room, user := a.console(room, user)
			ex := explain(a.router, a.policy, chat.Message{
				Ref:    chat.MessageRef{Adapter: firstNonEmpty(adapter, name), Room: room, MessageID: "m1"},
				User:   chat.User{ID: user, Name: user},
				Text:   args[0],
				Direct: direct,
			})
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(ex)
		},
	}
	cmd.Flags().StringVar(&adapter, "adapter", "", "name of the adapter the message comes from (default: the shell adapter's)")
	cmd.Flags().StringVar(&room, "room", "", "room the message comes from (default: the shell adapter's room)")
	cmd.Flags().StringVar(&user, "user", "", "user id that sends it (default: the shell adapter's user)")
	cmd.Flags().BoolVar(&direct, "direct", false, "treat the message as a direct message to the bot")
	return cmd
}

func explain(r *router.Router, p *policy.Policy, m chat.Message) explanation {
	ex := explanation{Message: m.Text, Adapter: m.Ref.Adapter, Room: m.Ref.Room, User: m.User.ID}
	text, ok := r.Addressed(m)
	if !ok {
		return ex
	}
	ex.Addressed, ex.Command = true, text
	res := r.Parse(text)
	ex.Kind = res.Kind.String()
	ex.Problem, ex.Suggestion, ex.Usage = res.Problem, res.Suggestion, res.Usage
	switch res.Kind {
	case router.Help:
		ex.Topic = res.Topic
		ex.Allowed = ptr(true)
	case router.Matched:
		ex.Plugin, ex.Name = res.Plugin, res.Command.GetName()
		// Every declared argument is shown, "" for one that is absent, so
		// the JSON says what the command could have been given too.
		ex.Args = map[string]string{}
		for _, a := range res.Command.GetArgs() {
			v := res.Args[a.GetName()]
			if a.GetSecret() && v != "" {
				v = "[secret]"
			}
			ex.Args[a.GetName()] = v
		}
		// The text as typed holds the secret too.
		ex.Message, ex.Command = res.MaskSecrets(ex.Message), res.MaskSecrets(ex.Command)
		dec := p.Check(policy.Request{
			Adapter: m.Ref.Adapter, Room: m.Ref.Room, UserID: m.User.ID,
			Plugin: res.Plugin, Command: res.Command.GetName(), Permission: res.Command.GetPermission(), Direct: m.Direct,
		})
		ex.Permission, ex.Allowed, ex.Reason, ex.Roles = dec.Permission, ptr(dec.Allowed), dec.Reason, dec.Roles
	}
	return ex
}

func ptr[T any](v T) *T { return &v }
