package sdktest

import (
	"slices"

	"github.com/chimaops/chima/sdk"
)

// Commands are the commands the plugin declared, as the host received them
// at Describe, in the SDK's own types (Run is nil): what chat help and the
// host's argument parsing will see. Prefer it to Manifest, which is the
// protocol's message and changes with the protocol.
func (h *Harness) Commands() []sdk.Command {
	specs := h.Manifest.GetCommands()
	cmds := make([]sdk.Command, 0, len(specs))
	for _, s := range specs {
		c := sdk.Command{
			Name: s.GetName(), Aliases: slices.Clone(s.GetAliases()), Usage: s.GetUsage(), Help: s.GetHelp(),
			Permission: s.GetPermission(), Pattern: s.GetPattern(), Examples: slices.Clone(s.GetExamples()),
		}
		for _, a := range s.GetArgs() {
			c.Args = append(c.Args, sdk.Arg{
				Name: a.GetName(), Type: sdk.ArgType(a.GetType()), Required: a.GetRequired(),
				Default: a.GetDefault(), Enum: slices.Clone(a.GetEnum()), Secret: a.GetSecret(), Rest: a.GetRest(),
				Help: a.GetHelp(), Pattern: a.GetPattern(),
			})
		}
		cmds = append(cmds, c)
	}
	return cmds
}
