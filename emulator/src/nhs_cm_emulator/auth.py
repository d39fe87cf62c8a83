"""WinRM authentication: Basic, Negotiate (NTLM with pyspnego's acceptor, Kerberos with MIT's through
gssapi) and message encryption with either.

pyspnego's acceptor looks its users up in the file named by the environment variable
``NTLM_USER_FILE``, read while the client's AUTHENTICATE message is checked. A host must accept only
its own users and two hosts may give the same user different passwords, so each distinct set of
users gets its own private file and every acceptor step runs under one lock with the variable
pointing at its host's file. The steps are cheap (an HMAC or two), so the lock costs nothing
measurable.

Kerberos (a domain-joined estate, ``serve --keytab``): each host accepts tickets for its own service
principal ``HTTP/<host>.<domain>@REALM`` only, with keys from the keytab, through MIT Kerberos'
acceptor (python-gssapi): a ticket for another host's SPN, a replayed or tampered token, a ticket
past its end or TLS channel bindings that do not match are refused by MIT as Windows refuses them.
A host accepts a principal of its own realm whose name is one of its users. A host whose clock is
off by more than 5 minutes (``winrm.clock_offset_seconds``) refuses every ticket, as Windows does
(KRB_AP_ERR_SKEW): everything here shares one real clock, so the emulator applies the offset itself.
gssapi is optional: without a keytab the emulator does not import it.

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
from typing import Any

import spnego
import spnego.exceptions
from spnego._ntlm_raw.crypto import ntowfv1  # pyspnego is pinned exactly (requirements.txt)
from spnego._spnego import unpack_token

ENV_VAR = "NTLM_USER_FILE"
ENCRYPTED_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
ENCRYPTED_CONTENT_TYPE = f'multipart/encrypted;protocol="{ENCRYPTED_PROTOCOL}";boundary="Encrypted Boundary"'
BASIC_CHALLENGE = 'Basic realm="WSMAN"'
NEGOTIATE_CHALLENGE = "Negotiate"

_BOUNDARY = b"--Encrypted Boundary"
_OCTET_STREAM = b"\tContent-Type: application/octet-stream\r\n"
_ENV_LOCK = threading.Lock()
# seconds: Windows' Kerberos policy default, "maximum tolerance for computer clock synchronization"
MAX_CLOCK_SKEW = 300
KRB5_OIDS = ("1.2.840.113554.1.2.2", "1.2.840.48018.1.2.2")  # Kerberos 5, and Microsoft's variant of its OID
_KRB5_OID_DER = bytes.fromhex("06092a864886f712010202")
_SPNEGO_OID_DER = bytes.fromhex("06062b0601050502")


class AuthFailed(Exception):
    """The client's credentials or token were rejected (HTTP 401), with a token to send back if any."""

    def __init__(self, message: str, token: bytes | None = None) -> None:
        super().__init__(message)
        self.token = token


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


def token_package(token: bytes) -> str:
    """``kerberos`` or ``ntlm``: the package a client's first Negotiate token is for.

    NTLM raw (pywinrm's ntlm, requests-ntlm), Kerberos raw in a GSS-API header (pywinrm's kerberos,
    pykerberos), or SPNEGO naming its preferred mechanism first (pypsrp, pyspnego).
    """
    if token.startswith(b"NTLMSSP\0"):
        return "ntlm"
    mech = _gss_mech_der(token)
    if mech == _KRB5_OID_DER:
        return "kerberos"
    if mech == _SPNEGO_OID_DER:
        try:
            mechs = getattr(unpack_token(token), "mech_types", None) or []
        except Exception:  # a malformed token is the acceptor's to refuse
            mechs = []
        return "kerberos" if mechs and mechs[0] in KRB5_OIDS else "ntlm"
    return "ntlm"


def _gss_mech_der(token: bytes) -> bytes | None:
    """The DER OID of an RFC 2743 InitialContextToken (0x60, length, OID, ...), or None."""
    if len(token) < 4 or token[0] != 0x60:
        return None
    index = 2 + (token[1] & 0x7F if token[1] & 0x80 else 0)
    if index + 2 > len(token) or token[index] != 0x06:
        return None
    return token[index:index + 2 + token[index + 1]]


class KerberosRealm:
    """The domain of a Kerberos estate: its realm, the desktops' keys (a keytab) and a replay cache."""

    def __init__(self, realm: str, keytab: str, replay_cache: str) -> None:
        try:
            import gssapi  # optional: only a Kerberos estate needs it
        except ImportError as exc:
            raise ImportError("Kerberos needs the Python package gssapi (make kerberos installs it)") from exc
        self._gssapi: Any = gssapi
        self.realm = realm.upper()
        self.domain = realm.lower()
        self._store = {b"keytab": keytab.encode(), b"rcache": replay_cache.encode()}
        self._mechs = [gssapi.OID.from_int_seq(oid) for oid in (KRB5_OIDS[0], "1.3.6.1.5.5.2")]

    def principal(self, host: str) -> str:
        """The SPN of a host's WinRM listener, ``HTTP/<host>.<domain>@REALM``."""
        return f"HTTP/{host.lower()}.{self.domain}@{self.realm}"

    def credentials(self, host: str) -> Any:
        """Acceptor credentials for the host's SPN only. Read from the keytab each time it is asked:
        a desktop joined (its SPN registered, its key exported) after start is accepted from then on."""
        gssapi = self._gssapi
        name = gssapi.Name(self.principal(host), gssapi.NameType.kerberos_principal)
        raw = gssapi.raw.acquire_cred_from(self._store, name=name, mechs=self._mechs, usage="accept")
        return gssapi.Credentials(base=raw.creds)

    def context(self, credentials: Any, channel_bindings: bytes | None) -> Any:
        """A new server context (a gssapi.SecurityContext) bound to the TLS channel, if any."""
        gssapi = self._gssapi
        bindings = gssapi.raw.ChannelBindings(application_data=channel_bindings) if channel_bindings else None
        context = gssapi.SecurityContext(creds=credentials, usage="accept", channel_bindings=bindings)
        context.__DEFER_STEP_ERRORS__ = False  # MIT's error now, with its KRB-ERROR token
        return context

    def step(self, context: Any, token: bytes) -> bytes | None:
        """Feed `token` to the context; raise AuthFailed (with MIT's KRB-ERROR token, if any)."""
        try:
            return context.step(token)
        except self._gssapi.exceptions.GSSError as exc:
            raise AuthFailed(f"Kerberos logon refused: {_gss_message(exc)}", getattr(exc, "token", None)) from exc

    def user_of(self, principal: str) -> tuple[str, str]:
        """(name, realm) of ``name@REALM``."""
        name, _, realm = principal.rpartition("@")
        return (name, realm.upper()) if name else (principal, "")

    def wrap(self, context: Any, message: bytes) -> tuple[bytes, bytes]:
        """(header, sealed data and padding) of `message`, as Windows seals WinRM messages (GSS IOV)."""
        raw = self._gssapi.raw
        kind, buffer = raw.IOVBufferType, raw.IOVBuffer
        iov = raw.IOV(buffer(kind.header, True, None), buffer(kind.data, False, message),
                      buffer(kind.padding, True, None), std_layout=False)
        raw.wrap_iov(context, iov, confidential=True)
        return iov[0].value or b"", (iov[1].value or b"") + (iov[2].value or b"")

    def unwrap(self, context: Any, header: bytes, sealed: bytes) -> bytes:
        """The message of a (header, sealed) pair from the client (AES: the padding is in the header)."""
        raw = self._gssapi.raw
        kind, buffer = raw.IOVBufferType, raw.IOVBuffer
        iov = raw.IOV(buffer(kind.header, False, header), buffer(kind.data, False, sealed),
                      buffer(kind.data, False, None), std_layout=False)
        raw.unwrap_iov(context, iov)
        return iov[1].value or b""

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        return (self._gssapi.exceptions.GSSError,)


def _gss_message(exc: Exception) -> str:
    return " ".join(str(exc).split())


class HostAuth:
    """What one emulated host accepts: its schemes (basic, ntlm, kerberos), its users, its clock."""

    def __init__(self, schemes: list[str], users: dict[str, str], ntlm_file: str | None,
                 kerberos: tuple[KerberosRealm, str] | None = None, clock_offset: float = 0,
                 computer_name: str | None = None) -> None:
        self.basic = "basic" in schemes
        self.ntlm_file = ntlm_file if "ntlm" in schemes else None
        self.ntlm = self.ntlm_file is not None
        # (the estate's realm, this host's name): Kerberos needs both the scheme and a domain (a keytab)
        self.kerberos = kerberos if "kerberos" in schemes else None
        self.negotiate = self.ntlm or "kerberos" in schemes
        self.clock_offset = clock_offset
        self._users = users
        self._by_lower = {name.lower(): name for name in users}
        self._domains = {domain.lower() for domain in local_domains(computer_name)}

    def challenges(self, token: bytes | None = None) -> list[str]:
        """The WWW-Authenticate values of a 401 from this host (Negotiate with an error token, if any)."""
        negotiate = f"{NEGOTIATE_CHALLENGE} {base64.b64encode(token).decode()}" if token else NEGOTIATE_CHALLENGE
        return [c for c, on in ((negotiate, self.negotiate), (BASIC_CHALLENGE, self.basic)) if on]

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

    def connection(self, channel_bindings: bytes | None = None) -> ConnectionAuth:
        """Fresh Negotiate state for a new TCP connection (with the TLS channel bindings, over HTTPS)."""
        return ConnectionAuth(self, channel_bindings)


@dataclass(frozen=True)
class NegotiateStep:
    """One leg of a Negotiate handshake: the token to send back and whether the logon is complete."""

    token: bytes | None
    complete: bool


class ConnectionAuth:
    """Negotiate state of one TCP connection (NTLM or Kerberos): they authenticate connections, not requests."""

    def __init__(self, host: HostAuth, channel_bindings: bytes | None = None) -> None:
        self._host = host
        self._channel_bindings = channel_bindings
        self._context: spnego.ContextProxy | None = None  # NTLM
        self._kerberos: Any = None  # a gssapi.SecurityContext
        self.user: str | None = None
        self.package: str | None = None  # "ntlm" or "kerberos" once a logon completed

    def reset(self) -> None:
        self._context = None
        self._kerberos = None
        self.user = None
        self.package = None

    def step(self, token_b64: str) -> NegotiateStep:
        """Feed one Negotiate token; raise AuthFailed when the logon is refused."""
        if self.user is not None or (self._kerberos is not None and self._kerberos.complete):
            self.reset()  # the client starts a new handshake on this connection
        try:
            token = base64.b64decode(token_b64, validate=True)
        except binascii.Error as exc:
            raise AuthFailed("malformed Negotiate token") from exc
        if self._kerberos is not None or (self._context is None and token_package(token) == "kerberos"):
            return self._kerberos_step(token)
        return self._ntlm_step(token)

    def _ntlm_step(self, token: bytes) -> NegotiateStep:
        ntlm_file = self._host.ntlm_file
        if ntlm_file is None:
            raise AuthFailed("NTLM is not enabled on this host")
        try:
            with _user_file(ntlm_file):
                if self._context is None:
                    # The builtin Negotiate takes raw NTLM (pywinrm, requests-ntlm) and SPNEGO (pypsrp) tokens.
                    self._context = spnego.server(protocol="negotiate", options=spnego.NegotiateOptions.use_negotiate)
                out = self._context.step(token)
        except Exception as exc:  # pyspnego raises assorted types (KeyError, struct.error ...) on malformed tokens
            self.reset()
            raise AuthFailed(f"NTLM logon refused: {type(exc).__name__}: {exc}") from exc
        if not self._context.complete:
            return NegotiateStep(out, complete=False)
        return self._logged_on(self._host.user_named(self._context.client_principal), "ntlm", out)

    def _kerberos_step(self, token: bytes) -> NegotiateStep:
        if self._host.kerberos is None:
            raise AuthFailed("Kerberos is not enabled on this host (or the estate has no domain: serve --keytab)")
        realm, host = self._host.kerberos
        if self._kerberos is None:
            try:
                credentials = realm.credentials(host)
            except realm.errors as exc:  # its SPN's key is not in the keytab: the desktop is not joined
                raise AuthFailed(f"no key for {realm.principal(host)}: {_gss_message(exc)}") from exc
            self._kerberos = realm.context(credentials, self._channel_bindings)
        try:
            out = realm.step(self._kerberos, token)
        except AuthFailed:
            self.reset()
            raise
        if not self._kerberos.complete:
            return NegotiateStep(out, complete=False)
        if abs(self._host.clock_offset) > MAX_CLOCK_SKEW:
            self.reset()
            raise AuthFailed(f"KRB_AP_ERR_SKEW: this host's clock is {self._host.clock_offset:+.0f} s off")
        name, principal_realm = realm.user_of(str(self._kerberos.initiator_name))
        user = self._host.user_named(name) if principal_realm == realm.realm else None
        return self._logged_on(user, "kerberos", out)

    def _logged_on(self, user: str | None, package: str, out: bytes | None) -> NegotiateStep:
        if user is None:
            self.reset()
            raise AuthFailed(f"{package} user is not one of this host's users")
        self.user = user
        self.package = package
        # The last token must reach the client on the 200: SPNEGO's mechListMIC, Kerberos' AP-REP (see README).
        return NegotiateStep(out, complete=True)

    def unwrap(self, body: bytes) -> bytes:
        """The SOAP text inside an MS-WSMV 2.2.9.1.1 `multipart/encrypted` body."""
        if self.package is None:
            raise EncryptionError("encrypted message on a connection without an NTLM or Kerberos logon")
        try:
            length = int(body.split(b"Length=", 1)[1].split(b"\r\n", 1)[0])
            start = body.index(_OCTET_STREAM) + len(_OCTET_STREAM)
            (header_len,) = struct.unpack("<I", body[start:start + 4])
            header = body[start + 4:start + 4 + header_len]
            sealed = body[start + 4 + header_len:].removesuffix(_BOUNDARY + b"--\r\n")
            plain = self._unseal(header, sealed)
        except (IndexError, ValueError, struct.error, spnego.exceptions.SpnegoError) as exc:
            raise EncryptionError(f"cannot unwrap the encrypted message: {exc}") from exc
        if len(plain) != length:
            raise EncryptionError("encrypted message length does not match its OriginalContent")
        return plain

    def _unseal(self, header: bytes, sealed: bytes) -> bytes:
        if self.package == "kerberos":
            assert self._host.kerberos is not None
            realm = self._host.kerberos[0]
            try:
                return realm.unwrap(self._kerberos, header, sealed)
            except realm.errors as exc:
                raise ValueError(_gss_message(exc)) from exc
        assert self._context is not None
        return self._context.unwrap_winrm(header, sealed)

    def wrap(self, message: bytes) -> bytes:
        """`message` sealed for the client, in the same framing."""
        if self.package == "kerberos":
            assert self._host.kerberos is not None
            header, data = self._host.kerberos[0].wrap(self._kerberos, message)
        else:
            assert self._context is not None
            wrapped = self._context.wrap_winrm(message)
            header, data = wrapped.header, wrapped.data
        return b"".join((
            _BOUNDARY, b"\r\n",
            b"\tContent-Type: ", ENCRYPTED_PROTOCOL.encode(), b"\r\n",
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=", str(len(message)).encode(), b"\r\n",
            _BOUNDARY, b"\r\n",
            _OCTET_STREAM,
            struct.pack("<I", len(header)), header, data,
            _BOUNDARY, b"--\r\n",
        ))
