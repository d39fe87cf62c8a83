"""The built-in scenario library (scenarios/): every file loads, and its expect list is what a
small, independent reading of the finding catalogue computes from what the runner operations
answer. The checker here is deliberately simple; it is a cross-check of the files, not the
collection's logic."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from nhs_cm_emulator import commands
from nhs_cm_emulator.state import HostState, load_estate

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "scenarios"
CATALOGUE = ROOT / "docs" / "findings.md"  # generated from the collection's catalogue
FILES = sorted(LIBRARY.glob("*.yml"))
UNINSTALL = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
NDP = "HKLM\\SOFTWARE\\Microsoft\\NET Framework Setup\\NDP\\v4\\Full"
READERS = "HKLM\\SOFTWARE\\Microsoft\\Cryptography\\Calais\\Readers"
INET = "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings"
PRS_PORTS = [43487, 44213, 45031, 46478, 48853]
BROWSERS = {"edge": "SOFTWARE\\Policies\\Microsoft\\Edge", "chrome": "SOFTWARE\\Policies\\Google\\Chrome"}
LOCALHOST_PATTERNS = {"[*.]localhost", "localhost", "http://localhost", "http://localhost:*", "*://localhost",
                      "http://[*.]localhost", "*"}
#: Local Network Access (docs/browser-policy.md): where each browser is installed, the version from
#: which it asks, and the NHS sites whose requests to localhost are checked.
BROWSER_EXES = {"chrome": "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
                "edge": "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe"}
LNA_FROM = {"chrome": 142, "edge": 143}
NHS_SITES = ("ers.nhs.uk", "am.nhsidentity.spineservices.nhs.uk")
BOOTSTRAP = "# NHS-CM-BOOTSTRAP v1\n& ([ScriptBlock]::Create($parts[0])) $parts[1]\n"
COMMAND = base64.b64encode(BOOTSTRAP.encode("utf-16-le")).decode()


def ask(host: HostState, *ops: dict[str, Any]) -> list[dict[str, Any]]:
    """Run operations the way the collection does: encoded bootstrap, runner and request on stdin."""
    stdin = b"# NHS-CM-RUNNER v1\n\n\0\0\0\0\n" + json.dumps({"protocol": 1, "ops": list(ops)}).encode()
    arguments = [f"-NoProfile -NonInteractive -EncodedCommand {COMMAND}"]
    out, err, code = commands.execute(host, "PowerShell", arguments, stdin)
    assert (err, code) == (b"", 0)
    results = json.loads(out)["results"]
    assert all(r["ok"] for r in results), results
    return results


def version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


def dword(node: dict[str, Any], name: str) -> int | None:
    value = node["values"].get(name)
    return value["data"] if value else None


class Checker:
    """Error and warning finding ids of one host (faults 1-4, as the catalogue's "when" reads).
    ``variables`` are the host's inventory_vars: the e-RS report a user gave (nhs_cm_ers_report)
    and whether people who are not logged on are checked (nhs_cm_include_offline_profiles)."""

    def __init__(self, host: HostState, variables: dict[str, Any] | None = None) -> None:
        self.host = host
        self.variables = variables or {}
        self.ids: set[str] = set()
        (self.sessions, self.services, self.processes, self.listeners, uninstall64,
         uninstall32) = ask(host, {"op": "session_list"}, {"op": "service_query"}, {"op": "process_list"},
                            {"op": "tcp_listeners", "ports": PRS_PORTS},
                            {"op": "reg_read", "key": UNINSTALL, "depth": 1},
                            {"op": "reg_read", "key": UNINSTALL, "view": "32", "depth": 1})
        entries = [*uninstall64["subkeys"].values(), *uninstall32["subkeys"].values()]
        self.products = [{n: v["data"] for n, v in e["values"].items()} for e in entries]

    def run(self) -> set[str]:
        cm = [p for p in self.products if re.match(r"NHS (Credential Management|Identity Hub)", p["DisplayName"])]
        self.check_install(cm)
        if cm:
            self.check_port_service()
            self.check_cm_processes(cm)
        for session in self.sessions["sessions"]:
            self.check_user(session["sid"])
        if self.variables.get("nhs_cm_include_offline_profiles"):
            self.check_offline_users()
        self.check_browsers()
        return self.ids

    def check_install(self, cm: list[dict[str, Any]]) -> None:
        release = dword(ask(self.host, {"op": "reg_read", "key": NDP})[0], "Release") or 0
        if not cm:
            self.ids.add("CM_NOT_INSTALLED")
        elif all(p["DisplayName"].startswith("NHS Identity Hub") for p in cm):
            self.ids.add("CM_LEGACY_IDENTITY_HUB")
        if len({p["DisplayVersion"] for p in cm}) > 1:
            self.ids.add("CM_MULTIPLE_VERSIONS")
        if release < 528040:
            self.ids.add("DOTNET48_MISSING")

    def check_port_service(self) -> None:
        prs = [s for s in self.services["services"] if s["display_name"] == "NHS Port Service"]
        if not prs:
            self.ids.add("PORT_SERVICE_MISSING")
            return
        if prs[0]["state"] != "running":
            self.ids.add("PORT_SERVICE_STOPPED")
        if prs[0]["start_mode"] != "auto":
            self.ids.add("PORT_SERVICE_NOT_AUTOMATIC")
        if prs[0]["state"] == "running" and not self.listeners["listeners"]:
            self.ids.add("PORT_SERVICE_NOT_LISTENING")
        for listener in self.listeners["listeners"]:
            answer = ask(self.host, {"op": "http_get", "url": f"http://localhost:{listener['port']}/PRS/GetPortNumber"})
            assert answer[0]["status"] == 500 and "PR30007" in answer[0]["body"]

    def check_cm_processes(self, cm: list[dict[str, Any]]) -> None:
        folders = [p["InstallLocation"].lower() for p in cm]
        prs_images = {s["image"].strip('"').lower() for s in self.services["services"]
                      if s["display_name"] == "NHS Port Service"}
        generation_1 = any(version(p["DisplayVersion"])[0] == 1 or "Hub" in p["DisplayName"] for p in cm)
        by_session: dict[int, set[str]] = {}
        for process in self.processes["processes"]:
            image = (process["image"] or "").lower()
            if any(image.startswith(f) for f in folders) and image not in prs_images:
                by_session.setdefault(process["session"], set()).add("cm")
            if process["name"].lower() == "identityagent.exe":
                by_session.setdefault(process["session"], set()).add("ia")
        ia_installed = any(p["DisplayName"].startswith("NHS Identity Agent") for p in self.products)
        report = " ".join(str(self.variables.get("nhs_cm_ers_report") or "").split())
        for session in self.sessions["sessions"]:
            running = by_session.get(session["id"], set())
            if "cm" not in running:
                self.ids.add("CM_NOT_RUNNING")
            elif generation_1 and "ia" not in running and ia_installed:  # nothing to start if not installed
                self.ids.add("IA_NOT_RUNNING")
            elif generation_1 and "ia" in running and "but is not connected" in report:
                self.ids.add("CM_NOT_CONNECTED")  # only a report shows it
        if generation_1:
            self.check_identity_agent()
            self.check_machine()

    def check_identity_agent(self) -> None:
        ia = [p for p in self.products if p["DisplayName"].startswith("NHS Identity Agent")]
        if not ia:
            self.ids.add("IA_NOT_INSTALLED")
            return
        exe = ia[0]["InstallLocation"] + "IdentityAgent.exe"
        info = ask(self.host, {"op": "file_info", "paths": [exe]})[0]["files"][0]
        assert info["exists"], exe
        if version(info["version"]) < (2, 4, 10, 0):
            self.ids.add("IA_VERSION_RETIRED")
        scard = [s for s in self.services["services"] if s["name"].lower() == "scardsvr"]
        if not scard or scard[0]["state"] != "running":
            self.ids.add("SMARTCARD_SERVICE_STOPPED")

    def check_machine(self) -> None:
        if not ask(self.host, {"op": "reg_read", "key": READERS})[0]["subkeys"]:
            self.ids.add("NO_SMARTCARD_READER")

    def check_offline_users(self) -> None:
        """People not logged on: their NTUSER.DAT, loaded for the read and unloaded again."""
        paths = [[f"{INET}\\ZoneMap", 2], [f"{INET}\\Zones\\1", 0]] + [[p, 1] for p in BROWSERS.values()]
        (hives,) = ask(self.host, {"op": "user_hives_read", "paths": paths, "include_offline": True})
        for profile in hives["profiles"]:
            if not profile["loaded"]:
                assert profile["mounted_as"] and profile["error"] is None, profile
                keys = profile["keys"]
                self.check_zones(keys[f"{INET}\\ZoneMap"], keys[f"{INET}\\Zones\\1"])
                for path in BROWSERS.values():
                    self.check_cookie_node(keys[path])
        assert self.host.mounted() == []

    def check_user(self, sid: str) -> None:
        zonemap, zone1 = ask(self.host, {"op": "reg_read", "key": f"HKU\\{sid}\\{INET}\\ZoneMap", "depth": 2},
                             {"op": "reg_read", "key": f"HKU\\{sid}\\{INET}\\Zones\\1"})
        self.check_zones(zonemap, zone1)
        for path in BROWSERS.values():
            self.check_cookie_policy(f"HKU\\{sid}\\{path}")

    def check_zones(self, zonemap: dict[str, Any], zone1: dict[str, Any]) -> None:
        for name, want, finding in (("AutoDetect", 0, "INTRANET_AUTODETECT_ON"),
                                    ("IntranetName", 1, "INTRANET_LOCAL_SITES_OFF"),
                                    ("ProxyBypass", 1, "INTRANET_PROXY_BYPASS_OFF"),
                                    ("UNCAsIntranet", 1, "INTRANET_UNC_OFF")):
            if dword(zonemap, name) != want:
                self.ids.add(finding)
        if dword(zone1, "1A00") not in (0, 0x20000):
            self.ids.add("INTRANET_LOGON_NOT_AUTOMATIC")
        domains = (zonemap["subkeys"].get("Domains") or {}).get("subkeys") or {}
        if any(name.lower() in ("localhost", "127.0.0.1") for name in domains):
            self.ids.add("LOCALHOST_MAPPED_OUTSIDE_INTRANET")

    def check_browsers(self) -> None:
        for path in BROWSERS.values():
            self.check_cookie_policy(f"HKLM\\{path}")
        for browser, exe in BROWSER_EXES.items():
            info = ask(self.host, {"op": "file_info", "paths": [exe]})[0]["files"][0]
            if info["exists"] and version(info["version"])[0] >= LNA_FROM[browser]:
                self.check_local_network_access(f"HKLM\\{BROWSERS[browser]}", version(info["version"])[0], browser)

    def check_local_network_access(self, key: str, major: int, browser: str) -> None:
        """Machine policy only (the library sets no user's): the first list that names a site decides."""
        node = ask(self.host, {"op": "reg_read", "key": key, "depth": 1})[0]
        lists = {name: {v["data"] for v in (child or {}).get("values", {}).values()}
                 for name, child in node["subkeys"].items()}

        def names(policy: str, site: str) -> bool:
            return any(p == "*" or p == f"https://{site}" or (p.startswith("[*.]") and ("." + site).endswith(
                "." + p[4:])) for p in lists.get(policy, set()))
        read = (["LoopbackNetworkBlockedForUrls", "LoopbackNetworkAllowedForUrls"] if major >= 146 else []) + [
            "LocalNetworkAccessBlockedForUrls", "LocalNetworkAccessAllowedForUrls"]
        ignored = ([] if major >= 146 else ["LoopbackNetworkAllowedForUrls"]) + [
            "LocalNetworkAllowedForUrls", "InsecurePrivateNetworkRequestsAllowedForUrls"]
        for site in NHS_SITES:
            decider = next((policy for policy in read if names(policy, site)), None)
            if decider is not None and "Blocked" in decider:
                self.ids.add("LOCALHOST_ACCESS_BLOCKED")
            elif decider is None and any(names(policy, site) for policy in ignored):
                self.ids.add("LOCALHOST_ACCESS_POLICY_NOT_HONOURED")
            elif decider is None:
                self.ids.add("LOCALHOST_ACCESS_NOT_ALLOWED")
            if decider is None and self.kept_block(browser, site):
                self.ids.add("LOCALHOST_ACCESS_USER_BLOCKED")

    def kept_block(self, browser: str, site: str) -> bool:
        """A signed-in user's browser profile keeps Block (2) for https://<site> (the library writes
        only exact https://<site>:443 entries)."""
        types = ["local_network_access", "loopback_network", "local_network"]
        (read,) = ask(self.host, {"op": "browser_site_settings", "types": types})
        for item in read["files"]:
            assert item["error"] is None, item
            kept = (item["exceptions"] or {}) if item["browser"] == browser else {}
            for kind in ("local_network_access", "loopback_network"):
                if ((kept.get(kind) or {}).get(f"https://{site}:443,*") or {}).get("setting") == 2:
                    return True
        return False

    def check_cookie_policy(self, key: str) -> None:
        self.check_cookie_node(ask(self.host, {"op": "reg_read", "key": key, "depth": 1})[0])

    def check_cookie_node(self, policy: dict[str, Any]) -> None:
        lists = {name: {v["data"] for v in (node or {}).get("values", {}).values()}
                 for name, node in policy["subkeys"].items()}
        allowed = bool(lists.get("CookiesAllowedForUrls", set()) & LOCALHOST_PATTERNS)
        if dword(policy, "BlockThirdPartyCookies") == 1 and not allowed:
            self.ids.add("THIRD_PARTY_COOKIES_BLOCKED")
        if dword(policy, "DefaultCookiesSetting") == 2 and not allowed:
            self.ids.add("COOKIES_BLOCKED_BY_DEFAULT")
        if lists.get("CookiesBlockedForUrls", set()) & LOCALHOST_PATTERNS:
            self.ids.add("LOCALHOST_COOKIES_BLOCKED")
        allowlist = policy["values"].get("AuthServerAllowlist")
        if allowlist and "localhost" not in [e.strip().lower() for e in allowlist["data"].split(",")]:
            self.ids.add("AUTH_ALLOWLIST_EXCLUDES_LOCALHOST")


@pytest.fixture(scope="module")
def estate():
    return load_estate([str(LIBRARY)])


def test_the_library_has_the_files_asked_for() -> None:
    names = {p.stem for p in FILES}
    assert names == {"healthy-cm1-ia", "healthy-cm4-scc", "healthy-rds", "healthy-no-user", "cm-not-installed",
                     "cm-legacy-identity-hub", "cm-multiple-versions", "dotnet48-missing", "port-service-missing",
                     "port-service-stopped", "port-service-not-automatic", "port-service-not-listening",
                     "cm-not-running", "cm-reboot-pending",
                     # faults 2 and 3, the report-only findings, multi-session and offline hosts
                     "ia-not-installed", "ia-not-running", "ia-version-retired", "cm-not-connected",
                     "smartcard-service-stopped", "no-smartcard-reader", "user-not-logged-in",
                     "rds-one-session-broken", "offline-profile",
                     # browser policy (faults 1 and 4) and the Local intranet zone (fault 4)
                     "third-party-cookies-blocked", "cookies-blocked-by-default", "localhost-cookies-blocked",
                     "auth-allowlist-excludes-localhost", "intranet-autodetect-on", "intranet-local-sites-off",
                     "intranet-proxy-bypass-off", "intranet-unc-off", "intranet-logon-not-automatic",
                     "localhost-mapped-outside-intranet",
                     # remediation (cm_service): an RDS session without CM, a Port Service that cannot start
                     "rds-three-sessions-one-without-cm", "port-service-start-fails",
                     # intranet_zone include_default_profile: fault 4 in the default profile too
                     "intranet-default-profile",
                     # Local Network Access (Chrome 142+, Edge 143+): blocked, asked, a policy the version
                     # does not read, and healthy with the allow lists set
                     "localhost-access-blocked", "localhost-access-not-allowed",
                     "localhost-access-policy-not-honoured", "healthy-local-network-access",
                     # ... and a user's own Block, kept in the browser profile
                     "localhost-access-user-blocked"}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_file_loads_alone_and_says_what_it_shows(path: Path) -> None:
    assert path.read_text().startswith("# ")
    estate = load_estate([str(path)])
    assert set(estate.expect) == {h.name for h in estate.hosts}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_expect_matches_a_reading_of_the_catalogue(estate, path: Path) -> None:
    for host in load_estate([str(path)]).hosts:
        checker = Checker(estate.by_name(host.name), estate.inventory_vars.get(host.name))
        assert checker.run() == set(estate.expect[host.name])


def test_expected_ids_are_catalogue_ids(estate) -> None:
    known = set(re.findall(r"^\| \[([A-Z][A-Z0-9_]+)\]\(findings/", CATALOGUE.read_text(), re.MULTILINE))
    assert len(known) >= 27
    for ids in estate.expect.values():
        assert set(ids) <= known


def test_healthy_hosts_are_healthy_everywhere(estate) -> None:
    healthy = [h for h in estate.hosts if h.name.startswith("healthy-")]
    assert len(healthy) == 5
    for host in healthy:
        assert estate.expect[host.name] == []
        release = ask(host, {"op": "reg_read", "key": NDP, "view": "32"})[0]
        assert dword(release, "Release") >= 528040
        assert host.listeners().get(43487) is not None


def test_offline_profiles_are_healthy_too(estate) -> None:
    host = estate.by_name("healthy-no-user")
    assert host.sessions == [] and len(host.registry.offline) == 2
    for hive in host.registry.offline.values():
        zonemap = hive
        for name in [*INET.split("\\"), "ZoneMap"]:
            zonemap = zonemap.child(name)
        assert {v.name: v.data for v in zonemap.values.values()} == {
            "AutoDetect": 0, "IntranetName": 1, "ProxyBypass": 1, "UNCAsIntranet": 1}
    hku = ask(host, {"op": "reg_read", "key": "HKU"})[0]["subkeys"]
    assert set(hku) == {".DEFAULT", "S-1-5-18", "S-1-5-19", "S-1-5-20"}


def test_rds_hosts_have_one_cm_per_session(estate) -> None:
    host = estate.by_name("healthy-rds")
    sessions = ask(host, {"op": "session_list"})[0]["sessions"]
    assert [s["id"] for s in sessions] == [2, 3, 4] and all("state" not in s for s in sessions)
    cm = [p for p in ask(host, {"op": "process_list"})[0]["processes"] if p["name"] == "NHSCredentialManagement.exe"]
    assert sorted(p["session"] for p in cm) == [2, 3, 4]
    assert all(p["version"] == "1.4.2.0" for p in cm)


def test_reboot_pending_is_visible(estate) -> None:
    host = estate.by_name("cm-reboot-pending")
    cbs, session_manager = ask(
        host, {"op": "reg_read", "key": "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based "
               "Servicing\\RebootPending"},
        {"op": "reg_read", "key": "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager",
         "names": ["PendingFileRenameOperations"]})
    assert cbs["exists"] is True
    assert session_manager["values"]["PendingFileRenameOperations"]["type"] == "REG_MULTI_SZ"
    for other in estate.hosts:
        if other.name != host.name:
            assert not ask(other, {"op": "reg_read", "key": "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\"
                                   "Component Based Servicing\\RebootPending"})[0]["exists"]


def test_library_spreads_to_a_demo_estate(estate) -> None:
    spread = load_estate([str(LIBRARY)], hosts=20, seed=0)
    assert [h.name for h in spread.hosts] == [f"pc-{i:04d}" for i in range(1, 21)]
    first = min(20, len(estate.hosts))  # the first hosts copy each template once, in file order
    assert [h.template for h in spread.hosts[:first]] == [h.template for h in estate.hosts[:first]]
    for host in spread.hosts:
        assert spread.expect[host.name] == estate.expect[host.template.split(":")[1]]
