#!/usr/bin/python3
"""pyhello: a Chima plugin written in Python, on the chima_plugin library
(sdk/python/chima_plugin).

Commands:
  pyhello <name>         replies "Hello from Python, <name>!"
  pycount <n>            streams n progress events, then replies "counted to n"
  pynote set <key> <v>   stores a note in the Host's key-value store, under a lock
  pynote get <key>       reads it back
  pynote report          enqueues a durable job (kind pynote.report) that lists
                         the notes and posts them to the room with Host.Post

Settings (plugins[].settings in chima.yaml), checked by `chima config validate`:
  greeting               the word pyhello greets with (default "Hello")

Needs Debian's python3-grpcio, python3-protobuf and python3-cryptography;
run with /usr/bin/python3. Chima starts it; run by hand it explains itself.
"""

import logging
import os
import sys

# Do not litter the source tree with __pycache__ when run from a checkout.
sys.dont_write_bytecode = True

# chima_plugin: next to this script (as `chima plugin new` lays it out), or
# the repository's sdk/python.
HERE = os.path.dirname(os.path.realpath(__file__))
for _where in (HERE, os.path.join(HERE, "..", "..", "sdk", "python")):
    if os.path.isdir(os.path.join(_where, "chima_plugin")):
        sys.path.insert(0, os.path.abspath(_where))
        break

import chima_plugin as chima  # noqa: E402
from chima_plugin import Arg, UserError, kv  # noqa: E402

PYCOUNT_MAX = 100
PYCOUNT_STEP_SECONDS = 0.1
NOTE_PREFIX = "note/"
REPORT_KIND = "pynote.report"
GREETING_MAX = 40
SETTINGS = ("greeting",)

plugin = chima.Plugin("pyhello", "1.1.0",
                      "Says hello from a Python process, and keeps notes through the Host service.")
log = logging.getLogger("pyhello")
greeting = "Hello"


@plugin.on_validate
def check_settings(settings):
    """The problems with settings, each naming its key: `chima config
    validate` prints them, and configure refuses a start on the first. The
    host adds settings of its own, chima_*, to every plugin's."""
    problems = [chima.Problem("unknown setting (known: %s)" % ", ".join(SETTINGS), key=k)
                for k in sorted(settings) if k not in SETTINGS and not k.startswith("chima_")]
    g = settings.get("greeting")
    if g is not None and not (g.strip() and len(g) <= GREETING_MAX and "\n" not in g):
        problems.append(chima.Problem("must be one line of 1 to %d characters, not %r"
                                      % (GREETING_MAX, g), key="greeting"))
    return problems


@plugin.on_configure
def configure(settings):
    global greeting
    problems = check_settings(settings)
    if problems:
        raise ValueError("settings.%s: %s" % (problems[0].key, problems[0].message))
    greeting = settings.get("greeting", "Hello")


@plugin.command("pyhello", usage="pyhello <name>", help="Greets someone by name, from Python.",
                args=[Arg("name", required=True, rest=True, help="who to greet")],
                examples=["pyhello world"])
def pyhello(call):
    call.reply("%s from Python, %s!" % (greeting, call.arg("name")))


@plugin.command("pycount", usage="pycount <n>", help="Counts to n, streaming progress as it goes.",
                args=[Arg("n", type="int", required=True, help="how far to count, 1 to %d" % PYCOUNT_MAX)],
                examples=["pycount 5"])
def pycount(call):
    raw = call.arg("n")
    try:
        n = int(raw)
    except ValueError:
        raise UserError("n must be a whole number, not %r" % raw, argument="n")
    if not 1 <= n <= PYCOUNT_MAX:
        raise UserError("n must be between 1 and %d" % PYCOUNT_MAX, detail="got %d" % n, argument="n")
    for i in range(1, n + 1):
        call.progress("count", "%d/%d" % (i, n))
        if i < n:
            call.sleep(PYCOUNT_STEP_SECONDS)
    call.reply("counted to %d" % n)


@plugin.command("pynote", usage="pynote set <key> <text> | pynote get <key> | pynote report",
                help="Keeps short notes in Chima's key-value store; report lists them from a job.",
                args=[Arg("action", type="enum", required=True, choices=["set", "get", "report"],
                          help="what to do"),
                      Arg("key", pattern=r"[A-Za-z0-9_.-]{1,64}", help="the note's name"),
                      Arg("text", rest=True, help="the note (for set)")],
                examples=["pynote set deploy-freeze until Friday", "pynote get deploy-freeze",
                          "pynote report"])
def pynote(call):
    action, key, text = call.arg("action"), call.arg("key"), call.arg("text")
    if action == "report":
        job_id = call.host.enqueue(REPORT_KIND, notify=call.message,
                                   origin_request_id=call.request_id,
                                   queue_key=REPORT_KIND, title="report of pyhello's notes")
        call.reply("report queued as job %d" % job_id)
        return
    if not key:
        raise UserError("pynote %s needs a key" % action, argument="key")
    if action == "get":
        value = call.host.kv_get(NOTE_PREFIX + key)
        if value is None:
            raise UserError("no note %r" % key, argument="key")
        call.reply("%s: %s" % (key, value.decode("utf-8")))
        return
    if not text:
        raise UserError("pynote set %s needs the text of the note" % key, argument="text")
    # The lock keeps two writers of one note from interleaving (one Chima
    # or several replicas on one store); it expires by itself if this
    # process dies holding it.
    lock, owner = "pynote/" + key, "request " + call.request_id
    acquired, holder = call.host.lock(lock, owner, reason="writing note " + key, ttl_seconds=30)
    if not acquired:
        raise UserError("note %r is being written (%s)" % (key, holder.reason or holder.owner))
    try:
        old = call.host.kv_get(NOTE_PREFIX + key)
        call.host.kv_set(NOTE_PREFIX + key, text)
    finally:
        call.host.unlock(lock, owner)
    call.reply("noted %s%s" % (key, " (replacing the old note)" if old is not None else ""))


@plugin.job(REPORT_KIND)
def report(job):
    keys = sorted(job.host.kv_list(NOTE_PREFIX))
    lines = []
    for k in keys:
        value = job.host.kv_get(k)
        if value is not None:
            lines.append("%s = %s" % (k[len(NOTE_PREFIX):], value.decode("utf-8")))
    text = "pyhello notes (%d): %s" % (len(lines), "; ".join(lines) if lines else "none")
    job.host.post(job.notify, text, request_id=job.request_id)
    log.info("report posted", extra=kv(job_id=job.job_id, notes=len(lines)))
    return "%d notes" % len(lines)


if __name__ == "__main__":
    sys.exit(chima.serve(plugin, log_level_env="PYHELLO_LOG_LEVEL"))
