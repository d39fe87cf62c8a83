"""WinRM authentication: Basic, NTLM/Negotiate (pyspnego acceptor) and NTLM message encryption.

pyspnego's acceptor looks its users up in the file named by the environment variable
``NTLM_USER_FILE``, read while the client's AUTHENTICATE message is checked. A host must accept only
its own users and two hosts may give the same user different passwords, so each distinct set of
users gets its own private file and every acceptor step runs under one lock with the variable
pointing at its host's file. The steps are cheap (an HMAC or two), so the lock costs nothing
measurable.

Account names, as Windows takes them for a local account of the host: case-insensitively, and with
NTLM also qualified by the host's own name, its NetBIOS form (15 characters) or ``.``
(``PC-0001\\ansible``, ``.\\ansible``); Basic takes the bare name only (WinRM's Basic logs local
accounts on by their bare name; a qualified one gets 401). ``user@domain`` is a domain account's
form (UPN) and is not a local account's, with either scheme. A user listed with a domain
(``NHS\\admin``) is taken as listed.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import spnego
import spnego.exceptions
from spnego._ntlm_raw.crypto import ntowfv1  # pyspnego is pinned exactly (requirements.txt)

ENV_VAR = "NTLM_USER_FILE"
ENCRYPTED_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
ENCRYPTED_CONTENT_TYPE = f'multipart/encrypted;protocol="{ENCRYPTED_PROTOCOL}";boundary="Encrypted Boundary"'
BASIC_CHALLENGE = 'Basic realm="WSMAN"'
NEGOTIATE_CHALLENGE = "Negotiate"

_BOUNDARY = b"--Encrypted Boundary"
_OCTET_STREAM = b"\tContent-Type: application/octet-stream\r\n"
_ENV_LOCK = threading.Lock()


class AuthFailed(Exception):
    """The client's credentials or token were rejected (HTTP 401)."""


class EncryptionError(Exception):
    """An encrypted body that cannot be unwrapped on this connection (HTTP 400)."""


class NtlmUserFiles:
    """Private NTLM_USER_FILEs, one per distinct set of users, in a private directory."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._files: dict[tuple[tuple[str, str], ...], str] = {}
        self._saved = os.environ.get(ENV_VAR)

    def path_for(self, users: dict[str, str], computer_name: str | None = None) -> str:
        """The file holding exactly `users` (written on first use), each local one (no domain) also
        under the domains that name the host ``computer_name`` (see the module docstring)."""
        domains = local_domains(computer_name)
        key = (tuple(sorted(users.items())), tuple(sorted(domains)))
        if key not in self._files:
            path = self._directory / f"ntlm-users-{len(self._files)}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                for user, password in key[0]:
                    names = [user] if "\\" in user or "@" in user else [user] + [f"{d}\\{user}" for d in key[1]]
                    handle.writelines(_smbpasswd_line(name, password) for name in names)
            self._files[key] = str(path)
        return self._files[key]

    def restore_environment(self) -> None:
        """Put NTLM_USER_FILE back as it was before these files existed."""
        with _ENV_LOCK:
            if self._saved is None:
                os.environ.pop(ENV_VAR, None)
            else:
                os.environ[ENV_VAR] = self._saved


def local_domains(computer_name: str | None) -> set[str]:
    """The domain parts that name the host itself in ``DOMAIN\\user`` (compared case-insensitively):
    ``.``, the computer name and its NetBIOS form (the first 15 characters, upper case)."""
    if not computer_name:
        return {"."}
    return {".", computer_name.upper(), computer_name[:15].upper()}


def _smbpasswd_line(user: str, password: str) -> str:
    # The smbpasswd form (hashes) rather than DOMAIN:USER:PASSWORD, so that a password may hold ':'.
    nt_hash = ntowfv1(password).hex().upper()
    return f"{user}:0:{'0' * 32}:{nt_hash}:[U]:LCT-00000000\n"


@contextmanager
def _user_file(path: str) -> Iterator[None]:
    with _ENV_LOCK:
        if os.environ.get(ENV_VAR) != path:
            os.environ[ENV_VAR] = path
        yield


class HostAuth:
    """What one emulated host accepts: its schemes (basic, ntlm) and its users."""

    def __init__(self, schemes: list[str], users: dict[str, str], ntlm_file: str | None,
                 computer_name: str | None = None) -> None:
        self.basic = "basic" in schemes
        self.ntlm_file = ntlm_file if "ntlm" in schemes else None
        self.ntlm = self.ntlm_file is not None
        self._users = users
        self._by_lower = {name.lower(): name for name in users}
        self._domains = {domain.lower() for domain in local_domains(computer_name)}

    def challenges(self) -> list[str]:
        """The WWW-Authenticate values of a 401 from this host."""
        return [c for c, on in ((NEGOTIATE_CHALLENGE, self.ntlm), (BASIC_CHALLENGE, self.basic)) if on]

    def check_basic(self, token: str) -> str:
        """The user named by a Basic token, if the host takes Basic and the password matches."""
        try:
            name, _, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthFailed("malformed Basic credentials") from exc
        user = self.user_named(name, qualified=False)  # Basic: a local account by its bare name
        if not self.basic or user is None or not hmac.compare_digest(
                self._users[user].encode("utf-8"), password.encode("utf-8")):
            raise AuthFailed("Basic logon refused")
        return user

    def user_named(self, name: str | None, qualified: bool = True) -> str | None:
        """The host's own spelling of user `name` (case-insensitive), or None if it has no such user.
        ``qualified``: a local user may also be named ``<this host>\\user`` or ``.\\user`` (NTLM)."""
        text = (name or "").lower()
        listed = self._by_lower.get(text)
        if listed is not None:
            return listed
        domain, backslash, bare = text.rpartition("\\")
        if qualified and backslash and domain in self._domains and bare in self._by_lower:
            return self._by_lower[bare]
        return None

    def connection(self) -> ConnectionAuth:
        """Fresh NTLM state for a new TCP connection."""
        return ConnectionAuth(self)


@dataclass(frozen=True)
class NtlmStep:
    """One leg of an NTLM handshake: the token to send back and whether the logon is complete."""

    token: bytes | None
    complete: bool


class ConnectionAuth:
    """NTLM state of one TCP connection: NTLM authenticates connections, not requests."""

    def __init__(self, host: HostAuth) -> None:
        self._host = host
        self._context: spnego.ContextProxy | None = None
        self.user: str | None = None

    def reset(self) -> None:
        self._context = None
        self.user = None

    def step(self, token_b64: str) -> NtlmStep:
        """Feed one Negotiate/NTLM token; raise AuthFailed when the logon is refused."""
        ntlm_file = self._host.ntlm_file
        if ntlm_file is None:
            raise AuthFailed("NTLM is not enabled on this host")
        if self._context is not None and self._context.complete:
            self.reset()  # the client starts a new handshake on this connection
        try:
            token = base64.b64decode(token_b64, validate=True)
            with _user_file(ntlm_file):
                if self._context is None:
                    # The builtin Negotiate takes raw NTLM (pywinrm, requests-ntlm) and SPNEGO (pypsrp) tokens.
                    self._context = spnego.server(protocol="negotiate", options=spnego.NegotiateOptions.use_negotiate)
                out = self._context.step(token)
        except Exception as exc:  # pyspnego raises assorted types (KeyError, struct.error ...) on malformed tokens
            self.reset()
            raise AuthFailed(f"NTLM logon refused: {type(exc).__name__}: {exc}") from exc
        if not self._context.complete:
            return NtlmStep(out, complete=False)
        user = self._host.user_named(self._context.client_principal)
        if user is None:
            self.reset()
            raise AuthFailed("NTLM user is not one of this host's users")
        self.user = user
        # With SPNEGO the final token carries the mechListMIC: the client needs it (see README).
        return NtlmStep(out, complete=True)

    def unwrap(self, body: bytes) -> bytes:
        """The SOAP text inside an MS-WSMV 2.2.9.1.1 `multipart/encrypted` body."""
        if self._context is None or not self._context.complete:
            raise EncryptionError("encrypted message on a connection without an NTLM logon")
        try:
            length = int(body.split(b"Length=", 1)[1].split(b"\r\n", 1)[0])
            start = body.index(_OCTET_STREAM) + len(_OCTET_STREAM)
            (header_len,) = struct.unpack("<I", body[start:start + 4])
            header = body[start + 4:start + 4 + header_len]
            sealed = body[start + 4 + header_len:].removesuffix(_BOUNDARY + b"--\r\n")
            plain = self._context.unwrap_winrm(header, sealed)
        except (IndexError, ValueError, struct.error, spnego.exceptions.SpnegoError) as exc:
            raise EncryptionError(f"cannot unwrap the encrypted message: {exc}") from exc
        if len(plain) != length:
            raise EncryptionError("encrypted message length does not match its OriginalContent")
        return plain

    def wrap(self, message: bytes) -> bytes:
        """`message` sealed for the client, in the same framing."""
        assert self._context is not None
        wrapped = self._context.wrap_winrm(message)
        return b"".join((
            _BOUNDARY, b"\r\n",
            b"\tContent-Type: ", ENCRYPTED_PROTOCOL.encode(), b"\r\n",
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=", str(len(message)).encode(), b"\r\n",
            _BOUNDARY, b"\r\n",
            _OCTET_STREAM,
            struct.pack("<I", len(wrapped.header)), wrapped.header, wrapped.data,
            _BOUNDARY, b"--\r\n",
        ))
