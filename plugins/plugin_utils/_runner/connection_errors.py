# Copyright (c) 2025 NHS CM remediation maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""One readable line for a WinRM connection error, instead of the text urllib3 and pywinrm raise.

``describe("ntlm: HTTPConnectionPool(host='pc-0003', port=5985): Max retries exceeded ... [Errno 111]
Connection refused")`` is ``"connection refused on 5985"``. Texts it does not know give None, and the
caller keeps the original text.
"""

# FOR INTERNAL COLLECTION USE ONLY
# The interfaces in this file are meant for use within the nhs_cm.remediation collection
# and may not remain stable to outside uses. Changes may be made in ANY release, even a bugfix release.
# See also: https://github.com/ansible/community/issues/539#issuecomment-780839686
# Please open an issue if you have questions about this.

from __future__ import annotations

import re

_PORT = re.compile(r"\bport=(\d+)")
_READ_TIMEOUT = re.compile(r"read timeout=(\d+(?:\.\d+)?)")
_CONNECT_TIMEOUT = re.compile(r"connect timeout=(\d+(?:\.\d+)?)")


def _seconds(value: str) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


def _on_port(text: str) -> str:
    found = _PORT.search(text)
    return f" on {found.group(1)}" if found else ""


def describe(text: str) -> str | None:
    """The readable line for ``text`` (an exception's message), or None when it is not a known one."""
    lowered = text.casefold()
    if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
        if "hostname mismatch" in lowered or "doesn't match" in lowered or "ip address mismatch" in lowered:
            return ("TLS certificate is for another name (connect with the name on the desktop's certificate, "
                    "or set ansible_winrm_server_cert_validation)")
        if "expired" in lowered:
            return "TLS certificate has expired"
        return "TLS certificate not trusted (set ansible_winrm_ca_trust_path)"
    if "wrong version number" in lowered or "record layer failure" in lowered:
        return f"no TLS{_on_port(text)} (is it the HTTP port? set ansible_port and ansible_winrm_scheme together)"
    if "connection refused" in lowered or "errno 111" in lowered or "winerror 10061" in lowered:
        return f"connection refused{_on_port(text)}"
    read = _READ_TIMEOUT.search(text)
    if read:
        return f"no answer in {_seconds(read.group(1))} s"
    connect = _CONNECT_TIMEOUT.search(text)
    if connect:
        return f"no answer in {_seconds(connect.group(1))} s (could not connect{_on_port(text)})"
    if "timed out" in lowered:
        return "no answer (timed out)"
    if "credentials were rejected" in lowered or "invalidcredentialserror" in lowered or "code 401" in lowered:
        return "credentials rejected"
    if ("name or service not known" in lowered or "nodename nor servname" in lowered
            or "temporary failure in name resolution" in lowered or "errno -2" in lowered):
        return "host name not found (DNS)"
    if "no route to host" in lowered or "errno 113" in lowered or "network is unreachable" in lowered:
        return "no route to the host"
    if "connection aborted" in lowered or "connection reset" in lowered or "remotedisconnected" in lowered:
        return "connection dropped by the host"
    return None
