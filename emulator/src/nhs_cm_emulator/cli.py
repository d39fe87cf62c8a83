"""`nhs-cm-emulator serve|validate`: the command line of the emulator."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import yaml

from nhs_cm_emulator import commands
from nhs_cm_emulator.server import Emulator, EmulatorError, ServeOptions
from nhs_cm_emulator.state import ScenarioError, load_estate

PROG = "nhs-cm-emulator"
DEFAULT_USER = "ansible"
DEFAULT_PASSWORD = "Passw0rd!"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (ScenarioError, EmulatorError, OSError) as exc:
        print(f"{PROG}: {_one_line(exc)}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="An emulated estate of Windows desktops that answers WinRM. "
        "It is not Windows and never runs PowerShell or anything else.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the hosts of scenario files over WinRM")
    serve.set_defaults(run=_serve)
    serve.add_argument("--scenario", action="append", required=True, metavar="FILE",
                       help="scenario file, or a directory of *.yml/*.yaml files (repeatable)")
    serve.add_argument("--hosts", type=int, metavar="N", help="serve N hosts made from the scenarios' hosts")
    serve.add_argument("--seed", type=int, default=0, metavar="S", help="seed for choosing templates (with --hosts)")
    serve.add_argument("--inventory", metavar="OUT.yml", help="write an Ansible inventory of the served hosts")
    serve.add_argument("--control-port", type=int, metavar="P",
                       help="serve /state and /stats on 127.0.0.1:P (0: any free port, printed)")
    serve.add_argument("--bind", choices=["address", "port"], default="address",
                       help="address: one loopback address per host (default); port: one port per host")
    serve.add_argument("--base-address", default="127.20.0.1", metavar="A", help="first address (inside 127/8)")
    serve.add_argument("--port", type=int, metavar="P", help="port with --bind address (5985, or 5986 with --https)")
    serve.add_argument("--base-port", type=int, default=25985, metavar="P", help="first port with --bind port")
    serve.add_argument("--https", action="store_true", help="serve HTTPS with a throw-away self-signed certificate")
    serve.add_argument("--transport", choices=["basic", "ntlm", "kerberos"], default="ntlm",
                       help="ansible_winrm_transport written to the inventory (kerberos needs --keytab)")
    serve.add_argument("--require-encryption", action="store_true",
                       help="refuse unencrypted bodies over HTTP (like AllowUnencrypted=false)")

    serve.add_argument("--keytab", metavar="FILE",
                       help="a domain-joined estate: accept Kerberos for HTTP/<host>.<domain>@REALM with the keys "
                       "in FILE (read at each logon, so keys may be added after start)")
    serve.add_argument("--realm", default="EMULATED.TEST", metavar="REALM",
                       help="Kerberos realm of the estate; its DNS domain is the realm in lower case")

    validate = commands.add_parser("validate", help="check scenario files")
    validate.set_defaults(run=_validate)
    validate.add_argument("files", nargs="+", metavar="FILE", help="scenario file or directory")
    return parser


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.filename:
        text = f"{exc.filename}: {exc.strerror or text}"
    return text


def _validate(args: argparse.Namespace) -> int:
    status = 0
    for name in args.files:
        try:
            estate = load_estate([name])
        except (ScenarioError, OSError) as exc:
            print(f"{PROG}: {_one_line(exc)}", file=sys.stderr)
            status = 2
        else:
            print(f"ok: {name} ({len(estate.hosts)} hosts)")
    return status


def _serve(args: argparse.Namespace) -> int:
    if args.transport == "kerberos" and not args.keytab:
        raise EmulatorError("--transport kerberos needs --keytab (the desktops' keys from the domain's KDC)")
    estate = load_estate(args.scenario, hosts=args.hosts, seed=args.seed)
    options = ServeOptions(bind=args.bind, base_address=args.base_address, port=args.port,
                           base_port=args.base_port, https=args.https,
                           require_encryption=args.require_encryption, control_port=args.control_port,
                           keytab=args.keytab, realm=args.realm)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with Emulator(estate, options, commands.execute) as emulator:
        if args.inventory:
            write_inventory(Path(args.inventory), inventory(emulator, args.transport))
        if emulator.control_url:
            print(f"control: {emulator.control_url}")
        print("ready", flush=True)
        stop.wait()
    return 0


def inventory(emulator: Emulator, transport: str) -> dict[str, Any]:
    """An Ansible YAML inventory (group `windows`) with every connection variable set.

    With Kerberos, users are principals of the estate's realm (``ansible@EMULATED.TEST``), Ansible gets
    their tickets itself (kinit with the password, ``kinit_mode: managed``) and each host is known by
    its DNS name ``<host>.<domain>`` for its SPN (``kerberos_hostname_override``: the name need not resolve).
    """
    kerberos = transport == "kerberos"
    realm = emulator.options.realm.upper() if kerberos else ""
    hosts: dict[str, dict[str, Any]] = {}
    for runtime in emulator.runtimes:
        host = runtime.host
        entry: dict[str, Any] = {"ansible_host": runtime.endpoint.address, "ansible_port": runtime.endpoint.port,
                                 "nhs_cm_emulated_from": host.template}
        if kerberos:
            entry["ansible_winrm_kerberos_hostname_override"] = f"{host.name.lower()}.{realm.lower()}"
        user, password = next(iter(host.users.items()), (DEFAULT_USER, DEFAULT_PASSWORD))
        if user != DEFAULT_USER or password != DEFAULT_PASSWORD:
            entry.update(ansible_user=f"{user}@{realm}" if kerberos else user, ansible_password=password)
        if transport not in host.auth and host.auth:  # a host that takes only the other scheme
            entry["ansible_winrm_transport"] = host.auth[0]
        entry.update(getattr(emulator.estate, "inventory_vars", {}).get(host.name, {}))  # the scenario's
        hosts[host.name] = entry
    group_vars = {
        "ansible_connection": "winrm",
        "ansible_winrm_transport": transport,
        "ansible_winrm_scheme": emulator.options.scheme,
        "ansible_winrm_server_cert_validation": "ignore",
        "ansible_user": f"{DEFAULT_USER}@{realm}" if kerberos else DEFAULT_USER,
        "ansible_password": DEFAULT_PASSWORD,
        "ansible_winrm_message_encryption": "auto",
        "ansible_winrm_read_timeout_sec": 30,
        "ansible_winrm_operation_timeout_sec": 20,
        "ansible_shell_type": "powershell",
    }
    if kerberos:  # kinit runs with a bare environment: let it see a krb5.conf named by KRB5_CONFIG
        group_vars.update(ansible_winrm_kinit_mode="managed", ansible_winrm_kinit_env_vars=["KRB5_CONFIG"])
    return {"windows": {"vars": group_vars, "hosts": hosts}}


def write_inventory(path: Path, document: dict[str, Any]) -> None:
    """Write `document` as YAML to `path` atomically (a temporary file, then rename)."""
    text = (f"# Written by {PROG}: emulated Windows hosts (not Windows; nothing runs on them).\n"
            + yaml.safe_dump(document, sort_keys=False, default_flow_style=False))
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
