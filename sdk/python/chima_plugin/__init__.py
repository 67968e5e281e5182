"""chima_plugin: write a Chima plugin in Python.

    #!/usr/bin/python3
    import sys
    import chima_plugin as chima

    plugin = chima.Plugin("hello", "1.0.0", "Says hello.")

    @plugin.command("hello", usage="hello <name>", args=[chima.Arg("name", required=True, rest=True)])
    def hello(call):
        call.reply("Hello, %s!" % call.arg("name"))

    @plugin.on_validate  # what `chima config validate` runs
    def check(settings):
        return [chima.Problem("unknown setting", key=k)
                for k in settings if not k.startswith("chima_")]

    if __name__ == "__main__":
        sys.exit(chima.serve(plugin))

Chima starts the script through hashicorp/go-plugin as it starts a Go plugin:
serve does go-plugin's handshake, its automatic mutual TLS and its broker,
through which call.host (a Host) reaches Chima's Host service: post to a
room, durable jobs, locks, key-value state. Needs Debian's python3-grpcio,
python3-protobuf and python3-cryptography.
"""

from .host import Host, HostError, HostUnavailable
from .pb import plugin_pb2 as pb
from .plugin import (PROTOCOL_MINOR, Arg, Call, Cancelled, CommandCall, JobCall, Plugin, Problem,
                     UserError)
from .server import kv, serve

__all__ = [
    "Arg", "Call", "Cancelled", "CommandCall", "Host", "HostError", "HostUnavailable",
    "JobCall", "PROTOCOL_MINOR", "Plugin", "Problem", "UserError", "kv", "pb", "serve",
]
