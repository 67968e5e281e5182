#!/usr/bin/python3
"""Tests of {{.Name}}'s handlers, without Chima: /usr/bin/python3 test_plugin.py"""

import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from chima_plugin import testing  # noqa: E402

import plugin  # noqa: E402


class GreetTest(unittest.TestCase):
    def test_greets_by_name_and_counts(self):
        host = testing.FakeHost()
        first = testing.run_command(plugin.plugin, "{{.Name}}", {"name": "world"}, host=host)
        self.assertEqual(first.outcome, "")
        self.assertEqual(first.replies, ["Hello, world! (greeting number 1)"])
        second = testing.run_command(plugin.plugin, "{{.Name}}", {"name": "Ada"}, host=host)
        self.assertEqual(second.replies, ["Hello, Ada! (greeting number 2)"])

    def test_describes_the_command(self):
        manifest = plugin.plugin.manifest()
        self.assertEqual(manifest.name, "{{.Name}}")
        self.assertEqual([c.name for c in manifest.commands], ["{{.Name}}"])


if __name__ == "__main__":
    unittest.main()
