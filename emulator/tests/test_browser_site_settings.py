"""browser_site_settings: people's Chrome and Edge Local State and Preferences, as the runner reads them."""

from __future__ import annotations

import json

from emulated_host import host_from, run_op

from nhs_cm_emulator.state import HostState

SID = "S-1-5-21-1004336348-1177238915-682003330-1001"
SID2 = "S-1-5-21-1004336348-1177238915-682003330-1002"
CHROME = "C:\\Users\\jsmith\\AppData\\Local\\Google\\Chrome\\User Data"
EDGE = "C:\\Users\\jsmith\\AppData\\Local\\Microsoft\\Edge\\User Data"
BLOCK = {"https://ers.nhs.uk:443,*": {"last_modified": "13406718000000000", "setting": 2}}
PREFERENCES = {"profile": {"content_settings": {"exceptions": {"local_network_access": BLOCK,
                                                               "cookies": {"x": {"setting": 1}}}}},
               "secret": "never leaves the host"}
LOCAL_STATE = {"profile": {"info_cache": {"Default": {}, "Profile 1": {}, "..\\..\\Windows": {}}}}
TYPES = ["local_network_access", "loopback_network"]


def _yaml(value: object) -> str:
    return json.dumps(json.dumps(value))  # a JSON string is a YAML double-quoted scalar


def _host(chrome_prefs: str, edge_state: str | None = None) -> HostState:
    edge = "" if edge_state is None else f"\n      - {{path: '{EDGE}\\Local State', content: {edge_state}}}"
    text = rf"""
hosts:
  - name: pc-prefs
    sessions:
      - {{id: 1, user: 'NHS\jsmith', sid: '{SID}', state: active}}
    profiles:
      - {{user: 'NHS\jsmith', sid: '{SID}', path: 'C:\Users\jsmith', loaded: true}}
      - {{user: 'NHS\akhan', sid: '{SID2}', path: 'C:\Users\akhan', loaded: false}}
    files:
      - {{path: '{CHROME}\Local State', content: {_yaml(LOCAL_STATE)}, modified: '2025-12-01T08:00:00.0000000Z'}}
      - {{path: '{CHROME}\Default\Preferences', content: {chrome_prefs}}}{edge}
      - {{path: 'C:\Users\akhan\AppData\Local\Google\Chrome\User Data\Local State', content: '{{}}'}}
"""
    return host_from(text, "prefs.yml")


def test_only_the_asked_exceptions_of_each_listed_profile_of_signed_in_people() -> None:
    result = run_op(_host(_yaml(PREFERENCES)), op="browser_site_settings", types=TYPES)
    assert result["ok"] is True
    files = result["files"]
    assert [(f["sid"], f["browser"], f["profile"], f["exists"]) for f in files] == [
        (SID, "chrome", None, True), (SID, "chrome", "Default", True), (SID, "chrome", "Profile 1", False),
        (SID, "edge", None, False)]
    assert files[0]["modified"] == "2025-12-01T08:00:00.0000000Z" and files[0]["exceptions"] is None
    assert files[1]["path"] == CHROME + "\\Default\\Preferences"
    assert files[1]["exceptions"] == {"local_network_access": BLOCK, "loopback_network": None}
    assert "never leaves" not in json.dumps(result) and "cookies" not in json.dumps(result)
    assert all(set(f) == {"sid", "browser", "profile", "path", "exists", "modified", "error", "exceptions"}
               for f in files)


def test_offline_profiles_on_request() -> None:
    result = run_op(_host(_yaml(PREFERENCES)), op="browser_site_settings", types=TYPES, include_offline=True)
    assert [f["sid"] for f in result["files"]].count(SID2) == 2


def test_a_malformed_or_large_file_is_an_error_of_that_file() -> None:
    files = run_op(_host(_yaml("{not json"), edge_state=_yaml([1, 2])), op="browser_site_settings",
                   types=TYPES)["files"]
    assert files[1]["error"] == "failed: not a JSON object" and files[1]["exceptions"] is None
    assert files[-1]["browser"] == "edge" and files[-1]["error"] == "failed: not a JSON object"
    big = _yaml({"profile": {}, "pad": "x" * 2000})
    files = run_op(_host(big), op="browser_site_settings", types=TYPES, max_bytes=1024)["files"]
    assert files[1]["error"].startswith("failed: ") and "over the limit of 1024" in files[1]["error"]


def test_a_link_is_not_followed() -> None:
    text = rf"""
hosts:
  - name: pc-link
    profiles:
      - {{user: 'NHS\jsmith', sid: '{SID}', path: 'C:\Users\jsmith', loaded: true}}
    files:
      - {{path: '{EDGE}\Local State', content: '{{}}', reparse_point: true}}
"""
    files = run_op(host_from(text, "link.yml"), op="browser_site_settings", types=TYPES)["files"]
    assert files[1] == {"sid": SID, "browser": "edge", "profile": None, "path": EDGE + "\\Local State",
                        "exists": True, "modified": None, "exceptions": None,
                        "error": "forbidden: a link (reparse point) on the way is not followed"}
