"""HTTP layer: one WinRM listener per emulated host, one accept loop for all of them, the control server.

Every listener is bound inside 127.0.0.0/8. Connections are served by one daemon thread each
(ThreadingHTTPServer), speak HTTP/1.1 keep-alive, and get each response in a single write with
TCP_NODELAY set (two writes would meet Nagle and delayed ACK: about 40 ms per request).
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import json
import resource
import selectors
import shutil
import socket
import socketserver
import ssl
import struct
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol, Self
from urllib.parse import unquote, urlsplit

from nhs_cm_emulator import tls
from nhs_cm_emulator.auth import (
    ENCRYPTED_CONTENT_TYPE,
    AuthFailed,
    ConnectionAuth,
    EncryptionError,
    HostAuth,
    KerberosRealm,
    NtlmUserFiles,
)
from nhs_cm_emulator.wsman import Reply, WinRS, internal_error

SERVER_NAME = "nhs-cm-emulator"
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
EPHEMERAL_PORTS_START = 32768
SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
WSMAN_PATH = "/wsman"
FAULT_KINDS = ("refuse", "auth", "http500", "timeout", "drop")
DEFAULT_HOLD_SECONDS = 60.0
IDLE_TIMEOUT = 300.0  # seconds an idle keep-alive connection is kept
HIDDEN_PASSWORD = "(hidden)"  # what the control server shows instead of a password
HANDSHAKE_TIMEOUT = 10.0


class EmulatorError(Exception):
    """A start-up problem, reported to the user as one line."""


class EmulatedHost(Protocol):
    """What the server needs of a host (nhs_cm_emulator.state.HostState provides it)."""

    name: str
    template: str
    auth: list[str]
    users: dict[str, str]
    transport_fail: dict[str, Any] | None
    writes: int

    def state_dict(self) -> dict[str, Any]: ...


#: Runs one WinRS command on a host: (host, command, arguments, stdin) -> (stdout, stderr, exit code);
#: may raise ``wsman.LostAnswer``. The emulator's is ``commands.execute``.
ExecuteCommand = Callable[[Any, str, list[str], bytes], tuple[bytes, bytes, int]]


class EmulatedEstate(Protocol):
    """What the server needs of an estate (nhs_cm_emulator.state.Estate provides it)."""

    @property
    def hosts(self) -> Sequence[EmulatedHost]: ...

    def by_name(self, name: str) -> EmulatedHost: ...

    def state_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ServeOptions:
    """How to serve an estate (the `serve` command's options)."""

    bind: str = "address"  # "address": one loopback address per host; "port": one port per host
    base_address: str = "127.20.0.1"
    port: int | None = None  # --bind address: 5985, or 5986 with https
    base_port: int = 25985  # --bind port
    https: bool = False
    require_encryption: bool = False
    control_port: int | None = None  # None: no control server; 0: any free port
    keytab: str | None = None  # a domain-joined estate: the desktops' Kerberos keys (HTTP/<host>.<domain>)
    realm: str = "EMULATED.TEST"  # its Kerberos realm; the DNS domain is the realm in lower case

    @property
    def scheme(self) -> str:
        return "https" if self.https else "http"


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int


def loopback_address(text: str) -> ipaddress.IPv4Address:
    """`text` as an address inside 127.0.0.0/8, or EmulatorError."""
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError as exc:
        raise EmulatorError(f"{text!r} is not an IPv4 address") from exc
    if address not in LOOPBACK:
        raise EmulatorError(f"refusing to listen on {text}: the emulator binds only inside 127.0.0.0/8 (loopback)")
    return address


def plan_endpoints(count: int, options: ServeOptions) -> list[Endpoint]:
    """Where each of `count` hosts listens, in host order."""
    base = loopback_address(options.base_address)
    if options.bind == "port":
        last = options.base_port + count - 1
        if options.base_port < 1 or last >= EPHEMERAL_PORTS_START:
            raise EmulatorError(f"ports {options.base_port}..{last} for {count} hosts must lie within 1.."
                                f"{EPHEMERAL_PORTS_START - 1} (the ephemeral range starts at {EPHEMERAL_PORTS_START})")
        return [Endpoint(str(base), options.base_port + i) for i in range(count)]
    if options.bind != "address":
        raise EmulatorError(f"unknown bind mode {options.bind!r} (use address or port)")
    port = options.port if options.port is not None else 5986 if options.https else 5985
    if not 1 <= port <= 65535:
        raise EmulatorError(f"port {port} is not a TCP port (1..65535)")
    endpoints: list[Endpoint] = []
    candidate = int(base)
    while len(endpoints) < count:
        if candidate > int(LOOPBACK.broadcast_address):
            raise EmulatorError(f"{count} hosts from {base} onwards do not fit inside 127.0.0.0/8")
        if candidate & 0xFF not in (0, 255):
            endpoints.append(Endpoint(str(ipaddress.IPv4Address(candidate)), port))
        candidate += 1
    return endpoints


@dataclass(frozen=True)
class FaultPlan:
    """A host's transport fault: requests after..after+times-1 (0-based, counted per host) fail."""

    kind: str
    after: int
    times: int
    seconds: float

    @classmethod
    def from_spec(cls, host: str, spec: dict[str, Any] | None) -> FaultPlan | None:
        if not spec:
            return None
        kind = spec.get("kind")
        if kind not in FAULT_KINDS:
            raise EmulatorError(f"host {host}: transport fault kind {kind!r} is not one of {', '.join(FAULT_KINDS)}")
        return cls(kind, int(spec.get("after_requests", 0)), int(spec.get("times", 1)),
                   float(spec.get("seconds", DEFAULT_HOLD_SECONDS)))

    def applies(self, index: int) -> bool:
        return self.after <= index < self.after + self.times

    @property
    def refuses_from_start(self) -> bool:
        """No listener at all: a true "connection refused" (the host never listens then)."""
        return self.kind == "refuse" and self.after == 0


class HostRuntime:
    """One emulated host as the HTTP layer sees it: endpoint, auth, shells, fault plan and counters."""

    def __init__(self, host: EmulatedHost, endpoint: Endpoint, scheme: str, auth: HostAuth,
                 execute: ExecuteCommand) -> None:
        self.host = host
        self.endpoint = endpoint
        self.auth = auth
        self.fault = FaultPlan.from_spec(host.name, host.transport_fail)
        self.winrs = WinRS(host.name, f"{scheme}://{endpoint.address}:{endpoint.port}{WSMAN_PATH}",
                           functools.partial(execute, host))
        self._lock = threading.Lock()
        self._requests = 0
        self._bytes_in = 0
        self._bytes_out = 0
        self._actions: Counter[str] = Counter()  # every WS-Man request, by action
        self._succeeded: Counter[str] = Counter()  # those answered 200
        # HTTP body bytes of each WS-Man request and of its answer, by action (not auth legs)
        self._action_in: Counter[str] = Counter()
        self._action_out: Counter[str] = Counter()
        self._logons: Counter[str] = Counter()  # completed logons by package: basic (every request), ntlm, kerberos
        self._messages: Counter[str] = Counter()  # WS-Man requests by protection: sealed, tls, plain

    @property
    def listens(self) -> bool:
        return self.fault is None or not self.fault.refuses_from_start

    def admit(self) -> str | None:
        """Count one HTTP request; return the fault kind to inject into it, if any."""
        with self._lock:
            index = self._requests
            self._requests += 1
        return self.fault.kind if self.fault is not None and self.fault.applies(index) else None

    def record_traffic(self, bytes_in: int, bytes_out: int) -> None:
        with self._lock:
            self._bytes_in += bytes_in
            self._bytes_out += bytes_out

    def record_reply(self, reply: Reply, bytes_in: int, bytes_out: int) -> None:
        """Count a WS-Man request by action, with the HTTP body bytes of the request and its answer."""
        with self._lock:
            self._actions[reply.action] += 1
            self._action_in[reply.action] += bytes_in
            self._action_out[reply.action] += bytes_out
            if reply.status == HTTPStatus.OK:
                self._succeeded[reply.action] += 1

    def record_logon(self, package: str) -> None:
        with self._lock:
            self._logons[package] += 1

    def record_protection(self, protection: str) -> None:
        with self._lock:
            self._messages[protection] += 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self._requests, "bytes_in": self._bytes_in, "bytes_out": self._bytes_out,
                    "shells": self._succeeded["Create"], "commands": self._succeeded["Command"],
                    "writes": self.host.writes,
                    # offline user hives loaded to be read (not writes), and any still loaded (a bug)
                    "hive_loads": getattr(self.host, "hive_loads", 0),
                    "mounted": list(getattr(self.host, "mounted", list)()),
                    "actions": dict(self._actions),
                    "logons": dict(self._logons), "messages": dict(self._messages),
                    "action_bytes": {name: {"in": self._action_in[name], "out": self._action_out[name]}
                                     for name in self._actions}}


@dataclass
class _Shared:
    """What every listener of one emulator shares."""

    tls: ssl.SSLContext | None
    require_encryption: bool
    channel_binding: bytes | None = None  # RFC 5929 tls-server-end-point of the certificate, over HTTPS
    stopping: threading.Event = field(default_factory=threading.Event)


class _NoFqdnBind:
    """HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that takes seconds per address."""

    server_address: tuple[str, int]

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # type: ignore[arg-type]
        self.server_name, self.server_port = self.server_address[:2]


class WinRMListener(_NoFqdnBind, ThreadingHTTPServer):
    """The WinRM listener of one host."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, runtime: HostRuntime, shared: _Shared) -> None:
        self.runtime = runtime
        self.shared = shared
        super().__init__((runtime.endpoint.address, runtime.endpoint.port), WinRMHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.shared.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:  # the TLS handshake happens here, in the connection's own thread
            connection = self.shared.tls.wrap_socket(request, server_side=True)
        except OSError:
            return
        try:
            super().finish_request(connection, client_address)
        finally:
            connection.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exception(), OSError):  # clients hanging up are normal, bugs are not
            super().handle_error(request, client_address)


@dataclass(frozen=True)
class _Logon:
    user: str
    headers: list[tuple[str, str]] = field(default_factory=list)


class WinRMHandler(BaseHTTPRequestHandler):
    """One TCP connection to a host's WinRM listener."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    server: WinRMListener

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.negotiate: ConnectionAuth = self.server.runtime.auth.connection(self.server.shared.channel_binding)

    def version_string(self) -> str:
        return SERVER_NAME

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the emulator's stderr is often a pipe that nobody reads."""

    def do_POST(self) -> None:
        runtime = self.server.runtime
        if self.server.shared.stopping.is_set():
            self.close_connection = True
            return
        fault = runtime.admit()
        if fault == "refuse":
            self._reset()
            return
        body = self._read_body()
        if body is None:
            return
        if fault is not None:
            self._inject(fault)
        elif urlsplit(self.path).path.rstrip("/") != WSMAN_PATH:
            self._send(HTTPStatus.NOT_FOUND)
        else:
            self._serve(body)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._send(HTTPStatus.LENGTH_REQUIRED)
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(HTTPStatus.BAD_REQUEST)
            return None
        body = self.rfile.read(length)
        if len(body) < length:  # the client went away
            self.close_connection = True
            return None
        self.server.runtime.record_traffic(len(body), 0)
        return body

    def _serve(self, body: bytes) -> None:
        logon = self._authenticate()
        if logon is None:
            return
        encrypted = self.headers.get("Content-Type", "").lower().startswith("multipart/encrypted")
        size_in = len(body)
        if encrypted:
            try:
                body = self.negotiate.unwrap(body)
            except EncryptionError:
                self._send(HTTPStatus.BAD_REQUEST, headers=logon.headers)
                return
        elif body and self.server.shared.require_encryption and self.server.shared.tls is None:
            self._send(HTTPStatus.BAD_REQUEST, headers=logon.headers)  # like AllowUnencrypted=false
            return
        if not body:  # pywinrm's setup_encryption: an empty POST that completes the NTLM or Kerberos logon
            self._send(HTTPStatus.OK, headers=logon.headers)
            return
        self.server.runtime.record_protection(
            "sealed" if encrypted else "tls" if self.server.shared.tls is not None else "plain")
        reply = self.server.runtime.winrs.handle(body, logon.user)
        if reply.hang_up:  # a command's answer is lost (fault behaviour): no response, the connection closes
            self.server.runtime.record_reply(reply, size_in, 0)
            self.close_connection = True
            return
        answer = self.negotiate.wrap(reply.body) if encrypted else reply.body
        self.server.runtime.record_reply(reply, size_in, len(answer))
        self._send(reply.status, answer, ENCRYPTED_CONTENT_TYPE if encrypted else SOAP_CONTENT_TYPE, logon.headers)

    def _authenticate(self) -> _Logon | None:
        """The logged-on user, or None once a 401 has been sent."""
        auth = self.server.runtime.auth
        scheme, _, token = self.headers.get("Authorization", "").strip().partition(" ")
        try:
            if scheme.lower() == "basic":
                user = auth.check_basic(token.strip())
                self.server.runtime.record_logon("basic")
                return _Logon(user)
            if scheme.lower() in ("negotiate", "ntlm"):
                return self._negotiate_leg(scheme, token.strip())
            if not scheme and self.negotiate.user is not None:  # NTLM or Kerberos authenticated this connection
                return _Logon(self.negotiate.user)
        except AuthFailed as exc:
            self._deny(exc.token)
            return None
        self._deny()
        return None

    def _negotiate_leg(self, scheme: str, token: str) -> _Logon | None:
        step = self.negotiate.step(token)
        # The last token (SPNEGO's mechListMIC, Kerberos' AP-REP) must reach the client, on the 200 (see README).
        headers = [("WWW-Authenticate", f"{scheme} {base64.b64encode(step.token).decode()}")] if step.token else []
        if not step.complete:
            self._send(HTTPStatus.UNAUTHORIZED, headers=headers)
            return None
        assert self.negotiate.user is not None and self.negotiate.package is not None
        self.server.runtime.record_logon(self.negotiate.package)
        return _Logon(self.negotiate.user, headers)

    def _deny(self, token: bytes | None = None) -> None:
        """401 with the host's challenges; Negotiate carries the acceptor's error token (a KRB-ERROR), if any."""
        self.negotiate.reset()
        challenges = self.server.runtime.auth.challenges(token)
        self._send(HTTPStatus.UNAUTHORIZED, headers=[("WWW-Authenticate", c) for c in challenges])

    def _inject(self, kind: str) -> None:
        runtime = self.server.runtime
        if kind == "auth":
            self._deny()
        elif kind == "http500":
            fault = internal_error().envelope(None, runtime.host.name)
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, fault, SOAP_CONTENT_TYPE)
        else:  # timeout, drop: no answer
            if kind == "timeout":
                assert runtime.fault is not None
                self.server.shared.stopping.wait(runtime.fault.seconds)
            self.close_connection = True

    def _reset(self) -> None:
        """Hang up at once, with a TCP reset."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _send(self, status: int, body: bytes = b"", content_type: str | None = None,
              headers: list[tuple[str, str]] | None = None) -> None:
        """Write the whole response with one write (see the module docstring)."""
        lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", f"Server: {SERVER_NAME}",
                 f"Date: {self.date_time_string()}"]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        lines += [f"{name}: {value}" for name, value in headers or ()]
        lines.append(f"Content-Length: {len(body)}")
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        self.server.runtime.record_traffic(0, len(body))


class _AcceptLoop:
    """One thread accepting connections for every listener: a serve_forever thread per listener
    would mean 1,000 threads polling, and a stop that takes up to 0.5 s per listener."""

    def __init__(self, listeners: Sequence[ThreadingHTTPServer]) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        for listener in listeners:
            listener.socket.setblocking(False)
            self._selector.register(listener.socket, selectors.EVENT_READ, listener)
        self._thread = threading.Thread(target=self._run, name="nhs-cm-emulator-accept", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._wake_write.send(b"\0")
        self._thread.join()
        self._selector.close()
        self._wake_read.close()
        self._wake_write.close()

    def _run(self) -> None:
        while True:
            for key, _ in self._selector.select():
                if key.data is None:
                    return
                self._accept(key.data)

    @staticmethod
    def _accept(listener: ThreadingHTTPServer) -> None:
        try:
            request, client_address = listener.get_request()
        except OSError:  # the client gave up before we got to it
            return
        listener.process_request(request, client_address)  # starts the connection's thread


class ControlServer(_NoFqdnBind, ThreadingHTTPServer):
    """GET /state, /state/<host> and /stats as JSON, on 127.0.0.1."""

    daemon_threads = True

    def __init__(self, port: int, emulator: Emulator) -> None:
        self.emulator = emulator
        super().__init__(("127.0.0.1", port), ControlHandler)


class ControlHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ControlServer

    def version_string(self) -> str:
        return SERVER_NAME

    def log_message(self, format: str, *args: Any) -> None:
        """Silent, like the WinRM listeners."""

    def do_GET(self) -> None:
        status, document = self.server.emulator.control(unquote(urlsplit(self.path).path))
        body = json.dumps(document, default=str).encode("utf-8")
        head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nServer: {SERVER_NAME}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        self.wfile.write(head.encode("latin-1") + body)


def _raise_open_file_limit(wanted: int) -> None:
    """A listener per host, plus its connections, outgrow the usual soft limit of 1,024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))


class Emulator:
    """Serves an estate: a WinRM listener per host, plus the optional control server.

    Use as a context manager, or call start() and stop().
    """

    def __init__(self, estate: EmulatedEstate, options: ServeOptions, execute: ExecuteCommand) -> None:
        self.estate = estate
        self.execute = execute
        self.options = options
        self.runtimes: list[HostRuntime] = []
        self.control_url: str | None = None
        self._shared = _Shared(tls=None, require_encryption=options.require_encryption)
        self._listeners: list[WinRMListener] = []
        self._accept_loop: _AcceptLoop | None = None
        self._control: ControlServer | None = None
        self._workdir: Path | None = None
        self._ntlm_files: NtlmUserFiles | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Listen for every host; raise EmulatorError (after cleaning up) if that is not possible."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        hosts = list(self.estate.hosts)
        endpoints = plan_endpoints(len(hosts), self.options)
        _raise_open_file_limit(4 * len(hosts) + 256)
        self._workdir = Path(tempfile.mkdtemp(prefix="nhs-cm-emulator-"))  # private (0700)
        self._ntlm_files = NtlmUserFiles(self._workdir)
        if self.options.https:
            cert, key = tls.write_self_signed(self._workdir, sorted({e.address for e in endpoints}))
            self._shared.tls = tls.server_context(cert, key)
            self._shared.channel_binding = tls.channel_binding(cert)
        realm = self._kerberos_realm(self._workdir)
        for host, endpoint in zip(hosts, endpoints, strict=True):
            ntlm_file = self._ntlm_files.path_for(host.users, host.name) if "ntlm" in host.auth else None
            auth = HostAuth(host.auth, host.users, ntlm_file, (realm, host.name) if realm else None,
                            float(getattr(host, "clock_offset_seconds", 0)), computer_name=host.name)
            runtime = HostRuntime(host, endpoint, self.options.scheme, auth, self.execute)
            self.runtimes.append(runtime)
            if runtime.listens:
                self._listeners.append(self._listen(runtime))
        servers: list[ThreadingHTTPServer] = list(self._listeners)
        if self.options.control_port is not None:
            self._control = self._control_server(self.options.control_port)
            self.control_url = f"http://127.0.0.1:{self._control.server_port}"
            servers.append(self._control)
        self._accept_loop = _AcceptLoop(servers)
        self._accept_loop.start()

    def _kerberos_realm(self, workdir: Path) -> KerberosRealm | None:
        """The estate's domain, with a private replay cache, when it is served with a keytab."""
        if self.options.keytab is None:
            return None
        try:
            return KerberosRealm(self.options.realm, str(Path(self.options.keytab).resolve()),
                                 f"file2:{workdir / 'replay.rcache2'}")
        except ImportError as exc:
            raise EmulatorError(str(exc)) from exc

    def _listen(self, runtime: HostRuntime) -> WinRMListener:
        try:
            return WinRMListener(runtime, self._shared)
        except OSError as exc:
            where = f"{runtime.endpoint.address}:{runtime.endpoint.port}"
            raise EmulatorError(f"cannot listen on {where} for host {runtime.host.name}: {exc.strerror}") from exc

    def _control_server(self, port: int) -> ControlServer:
        try:
            return ControlServer(port, self)
        except OSError as exc:
            raise EmulatorError(f"cannot listen on 127.0.0.1:{port} for the control server: {exc.strerror}") from exc

    def stop(self) -> None:
        """Stop listening, release held requests and remove the private files. Idempotent."""
        self._shared.stopping.set()
        if self._accept_loop is not None:
            self._accept_loop.stop()
            self._accept_loop = None
        for listener in self._listeners:
            listener.server_close()
        self._listeners.clear()
        if self._control is not None:
            self._control.server_close()
            self._control = None
        if self._ntlm_files is not None:
            self._ntlm_files.restore_environment()
            self._ntlm_files = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def stats(self) -> dict[str, Any]:
        """Counters per host and summed over all hosts."""
        hosts = {runtime.host.name: runtime.stats() for runtime in self.runtimes}
        total: dict[str, Any] = dict.fromkeys(("requests", "bytes_in", "bytes_out", "shells", "commands", "writes",
                                               "hive_loads"), 0)
        actions: Counter[str] = Counter()
        logons: Counter[str] = Counter()
        messages: Counter[str] = Counter()
        action_bytes: dict[str, dict[str, int]] = {}
        for entry in hosts.values():
            for name in total:
                total[name] += entry[name]
            actions.update(entry["actions"])
            logons.update(entry["logons"])
            messages.update(entry["messages"])
            for action, sizes in entry["action_bytes"].items():
                summed = action_bytes.setdefault(action, {"in": 0, "out": 0})
                summed["in"] += sizes["in"]
                summed["out"] += sizes["out"]
        total["mounted"] = [mount for entry in hosts.values() for mount in entry["mounted"]]
        total["actions"] = dict(actions)
        total["logons"] = dict(logons)
        total["messages"] = dict(messages)
        total["action_bytes"] = action_bytes
        return {"hosts": hosts, "total": total}

    def control(self, path: str) -> tuple[int, Any]:
        """The control server's answer to GET `path`: (HTTP status, JSON document). Passwords are
        never shown: each host's ``winrm.users`` maps its user names to HIDDEN_PASSWORD."""
        path = path.rstrip("/")
        if path == "/state":
            state = self.estate.state_dict()
            for host in state.get("hosts", []):
                _hide_passwords(host)
            return HTTPStatus.OK, state
        if path == "/stats":
            return HTTPStatus.OK, self.stats()
        if path.startswith("/state/"):
            name = path.removeprefix("/state/")
            try:
                return HTTPStatus.OK, _hide_passwords(self.estate.by_name(name).state_dict())
            except KeyError:
                return HTTPStatus.NOT_FOUND, {"error": f"no host named {name!r}"}
        return HTTPStatus.NOT_FOUND, {"error": f"unknown path {path or '/'}: use /state, /state/<host> or /stats"}


def _hide_passwords(host: dict[str, Any]) -> dict[str, Any]:
    """``host`` (a state_dict copy) with every password of ``winrm.users`` replaced by HIDDEN_PASSWORD."""
    winrm = host.get("winrm")
    if isinstance(winrm, dict) and isinstance(winrm.get("users"), dict):
        winrm["users"] = dict.fromkeys(winrm["users"], HIDDEN_PASSWORD)
    return host
