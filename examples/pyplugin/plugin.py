#!/usr/bin/python3
"""pyhello: a Chima plugin written in Python.

It shows that the plugin protocol (sdk/proto/chima/plugin/v1/plugin.proto) is
language-neutral: the Chima host starts this script through hashicorp/go-plugin
exactly as it starts a Go plugin, and talks to it over gRPC.

Commands:
  pyhello <name>   replies "Hello from Python, <name>!"
  pycount <n>      streams n progress events, then replies "counted to n"

What go-plugin expects from a plugin process, and how this script meets it:

  * The host sets CHIMA_PLUGIN_MAGIC_COOKIE; without it the script explains
    itself on stderr and exits 1 (it was run by hand).
  * The plugin serves gRPC and prints one handshake line on stdout,
    "CORE|APP|NETWORK|ADDRESS|PROTOCOL", here "1|1|tcp|127.0.0.1:PORT|grpc".
    Nothing else may be written to stdout before it; logs go to stderr, one
    JSON object a line in hclog's shape, so the host logs them at their level.
  * Besides the Plugin service it serves go-plugin's own services:
    grpc.health.v1.Health (SERVING for "plugin"), plugin.GRPCController
    (Shutdown: the host's graceful stop), plugin.GRPCStdio (an empty stream:
    nothing to forward) and plugin.GRPCBroker (connection info for services
    the host offers back; recorded, not used by this example).
  * No AutoMTLS: if the host asks for it (PLUGIN_CLIENT_CERT is set) the script
    refuses with a message; configure the plugin with `auto_mtls: false`.
  * Stdin is the host's own stdin (go-plugin passes it through), so it is
    never read; SIGINT is ignored, as go-plugin's Go servers do, so a Ctrl-C
    meant for the host's console does not kill the plugin behind its back.

Needs Debian's python3-grpcio and python3-protobuf; run with /usr/bin/python3.
"""

import datetime
import json
import logging
import os
import signal
import sys
import threading
from concurrent import futures

NAME = "pyhello"
VERSION = "1.0.0"

# The handshake, as in sdk/wire/wire.go.
MAGIC_COOKIE_KEY = "CHIMA_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "7f3c2a1e-chima-plugin-protocol"
CORE_PROTOCOL_VERSION = 1  # go-plugin's own protocol
APP_PROTOCOL_VERSION = 1  # wire.ProtocolVersion: chima.plugin.v1
PROTOCOL_MINOR = 1  # wire.ProtocolMinor
MAX_MESSAGE_BYTES = 16 << 20  # wire.MaxMessageBytes
GO_PLUGIN_SERVICE_NAME = "plugin"  # go-plugin's health check service name

PYCOUNT_MAX = 100
PYCOUNT_STEP_SECONDS = 0.1

# Do not litter the source tree with __pycache__ when run from a checkout.
sys.dont_write_bytecode = True

# The generated modules import themselves as chima.plugin.v1; make the
# directory of this script importable however the script is started.
HERE = os.path.dirname(os.path.realpath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

try:
    import grpc
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    from chima.plugin.v1 import plugin_pb2 as pb
    from chima.plugin.v1 import plugin_pb2_grpc as pb_grpc
except ImportError as err:  # reported by main, after the cookie check
    IMPORT_ERROR = err
else:
    IMPORT_ERROR = None

log = logging.getLogger(NAME)


# ------------------------------------------------------------------ logging --


class HclogJSONFormatter(logging.Formatter):
    """Formats records as the JSON lines go-plugin parses from a plugin's
    stderr (hclog's JSON format): @level, @message, @timestamp, then key/value
    pairs. The host logs them at their level instead of as debug noise."""

    LEVELS = {
        logging.DEBUG: "debug",
        logging.INFO: "info",
        logging.WARNING: "warn",
        logging.ERROR: "error",
        logging.CRITICAL: "error",
    }

    def format(self, record):
        when = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        entry = {
            "@level": self.LEVELS.get(record.levelno, "info"),
            "@message": record.getMessage(),
            # go-plugin parses exactly 2006-01-02T15:04:05.000000Z07:00.
            "@timestamp": when.isoformat(timespec="microseconds"),
        }
        if record.name != NAME:
            entry["module"] = record.name  # grpc's own loggers
        entry.update(getattr(record, "kv", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging():
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(HclogJSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    level = os.environ.get("PYHELLO_LOG_LEVEL", "info").upper()
    root.setLevel(getattr(logging, level, logging.INFO))


def kv(**pairs):
    return {"kv": pairs}


# -------------------------------------------------- go-plugin's own services --


def _message_classes(*files):
    """Builds message classes for small protos described inline, in a private
    descriptor pool, so they cannot clash with anything else loaded."""
    pool = descriptor_pool.DescriptorPool()
    for f in files:
        pool.AddSerializedFile(f.SerializeToString())
    get_class = getattr(message_factory, "GetMessageClass", None)  # protobuf >= 4.22
    factory = None if get_class else message_factory.MessageFactory(pool)
    classes = {}
    for f in files:
        for m in f.message_type:
            d = pool.FindMessageTypeByName(f.package + "." + m.name)
            classes[m.name] = get_class(d) if get_class else factory.GetPrototype(d)
    return classes


def _proto_file(name, package, messages):
    F = descriptor_pb2.FieldDescriptorProto
    f = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax="proto3")
    for msg_name, fields in messages:
        m = f.message_type.add(name=msg_name)
        for number, (field_name, kind) in enumerate(fields, start=1):
            m.field.add(name=field_name, number=number, label=F.LABEL_OPTIONAL, type=kind)
    return f


def go_plugin_messages():
    """The messages of grpc.health.v1 and of go-plugin's internal services,
    as far as this plugin needs them (unknown fields are kept and ignored).

    Python packages for them are not in Debian (grpc_health is missing), and
    the wire format is all that matters, so they are declared here."""
    F = descriptor_pb2.FieldDescriptorProto
    health = _proto_file("pyplugin/grpc_health_v1.proto", "grpc.health.v1", [
        ("HealthCheckRequest", [("service", F.TYPE_STRING)]),
        # status is the enum ServingStatus; on the wire an enum is a varint.
        ("HealthCheckResponse", [("status", F.TYPE_INT32)]),
    ])
    goplugin = _proto_file("pyplugin/go_plugin.proto", "plugin", [
        ("Empty", []),  # plugin.Empty and google.protobuf.Empty alike
        ("ConnInfo", [("service_id", F.TYPE_UINT32), ("network", F.TYPE_STRING),
                      ("address", F.TYPE_STRING)]),
    ])
    return _message_classes(health, goplugin)


HEALTH_SERVING = 1  # grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING


def go_plugin_handlers(stopping, broker_services):
    """Generic handlers for the services go-plugin's client calls besides the
    plugin's own: health, controller (graceful shutdown), stdio and broker."""
    msgs = go_plugin_messages()
    Empty, ConnInfo = msgs["Empty"], msgs["ConnInfo"]
    HealthCheckRequest, HealthCheckResponse = msgs["HealthCheckRequest"], msgs["HealthCheckResponse"]

    def health_check(request, context):
        if request.service not in ("", GO_PLUGIN_SERVICE_NAME):
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service %r" % request.service)
        return HealthCheckResponse(status=HEALTH_SERVING)

    def shutdown(request, context):
        log.debug("host asked the plugin to shut down")
        stopping.set()  # the main thread stops the server and exits
        return Empty()

    def stream_stdio(request, context):
        # Go plugins forward their stdout/stderr here; this one logs to its
        # real stderr, which go-plugin reads directly. An empty stream tells
        # the host there is nothing to forward (it logs that at debug level;
        # an unimplemented service would be a warning on every start).
        return iter(())

    def broker_start_stream(request_iterator, context):
        # The host announces, by broker id, the services it serves back to
        # the plugin (the Host service: post, enqueue, lock, kv). This
        # example calls none of them; it records them so that the host's
        # broker works as it does with a Go plugin instead of failing.
        try:
            for info in request_iterator:
                broker_services[info.service_id] = (info.network, info.address)
                log.debug("host service announced", extra=kv(
                    broker_id=info.service_id, network=info.network, address=info.address))
        except grpc.RpcError:
            pass  # the host closed the broker stream
        return
        yield  # a generator: the stream never sends anything

    return [
        grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": grpc.unary_unary_rpc_method_handler(
                health_check,
                request_deserializer=HealthCheckRequest.FromString,
                response_serializer=HealthCheckResponse.SerializeToString),
        }),
        grpc.method_handlers_generic_handler("plugin.GRPCController", {
            "Shutdown": grpc.unary_unary_rpc_method_handler(
                shutdown,
                request_deserializer=Empty.FromString,
                response_serializer=Empty.SerializeToString),
        }),
        grpc.method_handlers_generic_handler("plugin.GRPCStdio", {
            "StreamStdio": grpc.unary_stream_rpc_method_handler(
                stream_stdio,
                request_deserializer=Empty.FromString,
                response_serializer=Empty.SerializeToString),
        }),
        grpc.method_handlers_generic_handler("plugin.GRPCBroker", {
            "StartStream": grpc.stream_stream_rpc_method_handler(
                broker_start_stream,
                request_deserializer=ConnInfo.FromString,
                response_serializer=ConnInfo.SerializeToString),
        }),
    ]


# ------------------------------------------------------------- the plugin --


class UserError(Exception):
    """A failure meant for the person in chat, not a plugin crash."""

    def __init__(self, summary, detail="", argument=""):
        super().__init__(summary)
        self.summary, self.detail, self.argument = summary, detail, argument


class Cancelled(Exception):
    """The call was cancelled by the host, or the plugin is stopping."""


class Call:
    """One command being handled: its request and a way to pause that wakes
    up when the host cancels the call or the plugin stops."""

    def __init__(self, request, context, stopping):
        self.request = request
        self.context = context
        self.stopping = stopping
        self.ended = threading.Event()
        if not context.add_callback(self.ended.set):
            self.ended.set()  # already over

    def arg(self, name):
        return self.request.args.get(name, "")

    def cancelled(self):
        return self.ended.is_set() or self.stopping.is_set() or not self.context.is_active()

    def sleep(self, seconds):
        """Waits; raises Cancelled when the call was cancelled meanwhile."""
        self.ended.wait(seconds)
        if self.cancelled():
            raise Cancelled("plugin is stopping" if self.stopping.is_set() else "call cancelled")


def reply(text):
    return pb.Event(reply=pb.Reply(output=pb.Output(text=text)))


def progress(key, text):
    return pb.Event(progress=pb.Progress(key=key, output=pb.Output(text=text)))


def done(outcome="", detail=""):
    return pb.Event(done=pb.Done(outcome=outcome, detail=detail))


def cmd_pyhello(call):
    yield reply("Hello from Python, %s!" % call.arg("name"))


def cmd_pycount(call):
    raw = call.arg("n")
    try:
        n = int(raw)
    except ValueError:
        raise UserError("n must be a whole number, not %r" % raw, argument="n")
    if not 1 <= n <= PYCOUNT_MAX:
        raise UserError("n must be between 1 and %d" % PYCOUNT_MAX,
                        detail="got %d" % n, argument="n")
    for i in range(1, n + 1):
        yield progress("count", "%d/%d" % (i, n))
        if i < n:
            call.sleep(PYCOUNT_STEP_SECONDS)
    yield reply("counted to %d" % n)


def manifest():
    return pb.Manifest(
        name=NAME,
        version=VERSION,
        description="Says hello from a Python process (a plugin in a second language).",
        protocol_minor=PROTOCOL_MINOR,
        # No "multiplex" capability: the host then makes one server-streaming
        # Handle call per command, which is all this plugin serves.
        commands=[
            pb.CommandSpec(
                name="pyhello",
                usage="pyhello <name>",
                help="Greets someone by name, from Python.",
                args=[pb.ArgSpec(name="name", type=pb.ARG_TYPE_STRING, required=True,
                                 rest=True, help="who to greet")],
                examples=["pyhello world"],
            ),
            pb.CommandSpec(
                name="pycount",
                usage="pycount <n>",
                help="Counts to n, streaming progress as it goes.",
                args=[pb.ArgSpec(name="n", type=pb.ARG_TYPE_INT, required=True,
                                 help="how far to count, 1 to %d" % PYCOUNT_MAX)],
                examples=["pycount 5"],
            ),
        ],
    )


COMMANDS = {"pyhello": cmd_pyhello, "pycount": cmd_pycount}


# Subclassing the generated servicer answers UNIMPLEMENTED for RPCs this
# plugin does not define, including ones later protocol minors add.
_Servicer = pb_grpc.PluginServicer if IMPORT_ERROR is None else object


class PyHello(_Servicer):
    """The chima.plugin.v1.Plugin service. Every call ends with a Done event,
    as the Go SDK's calls do: a UserError event then Done("failure") for a
    user error, Done("error") when the plugin itself broke."""

    def __init__(self, stopping):
        self.stopping = stopping

    def Describe(self, request, context):
        log.info("described to host", extra=kv(
            host_version=request.host_version, host_protocol_minor=request.protocol_minor,
            host_service_id=request.host_service_id, settings=sorted(request.settings)))
        return manifest()

    def Handle(self, request, context):
        handler = COMMANDS.get(request.command)
        if handler is None:
            yield done("error", "%s has no command %r" % (NAME, request.command))
            return
        call = Call(request, context, self.stopping)
        try:
            for event in handler(call):
                yield event
        except UserError as e:
            yield pb.Event(error=pb.UserError(summary=e.summary, detail=e.detail, argument=e.argument))
            yield done("failure", e.summary)
            return
        except Cancelled as e:
            yield done("cancelled", str(e))  # if anyone still listens
            return
        except Exception as e:  # a bug: end the call, keep serving others
            log.exception("command failed", extra=kv(command=request.command,
                                                     request_id=request.request_id))
            yield done("cancelled" if call.cancelled() else "error", "%s: %s" % (type(e).__name__, e))
            return
        yield done()

    def HandleEvent(self, request, context):
        yield done("error", "%s does not handle webhook events (got %r)" % (NAME, request.type))

    def RunJob(self, request, context):
        yield done("error", "%s runs no jobs (got kind %r)" % (NAME, request.kind))

    def Multiplex(self, request_iterator, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      "%s does not serve Multiplex (no multiplex capability)" % NAME)


# ------------------------------------------------------------------- main --

NOT_A_COMMAND = """\
This is pyhello, a Chima plugin written in Python. It is not meant to be run
by hand: Chima starts it and talks to it over gRPC. To use it, add it to the
plugins of chima.yaml:

  plugins:
    - name: pyhello
      path: %s
      auto_mtls: false

(%s is not set to the value of the Chima plugin protocol.)
"""


def main():
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        sys.stderr.write(NOT_A_COMMAND % (os.path.realpath(__file__), MAGIC_COOKIE_KEY))
        return 1
    setup_logging()
    if IMPORT_ERROR is not None:
        log.error("cannot load gRPC for Python; install python3-grpcio and python3-protobuf "
                  "and run with /usr/bin/python3", extra=kv(error=str(IMPORT_ERROR)))
        return 1
    if os.environ.get("PLUGIN_CLIENT_CERT"):
        log.error("the host asked for automatic mTLS, which this Python plugin does not "
                  "support; set auto_mtls: false for it in chima.yaml")
        return 1
    offered = os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "")
    if offered and str(APP_PROTOCOL_VERSION) not in offered.split(","):
        # Like go-plugin's Go servers: announce our version anyway, the host
        # refuses it with a message that names both sides' versions.
        log.error("the host does not speak this plugin's protocol version", extra=kv(
            host_versions=offered, plugin_version=APP_PROTOCOL_VERSION))

    # go-plugin's Go servers ignore SIGINT: a Ctrl-C in the host's terminal
    # reaches the whole process group, and the host stops its plugins itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())

    broker_services = {}
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix=NAME),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    pb_grpc.add_PluginServicer_to_server(PyHello(stopping), server)
    server.add_generic_rpc_handlers(go_plugin_handlers(stopping, broker_services))
    try:
        port = server.add_insecure_port("127.0.0.1:0")
    except RuntimeError as e:  # newer grpcio raise; older ones return 0
        log.error("cannot listen", extra=kv(error=str(e)))
        return 1
    if not port:
        log.error("cannot listen on 127.0.0.1")
        return 1
    server.start()

    # The handshake: the one and only line on stdout.
    sys.stdout.write("%d|%d|tcp|127.0.0.1:%d|grpc\n" % (CORE_PROTOCOL_VERSION, APP_PROTOCOL_VERSION, port))
    sys.stdout.flush()
    log.info("serving", extra=kv(address="127.0.0.1:%d" % port, version=VERSION))

    # Run until the host says Shutdown, SIGTERM arrives, or the host is gone
    # (re-parented: nobody will ever call Shutdown).
    parent = os.getppid()
    while not stopping.wait(1.0):
        if os.getppid() != parent:
            log.warning("host process went away; stopping")
            break
    stopping.set()  # wakes commands in progress
    server.stop(grace=1.0).wait()
    log.debug("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
