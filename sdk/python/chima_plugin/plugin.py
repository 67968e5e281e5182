"""What a plugin declares (commands, job kinds) and what its handlers get."""

import logging
import queue
import threading

from . import host as _host
from .pb import plugin_pb2 as pb

log = logging.getLogger("chima_plugin")

# The protocol minor this library speaks (sdk/wire ProtocolMinor): it sets
# the minor-8 enums beside the strings they supersede.
PROTOCOL_MINOR = 8

ARG_TYPES = {
    "string": pb.ARG_TYPE_STRING,
    "int": pb.ARG_TYPE_INT,
    "bool": pb.ARG_TYPE_BOOL,
    "enum": pb.ARG_TYPE_ENUM,
    "duration": pb.ARG_TYPE_DURATION,
}

OUTCOMES = {
    "": pb.OUTCOME_UNSPECIFIED,
    "success": pb.OUTCOME_SUCCESS,
    "failure": pb.OUTCOME_FAILURE,
    "error": pb.OUTCOME_ERROR,
    "cancelled": pb.OUTCOME_CANCELLED,
}


class UserError(Exception):
    """A failure meant for the person in chat (bad input, not allowed now),
    not a plugin crash. argument names the argument at fault, if one is."""

    def __init__(self, summary, detail="", argument=""):
        super().__init__(summary)
        self.summary, self.detail, self.argument = summary, detail, argument


class Problem:
    """One thing wrong with the plugin's settings, as a validate handler
    reports it: message says what is wrong (without repeating the key); key
    is the settings key at fault ("" for the settings as a whole); file and
    line name a file the settings point to, when the problem is in it."""

    def __init__(self, message, key="", file="", line=0):
        self.message, self.key, self.file, self.line = message, key, file, line

    def __repr__(self):
        return "Problem(%r, key=%r, file=%r, line=%r)" % (self.message, self.key, self.file, self.line)


def settings_problem(p):
    """The protocol's SettingsProblem for p: a Problem, a dict of its
    fields, or a string (a message about the settings as a whole)."""
    if isinstance(p, str):
        return pb.SettingsProblem(message=p)
    if isinstance(p, dict):
        p = Problem(**p)
    if not isinstance(p, Problem):
        raise TypeError("a settings problem is a Problem, a dict or a str, not %s" % type(p).__name__)
    return pb.SettingsProblem(message=str(p.message), key=p.key, file=p.file, line=int(p.line))


def validate_settings(plugin, settings):
    """The SettingsProblems plugin's validate handler finds in settings (a
    dict of strings), [] when they are valid, or None when the plugin does
    not validate them: as the Go and Node libraries answer, a plugin with
    neither handler reads no settings, so any are valid, and one with only
    on_configure checks them only when it starts. A ValueError is one
    problem with its message; any other exception is a bug in the handler,
    logged and reported as one problem."""
    if plugin.validate is None:
        return None if plugin.configure is not None else []
    try:
        return [settings_problem(p) for p in plugin.validate(dict(settings)) or []]
    except ValueError as e:
        return [pb.SettingsProblem(message=str(e))]
    except Exception as e:
        log.error("validate failed", exc_info=e)
        return [pb.SettingsProblem(message="validate failed: %s: %s" % (type(e).__name__, e))]


class Cancelled(Exception):
    """The call was cancelled by the host, or the plugin is stopping."""


class Arg:
    """One typed argument of a command; the host parses and validates it
    ("int" arrives as decimal text, "bool" as "true"/"false")."""

    def __init__(self, name, type="string", required=False, default="", choices=(),
                 secret=False, rest=False, help="", pattern=""):
        if type not in ARG_TYPES:
            raise ValueError("argument %s: unknown type %r (want one of %s)"
                             % (name, type, ", ".join(sorted(ARG_TYPES))))
        self.spec = pb.ArgSpec(name=name, type=ARG_TYPES[type], required=required,
                               default=default, enum=list(choices), secret=secret,
                               rest=rest, help=help, pattern=pattern)


class Plugin:
    """A plugin: its name, version, commands and job kinds.

        plugin = Plugin("notes", "1.0.0", "Keeps notes.")

        @plugin.command("note", usage="note <text>", args=[Arg("text", rest=True)])
        def note(call):
            call.reply("noted")

        chima_plugin.serve(plugin)
    """

    def __init__(self, name, version, description=""):
        self.name, self.version, self.description = name, version, description
        self.commands = {}  # name -> (CommandSpec, handler)
        self.jobs = {}  # kind -> handler
        self.configure = None
        self.validate = None
        self.settings = {}
        self.host = _host.Host(None)

    def command(self, name, usage="", help="", args=(), examples=(), aliases=(),
                permission="", pattern=""):
        """Decorator: handler(call) handles the command name. It answers with
        call.reply and call.progress, and raises UserError for bad input."""
        spec = pb.CommandSpec(name=name, usage=usage or name, help=help,
                              args=[a.spec for a in args], examples=list(examples),
                              aliases=list(aliases), permission=permission, pattern=pattern)

        def register(handler):
            self.commands[name] = (spec, handler)
            return handler
        return register

    def job(self, kind):
        """Decorator: handler(job) runs the durable jobs of kind. It returns
        a detail string (success), or raises UserError (failure) or any
        other exception (error)."""
        def register(handler):
            self.jobs[kind] = handler
            return handler
        return register

    def on_configure(self, handler):
        """Decorator: handler(settings) checks and takes the plugin's
        settings (a dict of strings) at Describe; raising ValueError refuses
        the start with that message."""
        self.configure = handler
        return handler

    def on_validate(self, handler):
        """Decorator: handler(settings) checks the plugin's settings (the
        dict on_configure gets) without acting on them, for `chima config
        validate`. It returns the problems it found, each a Problem (with
        the key at fault), a dict of Problem's fields or a string, and
        nothing or [] when the settings are valid; raising ValueError
        reports its message as one problem.

        Without it, a plugin with on_configure is reported as "not
        validated" (it checks its settings only when it starts), and a
        plugin with neither reads no settings, so any are valid."""
        self.validate = handler
        return handler

    def manifest(self):
        """The Manifest Describe answers."""
        return pb.Manifest(
            name=self.name, version=self.version, description=self.description,
            protocol_minor=PROTOCOL_MINOR,
            commands=[spec for spec, _ in self.commands.values()],
            job_kinds=sorted(self.jobs),
            # No "multiplex": the host makes one server-streaming call each.
        )


def reply_event(message, in_thread=False):
    return pb.Event(reply=pb.Reply(output=_host.output(message), in_thread=in_thread))


def done_event(outcome="", detail=""):
    return pb.Event(done=pb.Done(outcome=outcome, detail=detail, outcome_code=OUTCOMES[outcome]))


_END = object()


class Call:
    """One command or job being handled: what was asked, the Host, and the
    events to answer with. Handlers run in a thread of their own; their
    events stream to the host as they are sent."""

    def __init__(self, context, stopping, host, settings):
        self.context, self.stopping, self.host, self.settings = context, stopping, host, settings
        self._events = queue.Queue()
        self._ended = threading.Event()
        if not context.add_callback(self._ended.set):
            self._ended.set()  # already over

    def cancelled(self):
        """Whether the host cancelled the call or the plugin is stopping."""
        return self._ended.is_set() or self.stopping.is_set() or not self.context.is_active()

    def sleep(self, seconds):
        """Waits; raises Cancelled when the call was cancelled meanwhile."""
        self._ended.wait(seconds)
        if self.cancelled():
            raise Cancelled("plugin is stopping" if self.stopping.is_set() else "call cancelled")

    def reply(self, message, in_thread=False):
        """Answers in the room (text or an Output)."""
        self._events.put(reply_event(message, in_thread))

    def progress(self, key, message):
        """Says how far along the call is; progress with one key is one
        message that services able to edit update in place."""
        self._events.put(pb.Event(progress=pb.Progress(key=key, output=_host.output(message))))

    def run(self, handler, done):
        """Runs handler(self) in a thread and yields its events, then the
        Done that done(result, exception) makes."""
        def work():
            try:
                result, exc = handler(self), None
            except BaseException as e:  # reported as the call's end
                result, exc = None, e
            for ev in done(self, result, exc):
                self._events.put(ev)
            self._events.put(_END)
        threading.Thread(target=work, name="call", daemon=True).start()
        while True:
            ev = self._events.get()
            if ev is _END:
                return
            yield ev


class CommandCall(Call):
    """A command: request is the CommandRequest; args its validated
    arguments by name; user and message who sent it and where."""

    def __init__(self, request, context, stopping, host, settings):
        super().__init__(context, stopping, host, settings)
        self.request = request
        self.command = request.command
        self.args = dict(request.args)
        self.user = request.user
        self.message = request.message
        self.request_id = request.request_id

    def arg(self, name, default=""):
        """The argument name, or default when it was not given."""
        return self.args.get(name, default)


class JobCall(Call):
    """A durable job: request is the JobRequest; payload its bytes; notify
    the room and thread it reports to; job_id and attempt which run it is."""

    def __init__(self, request, context, stopping, host, settings):
        super().__init__(context, stopping, host, settings)
        self.request = request
        self.kind = request.kind
        self.job_id = request.job_id
        self.attempt = request.attempt
        self.payload = request.payload
        self.notify = request.notify
        self.request_id = request.request_id
        self.origin_request_id = request.origin_request_id


def _failure(call, exc, what):
    """The events that end a call that raised exc."""
    if isinstance(exc, UserError):
        return [pb.Event(error=pb.UserError(summary=exc.summary, detail=exc.detail,
                                            argument=exc.argument)),
                done_event("failure", exc.summary)]
    if isinstance(exc, Cancelled) or call.cancelled():
        return [done_event("cancelled", str(exc))]
    log.error("%s failed" % what, exc_info=exc, extra={"kv": {"request_id": call.request_id}})
    return [done_event("error", "%s: %s" % (type(exc).__name__, exc))]


def command_done(call, result, exc):
    """The events that end a command: Done, or what _failure says."""
    if exc is None:
        return [done_event()]
    return _failure(call, exc, "command " + call.command)


def job_done(call, result, exc):
    """The events that end a job: Done success with the handler's detail,
    or what _failure says."""
    if exc is None:
        return [done_event("success", result if isinstance(result, str) else "")]
    return _failure(call, exc, "job " + call.kind)
