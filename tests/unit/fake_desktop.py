"""hostsim's desktop with its NHS Port Service stopped, answering cm_service's write operations
too (``backup_save``, ``service_set``), for driving the write path through a ``fake_runner.FakeHost``."""

from __future__ import annotations

import typing as t

from nhs_cm_hostsim import answer, healthy_host

BACKUPS = "C:\\ProgramData\\nhs_cm\\backups"


class Desktop:
    """hostsim's healthy desktop with its NHS Port Service stopped (start mode auto), which also
    answers the write operations cm_service sends, and records them."""

    def __init__(self, service_set: dict[str, t.Any] | None = None) -> None:
        self.host = healthy_host()
        self.port = self.host["services"][0]
        self.port["state"], self.port["pid"] = "stopped", 0
        self.service_set = service_set  # the result the first service_set gets instead, when given
        self.writes: list[dict[str, t.Any]] = []

    def answer(self, op: dict[str, t.Any]) -> dict[str, t.Any]:
        if op["op"] == "backup_save":
            self.writes.append(op)
            return {"ok": True, "id": op["id"], "path": f"{BACKUPS}\\{op['id']}.json", "missing_keys": []}
        if op["op"] == "service_set":
            self.writes.append(op)
            if self.service_set is not None:
                failed, self.service_set = self.service_set, None
                return failed
            before = dict(self.port)
            self.port["state"] = "running" if op["state"] in ("started", "restarted") else "stopped"
            self.port["start_mode"] = op.get("start_mode") or self.port["start_mode"]
            return {"ok": True, "name": self.port["name"], "display_name": self.port["display_name"],
                    "state": self.port["state"], "start_mode": self.port["start_mode"],
                    "previous_state": before["state"], "previous_start_mode": before["start_mode"]}
        return answer(self.host, op)
