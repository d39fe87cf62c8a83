"""report.html rendered in headless Chromium (Debian's `chromium`; `make chromium` installs it).

The tests read the counts and rows from the DOM after the page's script ran, use the URL
fragment that pre-sets the filter, and keep a screenshot in tests/output/report-html/.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import ROOT, SCENARIOS, run_playbook

ARTIFACTS = ROOT / "tests" / "output" / "report-html"
HOSTILE = "<script>document.body.setAttribute('data-pwned','1')</script><img src=x onerror=\"document.title='pwned'\">"
ESTATE = [SCENARIOS / name for name in ("cm-not-installed.yml", "cm-not-running.yml", "port-service-stopped.yml",
                                        "port-service-not-automatic.yml", "healthy-cm4-scc.yml", "healthy-rds.yml")]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def collection_module(name: str) -> Any:
    if str(ROOT / ".collections") not in sys.path:
        sys.path.insert(0, str(ROOT / ".collections"))
    return importlib.import_module(f"ansible_collections.nhs_cm.remediation.plugins.plugin_utils.{name}")


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: `make test` installs it (make chromium)")
    pytest.skip("chromium is not installed: run `make chromium`")


def browse(chromium: str, page: Path, *what: str, fragment: str = "") -> str:
    """Run headless Chromium on the page with a fresh profile; return its standard output."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        done = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *what, page.as_uri() + fragment],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Dom(HTMLParser):
    """What a person sees in the rendered page: hosts shown, their rows, tiles, chart bars."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.body: dict[str, str | None] = {}
        self.hosts: dict[str, dict[str, Any]] = {}
        self.tiles: dict[str, int] = {}
        self.bars: dict[str, int] = {}
        self.tags: list[str] = []
        self.shown = ""
        self.title = ""
        self._host: str | None = None
        self._field: str | None = None
        self._tile: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = dict(attrs_list)
        self.tags.append(tag)
        if tag == "body":
            self.body = attrs
        elif tag == "section" and "data-host" in attrs:
            self._host = attrs["data-host"] or ""
            self.hosts[self._host] = {"visible": "hidden" not in attrs, "rows": [], "outcomes": [],
                                      "faults": (attrs.get("data-faults") or "").split()}
        elif tag == "tr" and "data-severity" in attrs and self._host is not None:
            self.hosts[self._host]["rows"].append((attrs["data-id"], attrs["data-severity"], "hidden" not in attrs))
        elif tag == "div" and "tile" in (attrs.get("class") or ""):
            self._tile = attrs.get("data-key")
        elif tag == "span" and self._tile and attrs.get("class") == "n":
            self._field = "tile"
        elif tag == "tr" and "data-outcome" in attrs and self._host is not None:
            self.hosts[self._host]["outcomes"].append((attrs["data-id"], attrs["data-outcome"]))
        elif "bar" in (attrs.get("class") or "").split() and "data-key" in attrs:
            self.bars[attrs["data-key"] or ""] = int(attrs["data-count"] or 0)
        elif tag == "p" and attrs.get("id") == "shown":
            self._field = "shown"
        elif tag == "title":
            self._field = "title"

    def handle_data(self, data: str) -> None:
        if self._field == "tile" and self._tile:
            self.tiles[self._tile] = int(data)
            self._tile = None
        elif self._field == "shown":
            self.shown += data
        elif self._field == "title":
            self.title += data
        if self._field != "shown" or data.endswith("hosts"):
            self._field = None

    def visible(self) -> list[str]:
        return sorted(name for name, host in self.hosts.items() if host["visible"])


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One audit of a small estate with a waiver whose justification holds a script."""
    import harness

    tmp = tmp_path_factory.mktemp("html")
    running = harness.start_estate(tmp, ESTATE)
    try:
        extra = tmp / "waivers.yml"
        extra.write_text(yaml.safe_dump({"windows": {"hosts": {"cm-not-installed": {"nhs_cm_waivers": [
            {"id": "CM_NOT_INSTALLED", "justification": "Kiosk " + HOSTILE, "approved_by": "IG lead",
             "expires": "2099-12-31"}]}}}}))
        run = run_playbook("playbooks/audit.yml", running.inventory, tmp / "r", "-i", str(extra))
    finally:
        running.stop()
    assert run.rc == 0, run.output
    assert run.report is not None
    return {"report": run.report, "page": tmp / "r" / "report.html"}


def test_rendered_page_shows_the_estate(chromium: str, audited: dict[str, Any]) -> None:
    report, page = audited["report"], audited["page"]
    dom = Dom(browse(chromium, page, "--dump-dom"))
    estate = report["estate"]
    assert sorted(dom.hosts) == sorted(report["hosts"])
    assert dom.visible() == sorted(report["hosts"])
    assert dom.shown == f"Showing {len(report['hosts'])} of {len(report['hosts'])} hosts"
    assert dom.tiles["hosts"] == estate["hosts"]
    assert dom.tiles["with_fault"] == estate["with_fault"] >= 2
    assert dom.tiles["no_fault_or_warning"] == estate["no_fault_or_warning"]
    assert dom.tiles["with_waived"] == 1
    assert dom.bars["fault-1"] == estate["per_fault"]["1"]
    assert dom.bars["no-fault"] == estate["audited"] - estate["with_fault"]
    for fid, count in estate["per_finding"].items():
        assert dom.bars[fid] == count
    for name, entry in report["hosts"].items():
        shown_ids = sorted(row[0] for row in dom.hosts[name]["rows"] if row[1] != "unknown")
        assert shown_ids == sorted(f["id"] for f in entry["findings"] + entry["waived"])
        assert dom.hosts[name]["faults"] == [str(n) for n in entry["faults"]]
    # The waiver's justification is shown as text; its script never ran.
    assert "data-pwned" not in dom.body and dom.title.startswith("NHS Credential Management estate report")
    assert "img" not in dom.tags

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    browse(chromium, page, "--window-size=1400,1600", f"--screenshot={shot}")
    assert shot.stat().st_size > 20_000
    shutil.copyfile(page, ARTIFACTS / "report.html")


def test_url_fragment_presets_the_filter(chromium: str, audited: dict[str, Any]) -> None:
    report, page = audited["report"], audited["page"]
    hosts = report["hosts"]

    fault = Dom(browse(chromium, page, "--dump-dom", fragment="#fault=1"))
    expected = sorted(n for n, e in hosts.items() if 1 in e["faults"])
    assert fault.visible() == expected and len(expected) >= 2
    assert fault.shown == f"Showing {len(expected)} of {len(hosts)} hosts"
    assert fault.body.get("data-filter") == "1||"

    waived = Dom(browse(chromium, page, "--dump-dom", fragment="#severity=waived&host=NOT-INST"))
    assert waived.visible() == ["cm-not-installed"]
    rows = waived.hosts["cm-not-installed"]["rows"]
    assert [(r[0], r[2]) for r in rows if r[2]] == [("CM_NOT_INSTALLED", True)]  # only the waived row shows
    assert all(not r[2] for r in rows if r[1] != "waived")

    healthy = Dom(browse(chromium, page, "--dump-dom", fragment="#fault=none&severity=error"))
    assert healthy.visible() == []
    assert healthy.shown == f"Showing 0 of {len(hosts)} hosts"


def test_hostile_values_are_text_everywhere(chromium: str, tmp_path: Path) -> None:
    catalogue = collection_module("_diagnose.catalogue")
    formats = collection_module("_report.formats")
    report_mod = collection_module("_report.build")
    finding = catalogue.make_finding("CM_NOT_RUNNING", catalogue.user_scope(HOSTILE, HOSTILE, 1),
                                     [{"user": HOSTILE, HOSTILE: HOSTILE}], summary=HOSTILE)
    report = report_mod.build_report({HOSTILE: {"findings": [finding], "unknown": [{"check": HOSTILE,
                                                                                   "reason": HOSTILE}]}},
                                     generated=dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    page = Path(formats.write_reports(report, str(tmp_path), ["html"])["html"])
    dom = Dom(browse(chromium, page, "--dump-dom", fragment="#host=" + "%3Cscript"))
    assert dom.visible() == [HOSTILE]  # the filter matched the name as text
    assert "data-pwned" not in dom.body
    assert "img" not in dom.tags and dom.tags.count("script") == 1
    assert dom.title.startswith("NHS Credential Management estate report")


# What a person sees, measured in the rendered page: a script added to a copy of the page (the
# report's own CSP would refuse it) writes the measurements into <body data-measured>.
MEASURE = """<script>
(function () {
  var out = {bars: [], evidence: [], split: []};
  var bars = document.querySelectorAll(".bar[data-key]");
  for (var i = 0; i < bars.length; i++) {
    var label = bars[i].querySelector(".label, text");
    var bar = bars[i].querySelector(".track, rect");
    var figure = bars[i].closest("figure").getBoundingClientRect();
    var l = label.getBoundingClientRect(), b = bar.getBoundingClientRect();
    out.bars.push({key: bars[i].getAttribute("data-key"), text: label.textContent,
                   clear_of_bar: l.right <= b.left + 0.5, inside: l.left >= figure.left && l.right <= figure.right,
                   clipped: label.scrollWidth > label.clientWidth + 1});
  }
  var cells = document.querySelectorAll("td.evidence");
  if (!cells.length) { cells = document.querySelectorAll("tbody td:nth-child(5)"); }
  function lines(cell, split) {
    var tops = {};
    var walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (var node = walker.nextNode(); node; node = walker.nextNode()) {
      var whole = document.createRange();
      whole.selectNodeContents(node);
      var pieces = whole.getClientRects();
      for (var p = 0; p < pieces.length; p++) { tops[Math.round(pieces[p].top)] = true; }
      var word = /[A-Za-z0-9]+/g, m;
      while ((m = word.exec(node.data)) !== null) {
        var range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        if (m[0].length < 20 && range.getClientRects().length > 1) { split.push(m[0]); }
      }
    }
    return Object.keys(tops).length;
  }
  for (var j = 0; j < cells.length; j++) {
    if (!cells[j].textContent.trim()) { continue; }
    out.evidence.push({width: cells[j].getBoundingClientRect().width, chars: cells[j].textContent.length,
                       lines: lines(cells[j], [])});
  }
  var all = document.querySelectorAll("section.host th, section.host td");
  for (var c = 0; c < all.length; c++) { lines(all[c], out.split); }
  document.body.setAttribute("data-measured", JSON.stringify(out));
}());
</script>"""


class Measured(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.data: dict[str, Any] = {}
        self.text = ""
        self.feed(text)

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = dict(attrs_list)
        if tag == "body" and attrs.get("data-measured"):
            import json

            self.data = json.loads(attrs["data-measured"] or "{}")

    def handle_data(self, data: str) -> None:
        self.text += data


def readable_report() -> dict[str, Any]:
    """A remediation of two hosts with the longest finding id and evidence as diagnose writes it."""
    catalogue = collection_module("_diagnose.catalogue")
    report_mod = collection_module("_report.build")
    edge = {"path": "HKLM\\SOFTWARE\\Policies\\Microsoft\\Edge\\AuthServerAllowlist", "name": "AuthServerAllowlist",
            "type": "REG_SZ", "data": "*.nhs.uk, *.nhs.net, *.spineservices.nhs.uk", "source": "machine policy",
            "note": "no entry matches http://localhost on every port; only some ports: localhost:8080"}
    allowlist = catalogue.make_finding(
        "AUTH_ALLOWLIST_EXCLUDES_LOCALHOST", catalogue.machine_scope(), [edge], browser="edge",
        summary="Edge's AuthServerAllowlist is set and no entry matches localhost, so Edge never sends Windows "
                "credentials to NHS Credential Management (machine policy)")
    mapped = catalogue.make_finding("LOCALHOST_MAPPED_OUTSIDE_INTRANET", catalogue.machine_scope(), [
        {"path": "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\ZoneMap\\Domains\\localhost",
         "name": "http", "type": "REG_DWORD", "data": 2, "zone": "Trusted sites"}])
    stopped = catalogue.make_finding("PORT_SERVICE_STOPPED", catalogue.machine_scope(),
                                     [{"service": "NHSPortService", "state": "stopped", "start_mode": "auto"}])
    before = {"pc-0001": {"findings": [allowlist, mapped, stopped]}, "pc-0002": {"findings": [stopped]}}
    after = {"pc-0001": {"findings": [allowlist, mapped]}, "pc-0002": {"findings": []}}
    return report_mod.build_report(after, before=before, generated=dt.datetime(2026, 11, 25, tzinfo=dt.UTC))


def test_labels_titles_and_evidence_are_readable(chromium: str, tmp_path: Path) -> None:
    """No chart label is cut or hidden by its bar; evidence wraps between words in a wide enough column."""
    formats = collection_module("_report.formats")
    catalogue = collection_module("_diagnose.catalogue")
    page = Path(formats.write_reports(readable_report(), str(tmp_path), ["html"])["html"])
    measured_page = tmp_path / "measured.html"
    text = page.read_text(encoding="utf-8")
    text = text[:text.index('<meta http-equiv="Content-Security-Policy"')] + text[text.index('<meta name="viewport"'):]
    measured_page.write_text(text.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    for window in ("1400,1600", "1024,1600"):
        dom = Measured(browse(chromium, measured_page, f"--window-size={window}", "--dump-dom"))
        bars = {bar["key"]: bar for bar in dom.data["bars"]}
        longest = bars["AUTH_ALLOWLIST_EXCLUDES_LOCALHOST"]
        assert "AUTH_ALLOWLIST_EXCLUDES_LOCALHOST" in longest["text"]  # the whole id ...
        assert catalogue.CATALOGUE["AUTH_ALLOWLIST_EXCLUDES_LOCALHOST"].title in longest["text"]  # ... and its title
        for bar in bars.values():
            assert bar["clear_of_bar"] and bar["inside"] and not bar["clipped"], (window, bar)
        assert dom.data["evidence"], "no evidence cell measured"
        for cell in dom.data["evidence"]:
            assert cell["width"] >= 220, (window, cell)
            assert cell["chars"] / cell["lines"] >= 15, (window, cell)  # not one character per line
        assert dom.data["split"] == [], window  # no word broken across lines, in any cell of a host's tables
    # Every finding id shows with its plain-English title.
    for fid in ("AUTH_ALLOWLIST_EXCLUDES_LOCALHOST", "LOCALHOST_MAPPED_OUTSIDE_INTRANET"):
        assert catalogue.CATALOGUE[fid].title in dom.text

    # The remediation: before and after per finding, and the totals.
    shown = Dom(browse(chromium, page, "--dump-dom"))
    assert {key: shown.tiles[key] for key in ("fixed", "still_failing", "needs_person", "not_verified")} == {
        "fixed": 2, "still_failing": 2, "needs_person": 0, "not_verified": 0}
    assert shown.hosts["pc-0001"]["outcomes"] == [("PORT_SERVICE_STOPPED", "fixed"),
                                                  ("LOCALHOST_MAPPED_OUTSIDE_INTRANET", "still failing"),
                                                  ("AUTH_ALLOWLIST_EXCLUDES_LOCALHOST", "still failing")]
    assert shown.hosts["pc-0002"]["outcomes"] == [("PORT_SERVICE_STOPPED", "fixed")]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report-readable.png"
    shot.unlink(missing_ok=True)
    browse(chromium, page, "--window-size=1400,1400", f"--screenshot={shot}")
    assert shot.stat().st_size > 20_000
