"""Basic, NTLM (raw and SPNEGO), NTLM message encryption and HTTPS."""

from __future__ import annotations

import base64
import http.client
import ipaddress
import os
import ssl
from pathlib import Path

import pytest
import spnego
import xmltodict
from cryptography import x509
from winrm.exceptions import InvalidCredentialsError, WinRMTransportError
from winrm.protocol import Protocol

from nhs_cm_emulator import auth, wsman

USER, PASSWORD = "ansible", "Passw0rd!"


@pytest.mark.parametrize(("transport", "encryption", "encrypted"), [
    ("basic", "auto", False),
    ("ntlm", "auto", True),
    ("ntlm", "always", True),
    ("ntlm", "never", False),
])
def test_pywinrm_over_http(serve, client, make_host, run_command, transport, encryption, encrypted):
    emulator = serve([make_host("pc-1")], base_address="127.21.2.1")
    protocol = client(emulator, transport=transport, message_encryption=encryption)
    assert run_command(protocol, "exit", ["4"], b"x") == (b"exit\n4\nx", b"", 4)
    assert (protocol.transport.encryption is not None) == encrypted
    # NTLM authenticates the connection once: later requests carry no Authorization header
    assert run_command(protocol, "exit", ["0"]) == (b"exit\n0\n", b"", 0)
    requests_made = emulator.stats()["total"]["requests"]
    assert requests_made == 11 + {"basic": 0, "ntlm": 3 if encrypted else 2}[transport]  # 6 + 5, + logon legs


@pytest.mark.parametrize("transport", ["basic", "ntlm"])
def test_bad_password_is_rejected(serve, client, make_host, transport):
    protocol = client(serve([make_host("pc-1")], base_address="127.21.2.2"), transport=transport,
                      password="wrong")
    with pytest.raises(InvalidCredentialsError):
        protocol.open_shell()


@pytest.mark.parametrize(("transport", "accepted"), [("basic", False), ("ntlm", True)])
def test_a_host_takes_only_its_own_schemes(serve, client, make_host, transport, accepted):
    protocol = client(serve([make_host("pc-1", auth=["ntlm"])], base_address="127.21.2.3"), transport=transport)
    if accepted:
        protocol.close_shell(protocol.open_shell())
    else:
        with pytest.raises(InvalidCredentialsError):
            protocol.open_shell()


@pytest.mark.parametrize("transport", ["basic", "ntlm"])
def test_a_host_takes_only_its_own_users(serve, client, make_host, transport):
    hosts = [make_host("pc-1"), make_host("pc-2", users={"admin": "Other:pass1"}),
             make_host("pc-3", users={USER: "Different1"})]
    emulator = serve(hosts, base_address="127.21.2.4")
    client(emulator, 1, transport, username="admin", password="Other:pass1").open_shell()
    client(emulator, 2, transport, password="Different1").open_shell()
    for index, username, password in [(0, "admin", "Other:pass1"), (1, USER, PASSWORD), (2, USER, PASSWORD)]:
        with pytest.raises(InvalidCredentialsError):
            client(emulator, index, transport, username=username, password=password).open_shell()


def test_require_encryption_refuses_plain_bodies(serve, client, make_host, run_command):
    emulator = serve([make_host("pc-1")], base_address="127.21.2.5", require_encryption=True)
    assert run_command(client(emulator, transport="ntlm"), "exit", ["0"])[2] == 0
    with pytest.raises(WinRMTransportError) as error:
        client(emulator, transport="ntlm", message_encryption="never").open_shell()
    assert error.value.code == 400


@pytest.mark.parametrize("transport", ["ssl", "basic", "ntlm"])
def test_https(serve, client, make_host, run_command, transport):
    emulator = serve([make_host("pc-1"), make_host("pc-2")], base_address="127.21.2.6", https=True,
                     require_encryption=True)
    assert emulator.runtimes[1].endpoint.port == 5986
    protocol = client(emulator, 1, transport)
    assert run_command(protocol, "exit", ["2"], b"tls") == (b"exit\n2\ntls", b"", 2)
    assert protocol.transport.encryption is None  # TLS protects the body
    certificate = x509.load_pem_x509_certificate(ssl.get_server_certificate(("127.21.2.7", 5986)).encode())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {ipaddress.ip_address(a) for a in ("127.21.2.6", "127.21.2.7", "127.0.0.1")} <= set(
        names.get_values_for_type(x509.IPAddress))
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]


def test_spnego_logon_returns_mech_list_mic_and_encrypts(serve, make_host):
    """pypsrp's `negotiate` wraps NTLM in SPNEGO; without the final token on the 200 it cannot unwrap replies."""
    serve([make_host("pc-1")], base_address="127.21.2.8")
    context = spnego.client(USER, PASSWORD, hostname="pc-1", service="http", protocol="negotiate",
                            options=spnego.NegotiateOptions.use_negotiate)
    connection = http.client.HTTPConnection("127.21.2.8", 5985, timeout=5)
    token = context.step()
    while not context.complete:
        connection.request("POST", "/wsman", b"", {"Authorization": f"Negotiate {base64.b64encode(token).decode()}"})
        reply = connection.getresponse()
        reply.read()
        challenge = reply.getheader("WWW-Authenticate", "")
        assert challenge.startswith("Negotiate "), (reply.status, challenge)
        token = context.step(base64.b64decode(challenge.split()[1]))
    assert reply.status == 200 and token is None

    create = xmltodict.unparse({"env:Envelope": {**_header(f"{wsman.NS_TRANSFER}/Create"), "env:Body": {}}}).encode()
    wrapped = context.wrap_winrm(create)
    body = (b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + str(len(create)).encode()
            + b"\r\n--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n"
            + len(wrapped.header).to_bytes(4, "little") + wrapped.header + wrapped.data + b"--Encrypted Boundary--\r\n")
    connection.request("POST", "/wsman", body, {"Content-Type": auth.ENCRYPTED_CONTENT_TYPE})
    reply = connection.getresponse()
    payload = reply.read()
    assert reply.status == 200 and reply.getheader("Content-Type") == auth.ENCRYPTED_CONTENT_TYPE
    start = payload.index(b"application/octet-stream\r\n") + len(b"application/octet-stream\r\n")
    size = int.from_bytes(payload[start:start + 4], "little")
    sealed = payload[start + 4 + size:].removesuffix(b"--Encrypted Boundary--\r\n")
    assert b'Name="ShellId"' in context.unwrap_winrm(payload[start + 4:start + 4 + size], sealed)


@pytest.mark.parametrize(("username", "ntlm", "basic"), [
    ("ansible", True, True),
    ("ANSIBLE", True, True),  # user names ignore case, as on Windows
    ("PC-Long-Host-Name-1\\ansible", True, False),  # the host's name: NTLM only (Basic takes the bare name)
    ("pc-long-host-name-1\\Ansible", True, False),
    ("PC-LONG-HOST-NA\\ansible", True, False),  # its NetBIOS name (15 characters)
    (".\\ansible", True, False),
    ("OTHER-PC\\ansible", False, False),  # another machine's (or a domain's) account
    ("ansible@pc-long-host-name-1", False, False),  # a UPN is a domain account's name, not a local one's
])
def test_a_local_account_named_as_windows_takes_it(serve, client, make_host, username, ntlm, basic):
    emulator = serve([make_host("pc-long-host-name-1")], base_address="127.21.10.3")
    for transport, accepted in (("ntlm", ntlm), ("basic", basic)):
        protocol = client(emulator, transport=transport, username=username)
        if accepted:
            protocol.close_shell(protocol.open_shell(), close_session=False)
        else:
            with pytest.raises(InvalidCredentialsError):
                protocol.open_shell()


def test_a_domain_account_listed_with_its_domain_is_taken_as_listed(serve, client, make_host):
    emulator = serve([make_host("pc-1", users={"NHS\\svc_audit": PASSWORD})], base_address="127.21.10.4")
    client(emulator, transport="ntlm", username="nhs\\SVC_AUDIT").open_shell()
    for username in ("svc_audit", "pc-1\\svc_audit"):
        with pytest.raises(InvalidCredentialsError):
            client(emulator, transport="ntlm", username=username).open_shell()


def _header(action: str) -> dict:
    protocol = Protocol("http://unused/wsman", username=USER, password=PASSWORD)
    return protocol.build_wsman_header(action=action, resource_uri=wsman.CMD_RESOURCE)


def test_ntlm_user_file_is_private_and_removed(serve, client, make_host):
    before = os.environ.get(auth.ENV_VAR)
    emulator = serve([make_host("pc-1", users={"a": "x:y"}), make_host("pc-2", auth=["basic"])],
                     base_address="127.21.2.9")
    assert emulator.runtimes[1].auth.ntlm is False
    client(emulator, transport="ntlm", username="a", password="x:y").open_shell()
    user_file = Path(os.environ[auth.ENV_VAR])
    assert user_file.stat().st_mode & 0o777 == 0o600 and user_file.parent.stat().st_mode & 0o777 == 0o700
    assert "x:y" not in user_file.read_text()  # hashes only
    emulator.stop()
    assert not user_file.parent.exists()
    assert os.environ.get(auth.ENV_VAR) == before


KRB5_AP_REQ = bytes.fromhex("6082020006092a864886f712010202" + "0100" + "6e" + "00" * 8)  # a GSS header, then rubbish


def test_negotiate_tokens_are_told_apart():
    """NTLM raw or in SPNEGO goes to NTLM; a Kerberos GSS token (pywinrm's kerberos) to Kerberos."""
    ntlm = spnego.client(USER, PASSWORD, protocol="ntlm").step()
    spnego_ntlm = spnego.client(USER, PASSWORD, hostname="pc-1", protocol="negotiate",
                                options=spnego.NegotiateOptions.use_negotiate).step()
    assert ntlm is not None and spnego_ntlm is not None
    assert [auth.token_package(t) for t in (ntlm, spnego_ntlm, KRB5_AP_REQ, b"\x60\x01", b"")] == [
        "ntlm", "ntlm", "kerberos", "ntlm", "ntlm"]


def test_kerberos_without_a_domain_is_refused(serve, make_host):
    """Served without --keytab the hosts are not in a domain: a Kerberos token gets 401 and the
    usual challenges; no logon is counted."""
    emulator = serve([make_host("pc-1")], base_address="127.21.2.10")
    connection = http.client.HTTPConnection("127.21.2.10", 5985, timeout=5)
    connection.request("POST", "/wsman", b"", {"Authorization": f"Negotiate {base64.b64encode(KRB5_AP_REQ).decode()}"})
    reply = connection.getresponse()
    reply.read()
    assert reply.status == 401
    assert reply.headers.get_all("WWW-Authenticate") == ["Negotiate", 'Basic realm="WSMAN"']
    assert emulator.stats()["hosts"]["pc-1"]["logons"] == {}
