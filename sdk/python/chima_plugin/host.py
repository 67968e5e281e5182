"""The Host service: what a plugin asks of Chima (post, jobs, locks, KV).

Chima serves it back to each plugin over go-plugin's broker; the library
dials it while it answers Describe and hands it to every call as call.host.
Every method raises HostError (with the gRPC status) when the host refuses
or cannot be reached, and HostUnavailable when it serves no Host service at
all (`chima explain`, `chima config validate`).
"""

import grpc

from .pb import plugin_pb2 as pb
from .pb import plugin_pb2_grpc as pb_grpc

# Bounds one Host call, so that a host that stopped answering fails the call
# instead of hanging it. Not an expectation of speed.
DEFAULT_TIMEOUT = 30.0


class HostError(Exception):
    """A Host call failed; code is the grpc.StatusCode."""

    def __init__(self, method, err):
        code = err.code() if isinstance(err, grpc.RpcError) else None
        details = err.details() if isinstance(err, grpc.RpcError) else str(err)
        super().__init__("host %s: %s: %s" % (method, code.name if code else "error", details))
        self.method, self.code, self.details = method, code, details


class HostUnavailable(HostError):
    """The host serves no Host service to this plugin (id 0 in Describe)."""

    def __init__(self, method):
        Exception.__init__(self, "host %s: the host serves no Host service here" % method)
        self.method, self.code, self.details = method, None, "no host service"


def output(text_or_output):
    """An Output from a string (its text) or an Output as it is."""
    if isinstance(text_or_output, pb.Output):
        return text_or_output
    return pb.Output(text=str(text_or_output))


def _ref(target):
    """A MessageRef from a MessageRef, or from a room name (the room of the
    adapter the host picks: its first)."""
    if target is None or isinstance(target, pb.MessageRef):
        return target
    return pb.MessageRef(room=str(target))


class Host:
    """A client of the Host service over one gRPC channel.

    channel is None when the host serves none; every call then raises
    HostUnavailable. stub is the generated HostStub, for calls this wrapper
    does not cover."""

    def __init__(self, channel, timeout=DEFAULT_TIMEOUT):
        self.channel = channel
        self.stub = pb_grpc.HostStub(channel) if channel is not None else None
        self.timeout = timeout

    @property
    def available(self):
        """Whether the host serves a Host service to this plugin."""
        return self.stub is not None

    def _call(self, method, request):
        if self.stub is None:
            raise HostUnavailable(method)
        try:
            return getattr(self.stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as err:
            raise HostError(method, err) from None

    # -- chat --

    def post(self, target, message, request_id=""):
        """Posts message (text or an Output) to target (a MessageRef, such as
        a call's message or a job's notify: the same room and thread; or a
        room name). Returns the posted message's MessageRef."""
        return self._call("Post", pb.PostRequest(
            target=_ref(target), output=output(message), request_id=request_id)).message

    def update(self, message_ref, message):
        """Replaces a message the plugin posted (progress on its own)."""
        self._call("Update", pb.UpdateRequest(message=message_ref, output=output(message)))

    # -- jobs --

    def enqueue(self, kind, payload=b"", notify=None, origin_request_id="", queue_key="",
                title="", delay_seconds=0):
        """Enqueues a durable job of one of the plugin's job kinds; Chima runs
        it with RunJob, after restarts too. Returns the job's id."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        return self._call("Enqueue", pb.EnqueueRequest(
            kind=kind, payload=payload, notify=_ref(notify), origin_request_id=origin_request_id,
            queue_key=queue_key, title=title, delay_seconds=int(delay_seconds))).job_id

    def cancel_job(self, job_id):
        """Asks to stop a queued or running job; returns whether it was."""
        return self._call("CancelJob", pb.CancelJobRequest(job_id=job_id)).cancelled

    # -- locks --

    def lock(self, name, owner, reason="", ttl_seconds=0, job_id=0):
        """Takes the lock name for owner. Returns (acquired, holder): holder
        is the LockInfo of whoever holds it now, us or someone else. A lock
        with a job_id is released when that job ends; ttl_seconds 0 holds it
        until unlock."""
        res = self._call("Lock", pb.LockRequest(
            name=name, owner=owner, reason=reason, ttl_seconds=int(ttl_seconds), job_id=job_id))
        return res.acquired, res.holder

    def unlock(self, name, owner, force=False):
        """Releases the lock name held by owner (anyone's with force).
        Returns (released, holder)."""
        res = self._call("Unlock", pb.UnlockRequest(name=name, owner=owner, force=force))
        return res.released, res.holder

    # -- key-value state (the plugin's own namespace) --

    def kv_get(self, key):
        """Returns the value (bytes) stored at key, or None."""
        res = self._call("KVGet", pb.KVGetRequest(key=key))
        return res.value if res.found else None

    def kv_set(self, key, value):
        """Stores value (bytes, or str as UTF-8) at key."""
        if isinstance(value, str):
            value = value.encode("utf-8")
        self._call("KVSet", pb.KVSetRequest(key=key, value=value))

    def kv_delete(self, key):
        """Deletes key; deleting an absent key is no error."""
        self._call("KVDelete", pb.KVDeleteRequest(key=key))

    def kv_list(self, prefix=""):
        """Returns the keys that start with prefix."""
        return list(self._call("KVList", pb.KVListRequest(prefix=prefix)).keys)

    def kv_compare_and_swap(self, key, old, value):
        """Sets key to value if it holds old (None: if it is absent).
        Returns (swapped, current value or None)."""
        if isinstance(value, str):
            value = value.encode("utf-8")
        if isinstance(old, str):
            old = old.encode("utf-8")
        req = pb.KVCompareAndSwapRequest(key=key, value=value)
        if old is None:
            req.old_absent = True
        else:
            req.old = old
        res = self._call("KVCompareAndSwap", req)
        return res.swapped, (res.current if res.found else None)

    def kv_increment(self, key, delta=1):
        """Adds delta to the decimal counter at key; returns the new value."""
        return self._call("KVIncrement", pb.KVIncrementRequest(key=key, delta=int(delta))).value
