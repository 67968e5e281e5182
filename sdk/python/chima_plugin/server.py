"""serve(plugin): go-plugin's plugin side, for a Chima plugin in Python.

What it does, in order (go-plugin v1.8's server.go does the same in Go):

 1. Checks the magic cookie CHIMA_PLUGIN_MAGIC_COOKIE (run by hand, it
    explains itself and exits 1) and PLUGIN_PROTOCOL_VERSIONS.
 2. AutoMTLS: reads the host's certificate from PLUGIN_CLIENT_CERT, makes its
    own, and serves gRPC over TLS that requires a client certificate signed
    by the host's. A host without AutoMTLS is refused.
 3. Listens on 127.0.0.1, on the first free port from PLUGIN_MIN_PORT to
    PLUGIN_MAX_PORT, and serves chima.plugin.v1.Plugin, grpc.health.v1.Health
    ("plugin": SERVING), plugin.GRPCController (Shutdown),
    plugin.GRPCStdio (an empty stream: logs go to the real stderr, which
    go-plugin reads) and plugin.GRPCBroker (see broker.py).
 4. Prints the handshake line, and nothing else, on stdout:
    CORE|APP|tcp|127.0.0.1:PORT|grpc|CERT (CERT: base64 of its DER, no
    padding), and flushes it.
 5. Logs go to stderr as hclog JSON lines, which the host logs at their
    level with the plugin's name.
 6. Runs until Shutdown, SIGTERM, or the host going away; ignores SIGINT
    (a Ctrl-C in the host's console reaches the whole process group).
"""

import datetime
import json
import logging
import os
import signal
import socket
import sys
import threading
from concurrent import futures

import grpc

from . import _tls
from . import host as _host
from .broker import Broker, BrokerError
from .pb import plugin_pb2 as pb
from .pb import plugin_pb2_grpc as pb_grpc
from .pb.goplugin import grpc_broker_pb2_grpc as broker_grpc
from .pb.goplugin import grpc_controller_pb2 as controller_pb
from .pb.goplugin import grpc_controller_pb2_grpc as controller_grpc
from .pb.goplugin import grpc_stdio_pb2_grpc as stdio_grpc
from .pb.health import health_pb2 as health_pb
from .pb.health import health_pb2_grpc as health_grpc
from .plugin import (PROTOCOL_MINOR, CommandCall, JobCall, command_done, done_event, job_done,
                     validate_settings)

# The handshake, as in sdk/wire/wire.go.
MAGIC_COOKIE_KEY = "CHIMA_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "7f3c2a1e-chima-plugin-protocol"
CORE_PROTOCOL_VERSION = 1  # go-plugin's own protocol
APP_PROTOCOL_VERSION = 1  # wire.ProtocolVersion: chima.plugin.v1
MAX_MESSAGE_BYTES = 16 << 20  # wire.MaxMessageBytes
GO_PLUGIN_SERVICE_NAME = "plugin"  # go-plugin's health check service name

GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]

log = logging.getLogger("chima_plugin")


# ------------------------------------------------------------------ logging --


class HclogJSONFormatter(logging.Formatter):
    """Formats records as the JSON lines go-plugin parses from a plugin's
    stderr (hclog's JSON format): @level, @message, @timestamp, then the
    record's kv pairs (logging's extra={"kv": {...}})."""

    LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn",
              logging.ERROR: "error", logging.CRITICAL: "error"}

    def format(self, record):
        when = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        entry = {
            "@level": self.LEVELS.get(record.levelno, "info"),
            "@message": record.getMessage(),
            # go-plugin parses exactly 2006-01-02T15:04:05.000000Z07:00.
            "@timestamp": when.isoformat(timespec="microseconds"),
        }
        if record.name != "root":
            entry["module"] = record.name
        entry.update(getattr(record, "kv", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(level_env):
    """Sends every log record to stderr as hclog JSON, at the level that
    the environment variable level_env names (info by default)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(HclogJSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    level = os.environ.get(level_env, "info").upper()
    root.setLevel(getattr(logging, level, logging.INFO))


def kv(**pairs):
    """extra= for a log call: key/value pairs the host logs with the line."""
    return {"kv": pairs}


# ------------------------------------------------------------- the service --


class Servicer(pb_grpc.PluginServicer):
    """chima.plugin.v1.Plugin over a Plugin. Every call ends with a Done
    event, as the Go SDK's do; RPCs not defined here answer UNIMPLEMENTED
    (the generated base class)."""

    def __init__(self, plugin, broker, stopping):
        self.plugin, self.broker, self.stopping = plugin, broker, stopping
        self._host_lock = threading.Lock()
        self._host_id = 0

    def _connect_host(self, service_id):
        """Dials the Host service before Describe answers: the broker forgets
        connection info nobody dialled within 5 s. The channel is kept."""
        with self._host_lock:
            if service_id == self._host_id and self.plugin.host.available:
                return
            old = self.plugin.host.channel
            channel = self.broker.dial(service_id) if service_id else None
            self.plugin.host = _host.Host(channel)
            self._host_id = service_id
            if old is not None:
                old.close()

    def Describe(self, request, context):
        log.info("described to host", extra=kv(
            host_version=request.host_version, host_protocol_minor=request.protocol_minor,
            host_service_id=request.host_service_id))
        try:
            self._connect_host(request.host_service_id)
        except BrokerError as e:
            log.error("cannot reach the Host service", extra=kv(error=str(e)))
            context.abort(grpc.StatusCode.UNAVAILABLE, "dial host service: %s" % e)
        settings = dict(request.settings)
        if self.plugin.configure is not None:
            try:
                self.plugin.configure(settings)
            except ValueError as e:
                # go-plugin's host shows an Unknown status's message as is.
                context.abort(grpc.StatusCode.UNKNOWN, str(e))
        self.plugin.settings = settings
        return self.plugin.manifest()

    def Validate(self, request, context):
        """Checks settings with the plugin's validate handler, without
        configuring anything (see validate_settings)."""
        problems = validate_settings(self.plugin, dict(request.settings))
        if problems is None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED,
                          "%s does not validate its settings" % self.plugin.name)
        return pb.ValidateResponse(problems=problems)

    def Handle(self, request, context):
        entry = self.plugin.commands.get(request.command)
        if entry is None:
            yield done_event("error", "%s has no command %r" % (self.plugin.name, request.command))
            return
        call = CommandCall(request, context, self.stopping, self.plugin.host, self.plugin.settings)
        yield from call.run(entry[1], command_done)

    def RunJob(self, request, context):
        handler = self.plugin.jobs.get(request.kind)
        if handler is None:
            yield done_event("error", "%s runs no jobs of kind %r" % (self.plugin.name, request.kind))
            return
        call = JobCall(request, context, self.stopping, self.plugin.host, self.plugin.settings)
        yield from call.run(handler, job_done)

    def HandleEvent(self, request, context):
        yield done_event("error", "%s does not handle webhook events (got %r)"
                         % (self.plugin.name, request.type))

    def Multiplex(self, request_iterator, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      "%s does not serve Multiplex (no multiplex capability)" % self.plugin.name)


def go_plugin_services(broker, stopping):
    """Generic handlers for the services go-plugin's client calls besides the
    plugin's own: health, controller, stdio and broker."""

    class Health(health_grpc.HealthServicer):
        def Check(self, request, context):
            if request.service not in ("", GO_PLUGIN_SERVICE_NAME):
                context.abort(grpc.StatusCode.NOT_FOUND, "unknown service %r" % request.service)
            return health_pb.HealthCheckResponse(status=health_pb.HealthCheckResponse.SERVING)

    class Controller(controller_grpc.GRPCControllerServicer):
        def Shutdown(self, request, context):
            log.debug("host asked the plugin to shut down")
            stopping.set()  # the main thread stops the server and exits
            return controller_pb.Empty()

    class Stdio(stdio_grpc.GRPCStdioServicer):
        def StreamStdio(self, request, context):
            # Go plugins forward their stdout/stderr here; this one writes
            # to its real stderr, which go-plugin reads directly. An empty
            # stream tells the host there is nothing to forward.
            return iter(())

    class GRPCBroker(broker_grpc.GRPCBrokerServicer):
        def StartStream(self, request_iterator, context):
            return broker.serve_stream(request_iterator, context)

    return [
        (health_grpc.add_HealthServicer_to_server, Health()),
        (controller_grpc.add_GRPCControllerServicer_to_server, Controller()),
        (stdio_grpc.add_GRPCStdioServicer_to_server, Stdio()),
        (broker_grpc.add_GRPCBrokerServicer_to_server, GRPCBroker()),
    ]


# ------------------------------------------------------------------- serve --

NOT_A_COMMAND = """\
This is %(name)s, a Chima plugin written in Python. It is not meant to be run
by hand: Chima starts it and talks to it over gRPC. To use it, add it to the
plugins of chima.yaml:

  plugins:
    - name: %(name)s
      path: %(path)s

(%(cookie)s is not set to the value of the Chima plugin protocol.)
"""


class ServeError(Exception):
    """The plugin cannot serve: a message for the host's log."""


def _port_range():
    """PLUGIN_MIN_PORT..PLUGIN_MAX_PORT, or (0, 0) (any port) when unset."""
    try:
        lo = int(os.environ.get("PLUGIN_MIN_PORT") or 0)
        hi = int(os.environ.get("PLUGIN_MAX_PORT") or 0)
    except ValueError as e:
        raise ServeError("bad PLUGIN_MIN_PORT or PLUGIN_MAX_PORT: %s" % e) from None
    if lo > hi:
        raise ServeError("PLUGIN_MIN_PORT %d is greater than PLUGIN_MAX_PORT %d" % (lo, hi))
    return lo, hi


def _free(port):
    """Whether 127.0.0.1:port can be bound now (it saves gRPC's loud failures)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _listen(server, creds):
    lo, hi = _port_range()
    for port in range(lo, hi + 1):
        if port and not _free(port):
            continue
        try:
            bound = server.add_secure_port("127.0.0.1:%d" % port, creds)
        except RuntimeError:  # newer grpcio raise; older ones return 0
            bound = 0
        if bound:
            return bound
    raise ServeError("no free port on 127.0.0.1 from %d to %d" % (lo, hi))


def serve(plugin, log_level_env="CHIMA_PLUGIN_LOG_LEVEL"):
    """Serves plugin to the Chima host that started this process, until the
    host stops it. Returns the process's exit status (0 after a stop, 1 when
    it could not serve): call it as sys.exit(serve(plugin))."""
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        sys.stderr.write(NOT_A_COMMAND % {"name": plugin.name, "cookie": MAGIC_COOKIE_KEY,
                                          "path": os.path.realpath(sys.argv[0])})
        return 1
    setup_logging(log_level_env)
    try:
        return _serve(plugin)
    except ServeError as e:
        log.error(str(e))
        return 1


def _serve(plugin):
    offered = os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "")
    if offered and str(APP_PROTOCOL_VERSION) not in offered.split(","):
        # As go-plugin's Go servers do: announce our version anyway; the host
        # refuses it with a message that names both sides' versions.
        log.error("the host does not speak this plugin's protocol version", extra=kv(
            host_versions=offered, plugin_version=APP_PROTOCOL_VERSION))
    host_pem = os.environ.get("PLUGIN_CLIENT_CERT", "")
    if not host_pem:
        raise ServeError("the host did not ask for automatic mTLS (PLUGIN_CLIENT_CERT is "
                         "unset); this plugin serves only over mutual TLS")
    try:
        host_cert = _tls.check_host_certificate(host_pem)
    except ValueError as e:
        raise ServeError("PLUGIN_CLIENT_CERT is not a PEM certificate: %s" % e) from None
    if os.environ.get("PLUGIN_MULTIPLEX_GRPC", "").lower() in ("1", "t", "true"):
        # go-plugin's host then fails the start with ErrGRPCBrokerMuxNotSupported,
        # which says what is wrong; nothing more to do here.
        log.warning("the host asked for gRPC broker multiplexing, which this library "
                    "does not support")
    cert = _tls.Certificate()

    # go-plugin's Go servers ignore SIGINT: a Ctrl-C in the host's terminal
    # reaches the whole process group, and the host stops its plugins itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())

    broker = Broker(cert, host_cert, GRPC_OPTIONS)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix=plugin.name),
        # Never share a port with another process (gRPC sets SO_REUSEPORT by
        # default, and a second plugin could bind the same port).
        options=GRPC_OPTIONS + [("grpc.so_reuseport", 0)],
    )
    pb_grpc.add_PluginServicer_to_server(Servicer(plugin, broker, stopping), server)
    for add, servicer in go_plugin_services(broker, stopping):
        add(servicer, server)
    creds = grpc.ssl_server_credentials(
        [(cert.key_pem, cert.cert_pem)], root_certificates=host_cert, require_client_auth=True)
    port = _listen(server, creds)
    server.start()

    # The handshake: the one and only line on stdout.
    sys.stdout.write("%d|%d|tcp|127.0.0.1:%d|grpc|%s\n" % (
        CORE_PROTOCOL_VERSION, APP_PROTOCOL_VERSION, port, cert.handshake_field))
    sys.stdout.flush()
    log.info("serving", extra=kv(address="127.0.0.1:%d" % port, version=plugin.version,
                                 protocol_minor=PROTOCOL_MINOR))

    # Run until the host says Shutdown, SIGTERM arrives, or the host is gone
    # (re-parented: nobody will ever call Shutdown).
    parent = os.getppid()
    while not stopping.wait(1.0):
        if os.getppid() != parent:
            log.warning("host process went away; stopping")
            break
    stopping.set()  # wakes calls in progress
    server.stop(grace=1.0).wait()
    if plugin.host.channel is not None:
        plugin.host.channel.close()
    log.debug("stopped")
    return 0
