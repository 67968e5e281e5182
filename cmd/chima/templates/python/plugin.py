#!/usr/bin/python3
"""{{.Name}}: a Chima plugin in Python.

Chima starts this script (add it to the plugins of chima.yaml, path: this
file) and talks to it over gRPC; chima_plugin, the directory next to it, does
the protocol. Run the tests with: /usr/bin/python3 test_plugin.py

Needs Debian's python3-grpcio, python3-protobuf and python3-cryptography.
"""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the plugin
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

import chima_plugin as chima  # noqa: E402
from chima_plugin import Arg  # noqa: E402

plugin = chima.Plugin("{{.Name}}", "0.1.0", "{{.Name}}: says hello and counts greetings.")


@plugin.command("{{.Name}}", usage="{{.Name}} <name>", help="Greets someone, counting the greetings.",
                args=[Arg("name", required=True, rest=True, help="who to greet")],
                examples=["{{.Name}} world"])
def greet(call):
    # The Host service keeps state for the plugin in Chima's store: it
    # survives restarts of the plugin and of Chima.
    count = call.host.kv_increment("greetings")
    call.reply("Hello, %s! (greeting number %d)" % (call.arg("name"), count))


if __name__ == "__main__":
    sys.exit(chima.serve(plugin))
