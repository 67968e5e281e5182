"""Test a plugin's handlers without a Chima host: an in-memory Host and
run_command / run_job, which call a handler as serve would and return what
it said.

    import unittest
    from chima_plugin import testing
    import plugin  # the script, importable because of its __main__ guard

    class HelloTest(unittest.TestCase):
        def test_hello(self):
            res = testing.run_command(plugin.plugin, "hello", {"name": "world"})
            self.assertEqual(res.replies, ["Hello, world!"])
"""

import threading

from .pb import plugin_pb2 as pb
from .plugin import CommandCall, JobCall, command_done, job_done, validate_settings


class FakeHost:
    """An in-memory Host: the methods of chima_plugin.Host, with posts,
    jobs, locks and kv kept in attributes for the test to read."""

    available = True

    def __init__(self):
        self.kv = {}
        self.locks = {}  # name -> owner
        self.posts = []  # (MessageRef, Output)
        self.jobs = []  # EnqueueRequest

    def post(self, target, message, request_id=""):
        ref = target if isinstance(target, pb.MessageRef) else pb.MessageRef(room=str(target))
        out = message if isinstance(message, pb.Output) else pb.Output(text=str(message))
        self.posts.append((ref, out))
        posted = pb.MessageRef()
        posted.CopyFrom(ref)
        posted.message_id = "posted-%d" % len(self.posts)
        return posted

    def update(self, message_ref, message):
        pass

    def enqueue(self, kind, payload=b"", notify=None, origin_request_id="", queue_key="",
                title="", delay_seconds=0):
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        self.jobs.append(pb.EnqueueRequest(kind=kind, payload=payload, notify=notify,
                                           origin_request_id=origin_request_id,
                                           queue_key=queue_key, title=title,
                                           delay_seconds=int(delay_seconds)))
        return len(self.jobs)

    def cancel_job(self, job_id):
        return False

    def lock(self, name, owner, reason="", ttl_seconds=0, job_id=0):
        holder = self.locks.setdefault(name, owner)
        return holder == owner, pb.LockInfo(name=name, owner=holder, reason=reason)

    def unlock(self, name, owner, force=False):
        if self.locks.get(name) == owner or (force and name in self.locks):
            del self.locks[name]
            return True, pb.LockInfo()
        return False, pb.LockInfo(name=name, owner=self.locks.get(name, ""))

    def kv_get(self, key):
        return self.kv.get(key)

    def kv_set(self, key, value):
        self.kv[key] = value.encode("utf-8") if isinstance(value, str) else bytes(value)

    def kv_delete(self, key):
        self.kv.pop(key, None)

    def kv_list(self, prefix=""):
        return sorted(k for k in self.kv if k.startswith(prefix))

    def kv_compare_and_swap(self, key, old, value):
        old = old.encode("utf-8") if isinstance(old, str) else old
        if self.kv.get(key) != old:
            return False, self.kv.get(key)
        self.kv_set(key, value)
        return True, self.kv[key]

    def kv_increment(self, key, delta=1):
        value = int(self.kv.get(key, b"0")) + int(delta)
        self.kv[key] = str(value).encode("ascii")
        return value


class _Context:
    """What a handler's call needs of a gRPC context: never cancelled."""

    def add_callback(self, callback):
        return True

    def is_active(self):
        return True


class Result:
    """What a handler said: the events, and by kind (replies and progress as
    texts, the UserError, the Done)."""

    def __init__(self, events):
        self.events = events
        self.replies = [e.reply.output.text for e in events if e.HasField("reply")]
        self.progress = [e.progress.output.text for e in events if e.HasField("progress")]
        errors = [e.error for e in events if e.HasField("error")]
        self.error = errors[0] if errors else None
        self.done = events[-1].done if events and events[-1].HasField("done") else None

    @property
    def outcome(self):
        """The Done's outcome: "" for a command that went well, "success" for
        a job, "failure" after a UserError, "error" after a crash."""
        return self.done.outcome if self.done is not None else None


def run_command(plugin, command, args=None, host=None, user="alice",
                message=None, settings=None):
    """Runs the handler of command with args (a dict of strings, as the host
    validated them) and returns its Result. host defaults to a new FakeHost;
    message to room "general" of adapter "test"."""
    entry = plugin.commands.get(command)
    if entry is None:
        raise KeyError("%s has no command %r" % (plugin.name, command))
    request = pb.CommandRequest(
        request_id="test-request", command=command, args=args or {},
        user=pb.User(id=user, name=user, person=user),
        message=message or pb.MessageRef(adapter="test", room="general", message_id="1"),
        text=command)
    call = CommandCall(request, _Context(), threading.Event(), host or FakeHost(), settings or {})
    return Result(list(call.run(entry[1], command_done)))


def run_job(plugin, kind, payload=b"", host=None, notify=None, settings=None, job_id=1):
    """Runs the handler of job kind with payload and returns its Result."""
    handler = plugin.jobs.get(kind)
    if handler is None:
        raise KeyError("%s runs no jobs of kind %r" % (plugin.name, kind))
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    request = pb.JobRequest(
        request_id="test-job", job_id=job_id, kind=kind, payload=payload, attempt=1,
        notify=notify or pb.MessageRef(adapter="test", room="general"))
    call = JobCall(request, _Context(), threading.Event(), host or FakeHost(), settings or {})
    return Result(list(call.run(handler, job_done)))


def validate(plugin, settings):
    """What `chima config validate` hears from plugin about settings (a
    dict of strings): a list of (key, message) pairs, [] when they are
    valid, or None when the plugin does not validate its settings."""
    problems = validate_settings(plugin, settings)
    if problems is None:
        return None
    return [(p.key, p.message) for p in problems]
