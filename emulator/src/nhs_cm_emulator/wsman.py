"""WS-Management / WinRS for the `cmd` shell resource: Create, Command, Send, Receive, Signal, Delete.

Requests are parsed with ElementTree; responses are written as text in the shape Windows uses and
pywinrm 0.5.0 / ansible-core's `winrm` connection parse. Nothing is ever run: a command's text,
arguments and standard input go to the emulated host's `execute`.

As on Windows, a command starts once its input is complete: at once (Command) when it takes no
standard input (``WINRS_CONSOLEMODE_STDIN=TRUE``), else on the Send whose stream has
``End="true"``. It runs in a thread of its own, so that the Send is answered at once and two
commands of one host can run at the same time; a Receive waits for it up to the request's
OperationTimeout and then answers the OperationTimeout fault (the client sends Receive again).
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

NS_SOAP = "http://www.w3.org/2003/05/soap-envelope"
NS_ADDRESSING = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
NS_WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
NS_MS_WSMAN = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
NS_FAULT = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"

CMD_RESOURCE = f"{NS_SHELL}/cmd"
ANONYMOUS = f"{NS_ADDRESSING}/role/anonymous"
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
DONE_STATE = f"{NS_SHELL}/CommandState/Done"
MAX_RECEIVE_WAIT = 60.0  # seconds a Receive waits for standard input, at most

ACTIONS = {
    f"{NS_TRANSFER}/Create": "Create",
    f"{NS_TRANSFER}/Delete": "Delete",
    f"{NS_SHELL}/Command": "Command",
    f"{NS_SHELL}/Send": "Send",
    f"{NS_SHELL}/Receive": "Receive",
    f"{NS_SHELL}/Signal": "Signal",
}
_RESPONSE_ACTIONS = {
    "Create": f"{NS_TRANSFER}/CreateResponse",
    "Delete": f"{NS_TRANSFER}/DeleteResponse",
    "Command": f"{NS_SHELL}/CommandResponse",
    "Send": f"{NS_SHELL}/SendResponse",
    "Receive": f"{NS_SHELL}/ReceiveResponse",
    "Signal": f"{NS_SHELL}/SignalResponse",
}
_ENVELOPE_OPEN = (
    f'<s:Envelope xml:lang="en-US" xmlns:s="{NS_SOAP}" xmlns:a="{NS_ADDRESSING}" xmlns:x="{NS_TRANSFER}" '
    f'xmlns:w="{NS_WSMAN}" xmlns:rsp="{NS_SHELL}" xmlns:p="{NS_MS_WSMAN}">'
)
# ElementTree's spellings of the s:, rsp:, w: and a: prefixes
_E = f"{{{NS_SOAP}}}"
_S = f"{{{NS_SHELL}}}"
_W = f"{{{NS_WSMAN}}}"
_A = f"{{{NS_ADDRESSING}}}"
_DURATION = re.compile(r"^PT(\d+(?:\.\d+)?)S$")

# WS-Management error codes (winerror.h, FACILITY_WINRM) and Win32 codes used below.
CODE_OPERATION_TIMEOUT = 2150858793  # ERROR_WSMAN_OPERATION_TIMEDOUT, 0x80338029
CODE_SHELL_NOT_FOUND = 2150858843  # ERROR_WSMAN_UNEXPECTED_SELECTORS, 0x8033805B
CODE_RESOURCE_NOT_FOUND = 2150858752  # ERROR_WSMAN_RESOURCE_NOT_FOUND, 0x80338000
CODE_ACTION_NOT_SUPPORTED = 2150858771  # ERROR_WSMAN_ACTION_NOT_SUPPORTED, 0x80338013
CODE_INVALID_BODY = 2150858791  # ERROR_WSMAN_INVALID_SOAP_BODY, 0x80338027
CODE_INTERNAL_ERROR = 1359  # ERROR_INTERNAL_ERROR
CODE_PIPE_CLOSING = 232  # ERROR_NO_DATA


#: Runs one command on the emulated host: (command, arguments, stdin) -> (stdout, stderr, exit code).
RunCommand = Callable[[str, list[str], bytes], tuple[bytes, bytes, int]]


class LostAnswer(Exception):
    """Raised by a ``RunCommand`` when the command ran (its changes are made) but its answer must
    never reach the client: the Receive that would carry it is answered by closing the connection
    without a response (a fault behaviour, emulator/README.md)."""

    def __init__(self, result: tuple[bytes, bytes, int]) -> None:
        super().__init__("the answer of this command is lost")
        self.result = result


class WSManFault(Exception):
    """A SOAP fault, answered with HTTP 500."""

    def __init__(self, code: int, reason: str, subcode: str = "w:InternalError", sender: bool = True) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.subcode = subcode
        self.sender = sender

    def envelope(self, relates_to: str | None, machine: str) -> bytes:
        value = "s:Sender" if self.sender else "s:Receiver"
        body = (
            f"<s:Fault><s:Code><s:Value>{value}</s:Value><s:Subcode><s:Value>{self.subcode}</s:Value>"
            f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">{escape(self.reason)}</s:Text></s:Reason>'
            f'<s:Detail><f:WSManFault xmlns:f="{NS_FAULT}" Code="{self.code}" Machine={quoteattr(machine)}>'
            f"<f:Message>{escape(self.reason)}</f:Message></f:WSManFault></s:Detail></s:Fault>"
        )
        return envelope(FAULT_ACTION, relates_to, body)


def internal_error(detail: str = "") -> WSManFault:
    reason = "An internal error occurred." + (f" {detail}" if detail else "")
    return WSManFault(CODE_INTERNAL_ERROR, reason, sender=False)


def envelope(action: str, relates_to: str | None, body: str) -> bytes:
    """A complete response envelope (RelatesTo echoes the request's MessageID)."""
    relates = f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>" if relates_to else ""
    return (
        f"{_ENVELOPE_OPEN}<s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:{_new_id()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To>{relates}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _new_id() -> str:
    return str(uuid.uuid4()).upper()


@dataclass
class Request:
    """The parts of a WS-Man request that WinRS uses."""

    action: str
    resource_uri: str
    message_id: str | None
    shell_id: str | None
    options: dict[str, str]
    operation_timeout: float
    body: ET.Element

    @property
    def name(self) -> str:
        """Short action name (Create, Command, ...), or the last part of an unknown action URI."""
        return ACTIONS.get(self.action, self.action.rsplit("/", 1)[-1] or "Unknown")


def parse_request(text: bytes) -> Request:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise WSManFault(CODE_INVALID_BODY, f"The request is not valid XML: {exc}.", "w:InvalidBody") from exc
    header = root.find(f"{_E}Header")
    body = root.find(f"{_E}Body")
    if root.tag != f"{_E}Envelope" or header is None or body is None:
        raise WSManFault(CODE_INVALID_BODY, "The request is not a SOAP 1.2 envelope with a Header and a Body.",
                         "w:InvalidBody")
    selectors = {s.get("Name", ""): s.text or "" for s in header.iterfind(f"{_W}SelectorSet/{_W}Selector")}
    options = {o.get("Name", ""): (o.text or "").strip() for o in header.iterfind(f"{_W}OptionSet/{_W}Option")}
    return Request(
        action=_text(header, f"{_A}Action"),
        resource_uri=_text(header, f"{_W}ResourceURI"),
        message_id=_text(header, f"{_A}MessageID") or None,
        shell_id=selectors.get("ShellId"),
        options=options,
        operation_timeout=_seconds(_text(header, f"{_W}OperationTimeout")),
        body=body,
    )


def _text(parent: ET.Element, path: str) -> str:
    node = parent.find(path)
    return (node.text or "").strip() if node is not None else ""


def _seconds(duration: str) -> float:
    match = _DURATION.match(duration)
    return min(float(match.group(1)), MAX_RECEIVE_WAIT) if match else MAX_RECEIVE_WAIT


@dataclass
class Command:
    """A command of a shell: it starts (once) when its standard input is complete, in a thread of
    its own, and its output is delivered once."""

    id: str
    command: str
    arguments: list[str]
    expects_stdin: bool
    stdin: list[bytes] = field(default_factory=list)
    stdin_ended: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    result: tuple[bytes, bytes, int] | None = None
    failure: str | None = None  # the host model failed (a bug): told to the client as an internal error
    lost: bool = False  # the answer never reaches the client (LostAnswer)
    lock: threading.Lock = field(default_factory=threading.Lock)  # for its input's end and its delivery
    delivered: bool = False


@dataclass
class Shell:
    id: str
    owner: str
    commands: dict[str, Command] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    """WinRS's answer to one request: the action's short name, HTTP status and SOAP text.
    ``hang_up``: send nothing and close the connection (the answer of a command is lost)."""

    action: str
    status: int
    body: bytes
    hang_up: bool = False


class WinRS:
    """The shells of one emulated host."""

    def __init__(self, host_name: str, endpoint_url: str, run: RunCommand) -> None:
        self._host_name = host_name
        self._run_command = run
        self._endpoint_url = endpoint_url
        self._shells: dict[str, Shell] = {}
        self._lock = threading.Lock()
        self._handlers: dict[str, Callable[[Request, str], str]] = {
            "Create": self._create, "Command": self._command, "Send": self._send,
            "Receive": self._receive, "Signal": self._signal, "Delete": self._delete,
        }

    def handle(self, text: bytes, user: str) -> Reply:
        """Answer one SOAP request from `user`."""
        try:
            request = parse_request(text)
        except WSManFault as fault:
            return Reply("Invalid", 500, fault.envelope(None, self._host_name))
        try:
            body = self._dispatch(request, user)
        except WSManFault as fault:
            return Reply(request.name, 500, fault.envelope(request.message_id, self._host_name))
        except _HangUp:
            return Reply(request.name, 0, b"", hang_up=True)
        return Reply(request.name, 200, envelope(_RESPONSE_ACTIONS[request.name], request.message_id, body))

    def _dispatch(self, request: Request, user: str) -> str:
        if request.resource_uri != CMD_RESOURCE:
            raise WSManFault(
                CODE_RESOURCE_NOT_FOUND,
                f"The resource URI {request.resource_uri or '(none)'} is not supported: this emulated host "
                f"(nhs-cm-emulator, not Windows) serves only the WinRS cmd shell ({CMD_RESOURCE}). "
                "PowerShell remoting (PSRP, the psrp connection) is not emulated; use ansible_connection=winrm.",
                "w:DestinationUnreachable")
        handler = self._handlers.get(request.name)
        if handler is None:
            raise WSManFault(CODE_ACTION_NOT_SUPPORTED,
                             f"The WS-Management service does not support the action {request.action or '(none)'}.",
                             "a:ActionNotSupported")
        return handler(request, user)

    # -- shells -------------------------------------------------------------------------------

    def _create(self, request: Request, user: str) -> str:
        shell = Shell(_new_id(), user)
        with self._lock:
            self._shells[shell.id] = shell
        spec = request.body.find(f"{_S}Shell")
        inputs = _text(spec, f"{_S}InputStreams") if spec is not None else ""
        outputs = _text(spec, f"{_S}OutputStreams") if spec is not None else ""
        return (
            f"<x:ResourceCreated><a:Address>{escape(self._endpoint_url)}</a:Address><a:ReferenceParameters>"
            f'<w:ResourceURI>{CMD_RESOURCE}</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">{shell.id}'
            f"</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
            f"<rsp:Shell><rsp:ShellId>{shell.id}</rsp:ShellId><rsp:ResourceUri>{CMD_RESOURCE}</rsp:ResourceUri>"
            f"<rsp:Owner>{escape(user)}</rsp:Owner><rsp:ClientIP>127.0.0.1</rsp:ClientIP>"
            f"<rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>"
            f"<rsp:InputStreams>{escape(inputs or 'stdin')}</rsp:InputStreams>"
            f"<rsp:OutputStreams>{escape(outputs or 'stdout stderr')}</rsp:OutputStreams>"
            f"<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity>"
            f"</rsp:Shell>"
        )

    def _delete(self, request: Request, user: str) -> str:
        with self._lock:
            self._shell(request)
            del self._shells[request.shell_id or ""]
        return ""

    def _shell(self, request: Request) -> Shell:
        shell = self._shells.get(request.shell_id or "")
        if shell is None:
            raise WSManFault(
                CODE_SHELL_NOT_FOUND,
                f"The request for the Windows Remote Shell with ShellId {request.shell_id or '(none)'} failed "
                "because the shell was not found on the server. Possible causes are: the specified ShellId is "
                "incorrect or the shell no longer exists on the server. Provide the correct ShellId or create a "
                "new shell and retry the operation.",
                "w:InvalidSelectors")
        return shell

    def _find_command(self, request: Request, path: str) -> Command:
        node = request.body.find(path)
        command_id = node.get("CommandId", "") if node is not None else ""
        with self._lock:
            shell = self._shell(request)
            command = shell.commands.get(command_id)
        if command is None:
            raise WSManFault(
                CODE_SHELL_NOT_FOUND,
                f"The request for the Windows Remote Shell with ShellId {shell.id} failed because the command "
                f"with CommandId {command_id or '(none)'} was not found.",
                "w:InvalidSelectors")
        return command

    # -- commands -----------------------------------------------------------------------------

    def _command(self, request: Request, user: str) -> str:
        line = request.body.find(f"{_S}CommandLine")
        if line is None:
            raise WSManFault(CODE_INVALID_BODY, "The Command request has no rsp:CommandLine.", "w:InvalidBody")
        command = Command(
            id=_new_id(),
            command=(line.findtext(f"{_S}Command") or "").strip(),
            arguments=[a.text or "" for a in line.iterfind(f"{_S}Arguments")],
            expects_stdin=request.options.get("WINRS_CONSOLEMODE_STDIN", "TRUE").upper() == "FALSE",
        )
        with self._lock:
            self._shell(request).commands[command.id] = command
        if not command.expects_stdin:  # no standard input to wait for: it starts now, as on Windows
            command.stdin_ended.set()
            self._start(command)
        return f"<rsp:CommandResponse><rsp:CommandId>{command.id}</rsp:CommandId></rsp:CommandResponse>"

    def _send(self, request: Request, user: str) -> str:
        command = self._find_command(request, f"{_S}Send/{_S}Stream")
        with command.lock:
            if command.stdin_ended.is_set():
                raise WSManFault(CODE_PIPE_CLOSING, "The pipe is being closed.", sender=False)
            ended = False
            for stream in request.body.iterfind(f"{_S}Send/{_S}Stream"):
                try:
                    command.stdin.append(base64.b64decode((stream.text or "").strip(), validate=True))
                except binascii.Error as exc:
                    raise WSManFault(CODE_INVALID_BODY, "The stdin stream is not valid base64.",
                                     "w:InvalidBody") from exc
                ended = ended or stream.get("End", "").lower() == "true"
            if ended:
                command.stdin_ended.set()
                self._start(command)  # the input is complete: the command runs now, not on a Receive
        return "<rsp:SendResponse/>"

    def _receive(self, request: Request, user: str) -> str:
        command = self._find_command(request, f"{_S}Receive/{_S}DesiredStream")
        if not command.finished.wait(request.operation_timeout):  # input not complete, or still running
            raise WSManFault(
                CODE_OPERATION_TIMEOUT,
                "The WS-Management service cannot complete the operation within the time specified in "
                "OperationTimeout.",
                "w:TimedOut", sender=False)
        if command.failure is not None:  # a bug in the host model: tell the client instead of hanging up
            raise internal_error(f"The emulated host failed: {command.failure}")
        stdout, stderr, rc = self._deliver(command)
        return (
            f"<rsp:ReceiveResponse>{_stream('stdout', command.id, stdout)}{_stream('stderr', command.id, stderr)}"
            f'<rsp:CommandState CommandId="{command.id}" State="{DONE_STATE}"><rsp:ExitCode>{rc}</rsp:ExitCode>'
            f"</rsp:CommandState></rsp:ReceiveResponse>"
        )

    def _start(self, command: Command) -> None:
        """Run the command in a thread of its own (once: its input is complete)."""
        name = f"nhs-cm-emulator-command-{self._host_name}"
        threading.Thread(target=self._run, args=(command,), name=name, daemon=True).start()

    def _run(self, command: Command) -> None:
        try:
            command.result = self._run_command(command.command, command.arguments, b"".join(command.stdin))
        except LostAnswer as lost:
            command.result, command.lost = lost.result, True
        except Exception as exc:  # a bug in the host model: reported on the Receive
            command.failure = f"{type(exc).__name__}: {exc}"
        finally:
            command.finished.set()

    def _deliver(self, command: Command) -> tuple[bytes, bytes, int]:
        """The output, once; later Receives get none (and Done). A lost answer hangs up instead."""
        assert command.result is not None
        with command.lock:
            stdout, stderr, rc = command.result
            if command.delivered:
                return b"", b"", rc
            command.delivered = True
            if command.lost:
                raise _HangUp
            return stdout, stderr, rc

    def _signal(self, request: Request, user: str) -> str:
        command = self._find_command(request, f"{_S}Signal")
        code = request.body.findtext(f"{_S}Signal/{_S}Code") or ""
        if code.strip().endswith("/signal/terminate"):
            with self._lock:
                self._shell(request).commands.pop(command.id, None)
        return "<rsp:SignalResponse/>"


class _HangUp(Exception):
    """Internal: answer this request by closing the connection (a lost answer)."""


def _stream(name: str, command_id: str, data: bytes) -> str:
    text = base64.b64encode(data).decode("ascii") if data else ""
    return f'<rsp:Stream Name="{name}" CommandId="{command_id}" End="true">{text}</rsp:Stream>'
