"""What an emulated desktop of a domain refuses, as Windows does, with tickets from a real MIT KDC
and a GSSAPI client (python-gssapi, what pykerberos does underneath): another host's SPN, a
replayed token, a ticket past its end, a principal that is not one of the host's users, a clock
more than 5 minutes off, channel bindings of another certificate; NTLM on a Kerberos-only host."""

from __future__ import annotations

import base64
import hashlib
import http.client
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import gssapi
import pytest
import spnego
import yaml
from domain import PASSWORD, USER, Kdc, joined_estate, read_inventory
from harness import SCENARIOS, Estate

KRB5 = gssapi.OID.from_int_seq("1.2.840.113554.1.2.2")


@pytest.fixture
def ticket(kdc: Kdc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The test's own ticket cache, with a ticket of the scenarios' user; gssapi reads the realm's krb5.conf."""
    ccache = tmp_path / "ccache"
    for name, value in kdc.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{ccache}")
    done = kdc.kinit(f"{USER}@{kdc.realm}", PASSWORD, ccache)
    assert done.returncode == 0, done.stderr
    yield ccache


def use_cache(monkeypatch: pytest.MonkeyPatch, ccache: Path) -> None:
    """Make the client use another ticket cache (another user's, or a short-lived ticket)."""
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{ccache}")


def client(fqdn: str, bindings: bytes | None = None) -> tuple[gssapi.SecurityContext, bytes]:
    """A client context for HTTP@fqdn and its first token (mutual authentication, as pywinrm asks)."""
    cb = gssapi.raw.ChannelBindings(application_data=bindings) if bindings else None
    context = gssapi.SecurityContext(name=gssapi.Name(f"HTTP@{fqdn}", gssapi.NameType.hostbased_service),
                                     mech=KRB5, usage="initiate", channel_bindings=cb,
                                     flags=gssapi.RequirementFlag.mutual_authentication
                                     | gssapi.RequirementFlag.out_of_sequence_detection)
    return context, context.step()


def hosts_of(running: Estate) -> dict[str, dict[str, str]]:
    return read_inventory(running)["windows"]["hosts"]


def connect(host: dict[str, str], https: bool = False) -> http.client.HTTPConnection:
    address, port = host["ansible_host"], int(host["ansible_port"])
    if https:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(address, port, context=context,
                                                                              timeout=30)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=30)
    connection.connect()
    return connection


def logon(connection: http.client.HTTPConnection, token: bytes, scheme: str = "Negotiate") -> tuple[int, str]:
    """pywinrm's first request: an empty POST with the token. (HTTP status, WWW-Authenticate)."""
    connection.request("POST", "/wsman", body=b"", headers={
        "Authorization": f"{scheme} {base64.b64encode(token).decode()}", "Content-Length": "0",
        "Content-Type": "application/soap+xml;charset=UTF-8"})
    response = connection.getresponse()
    response.read()
    return response.status, response.getheader("WWW-Authenticate") or ""


def tls_server_end_point(connection: http.client.HTTPConnection) -> bytes:
    """RFC 5929 channel bindings of the server's certificate (ECDSA with SHA-256 here)."""
    der = connection.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
    return b"tls-server-end-point:" + hashlib.sha256(der).digest()


def _two_hosts(tmp_path: Path, **winrm: dict[str, object]) -> Path:
    template = yaml.safe_load((SCENARIOS / "healthy-cm4-scc.yml").read_text())["hosts"][0]
    hosts = [dict(template, name=name, **({"winrm": winrm[name]} if name in winrm else {}))
             for name in ("pc-a", "pc-b")]
    path = tmp_path / "two.yml"
    path.write_text(yaml.safe_dump({"hosts": hosts}))
    return path


def test_ticket_for_its_own_spn_is_accepted_and_the_host_proves_itself(estate, kdc: Kdc, ticket: Path,
                                                                        tmp_path: Path) -> None:
    running = joined_estate(estate, kdc, [_two_hosts(tmp_path)])
    host = hosts_of(running)["pc-a"]
    context, token = client(host["ansible_winrm_kerberos_hostname_override"])
    status, answer = logon(connect(host), token)
    assert status == 200
    scheme, _, reply = answer.partition(" ")
    assert scheme == "Negotiate" and reply  # the AP-REP: mutual authentication
    context.step(base64.b64decode(reply))
    assert context.complete
    assert running.get("/stats")["hosts"]["pc-a"]["logons"] == {"kerberos": 1}


def test_ticket_for_another_hosts_spn_is_refused(estate, kdc: Kdc, ticket: Path, tmp_path: Path) -> None:
    running = joined_estate(estate, kdc, [_two_hosts(tmp_path)])
    hosts = hosts_of(running)
    _, for_b = client(hosts["pc-b"]["ansible_winrm_kerberos_hostname_override"])
    assert logon(connect(hosts["pc-a"]), for_b)[0] == 401
    assert logon(connect(hosts["pc-b"]), for_b)[0] == 200


def test_a_replayed_token_is_refused(estate, kdc: Kdc, ticket: Path, tmp_path: Path) -> None:
    running = joined_estate(estate, kdc, [_two_hosts(tmp_path)])
    host = hosts_of(running)["pc-a"]
    _, token = client(host["ansible_winrm_kerberos_hostname_override"])
    assert logon(connect(host), token)[0] == 200
    status, challenge = logon(connect(host), token)  # the same authenticator again, on a new connection
    assert status == 401
    # MIT's error token (a KRB-ERROR in a GSS header) goes back with the challenge
    assert challenge.startswith("Negotiate ") and base64.b64decode(challenge.split()[1])[:1] == b"\x60"
    assert logon(connect(host), client(host["ansible_winrm_kerberos_hostname_override"])[1])[0] == 200


def test_a_ticket_past_its_end_is_refused(estate, kdc: Kdc, ticket: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A 3-second ticket presented after its end. These desktops allow 1 s of clock skew instead of
    5 minutes (their krb5.conf), so that the ticket is stale within the test."""
    strict = tmp_path / "krb5-strict.conf"
    strict.write_text(kdc.krb5_config.read_text().replace("[libdefaults]\n", "[libdefaults]\n    clockskew = 1\n"))
    running = joined_estate(estate, kdc, [_two_hosts(tmp_path)], env={"KRB5_CONFIG": str(strict)})
    host = hosts_of(running)["pc-a"]
    fqdn = host["ansible_winrm_kerberos_hostname_override"]
    short = tmp_path / "short.ccache"
    assert kdc.kinit(f"{USER}@{kdc.realm}", PASSWORD, short, "-l", "3s").returncode == 0
    use_cache(monkeypatch, short)
    _, token = client(fqdn)
    time.sleep(5)
    assert logon(connect(host), token)[0] == 401
    use_cache(monkeypatch, ticket)
    assert logon(connect(host), client(fqdn)[1])[0] == 200


def test_a_principal_that_is_not_one_of_the_hosts_users_is_refused(estate, kdc: Kdc, ticket: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    kdc.add_users({"intruder": PASSWORD})
    running = joined_estate(estate, kdc, [_two_hosts(tmp_path)])
    host = hosts_of(running)["pc-a"]
    intruder = tmp_path / "intruder.ccache"
    assert kdc.kinit(f"intruder@{kdc.realm}", PASSWORD, intruder).returncode == 0
    use_cache(monkeypatch, intruder)
    assert logon(connect(host), client(host["ansible_winrm_kerberos_hostname_override"])[1])[0] == 401
    assert running.get("/stats")["hosts"]["pc-a"]["logons"] == {}


def test_a_clock_more_than_five_minutes_off_refuses_tickets(estate, kdc: Kdc, ticket: Path, tmp_path: Path) -> None:
    running = joined_estate(estate, kdc, [_two_hosts(tmp_path, **{"pc-a": {"clock_offset_seconds": -420},
                                                                  "pc-b": {"clock_offset_seconds": 240}})])
    hosts = hosts_of(running)
    assert logon(connect(hosts["pc-a"]), client(hosts["pc-a"]["ansible_winrm_kerberos_hostname_override"])[1])[0] \
        == 401
    assert logon(connect(hosts["pc-b"]), client(hosts["pc-b"]["ansible_winrm_kerberos_hostname_override"])[1])[0] \
        == 200


def test_channel_bindings_over_https(estate, kdc: Kdc, ticket: Path, tmp_path: Path) -> None:
    """Bound to this server's certificate: accepted; bound to another: refused (a man in the middle);
    none at all: accepted, as Windows' default hardening does (pywinrm's first token has none)."""
    running = joined_estate(estate, kdc, [_two_hosts(tmp_path)], "--https")
    host = hosts_of(running)["pc-a"]
    fqdn = host["ansible_winrm_kerberos_hostname_override"]
    connection = connect(host, https=True)
    assert logon(connection, client(fqdn, tls_server_end_point(connection))[1])[0] == 200
    connection = connect(host, https=True)
    other = b"tls-server-end-point:" + hashlib.sha256(b"another certificate").digest()
    assert logon(connection, client(fqdn, other)[1])[0] == 401
    assert logon(connect(host, https=True), client(fqdn)[1])[0] == 200


def test_a_kerberos_only_host_refuses_ntlm_and_a_workgroup_host_refuses_kerberos(estate, kdc: Kdc, ticket: Path,
                                                                                  tmp_path: Path) -> None:
    running = joined_estate(estate, kdc, [_two_hosts(tmp_path, **{"pc-a": {"auth": ["kerberos"]}})])
    host = hosts_of(running)["pc-a"]
    ntlm = spnego.client(USER, PASSWORD, protocol="ntlm").step()
    assert ntlm is not None
    status, challenge = logon(connect(host), ntlm)
    assert status == 401 and challenge == "Negotiate"
    assert logon(connect(host), client(host["ansible_winrm_kerberos_hostname_override"])[1])[0] == 200
    workgroup = estate([_two_hosts(tmp_path)], "--transport", "ntlm")  # no keytab: not in the domain
    host = hosts_of(workgroup)["pc-a"]
    assert logon(connect(host), client(f"pc-a.{kdc.realm.lower()}")[1])[0] == 401


def test_spnego_wrapped_kerberos_is_accepted(estate, kdc: Kdc, ticket: Path, tmp_path: Path) -> None:
    """Kerberos inside SPNEGO (pypsrp's negotiate, Windows clients) as well as raw (pywinrm)."""
    running = joined_estate(estate, kdc, [_two_hosts(tmp_path)])
    host = hosts_of(running)["pc-a"]
    name = gssapi.Name(f"HTTP@{host['ansible_winrm_kerberos_hostname_override']}", gssapi.NameType.hostbased_service)
    context = gssapi.SecurityContext(name=name, mech=gssapi.OID.from_int_seq("1.3.6.1.5.5.2"), usage="initiate",
                                     flags=gssapi.RequirementFlag.mutual_authentication)
    connection = connect(host)
    status, answer = logon(connection, context.step())
    assert status == 200
    context.step(base64.b64decode(answer.partition(" ")[2]))
    assert context.complete
