"""WinRM connection errors as one readable line (plugins/plugin_utils/_runner/connection_errors.py); the
texts are what pywinrm, requests and urllib3 raise through ansible's winrm connection plugin."""

from __future__ import annotations

import pytest

from ansible_collections.nhs_cm.remediation.plugins.plugin_utils._runner.connection_errors import describe

POOL = "ntlm: HTTPConnectionPool(host='pc-0003.trust.nhs.uk', port=5985): Max retries exceeded with url: /wsman"
TLS_POOL = "ntlm: HTTPSConnectionPool(host='pc-0003.trust.nhs.uk', port=5986): Max retries exceeded with url: /wsman"


@pytest.mark.parametrize(("text", "line"), [
    (f"{POOL} (Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f>: Failed to "
     "establish a new connection: [Errno 111] Connection refused'))", "connection refused on 5985"),
    (f"{TLS_POOL} (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate "
     "verify failed: unable to get local issuer certificate (_ssl.c:1006)')))",
     "TLS certificate not trusted (set ansible_winrm_ca_trust_path)"),
    (f"{TLS_POOL} (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate "
     "verify failed: self-signed certificate (_ssl.c:1006)')))",
     "TLS certificate not trusted (set ansible_winrm_ca_trust_path)"),
    (f"{TLS_POOL} (Caused by SSLError(SSLCertVerificationError(1, \"[SSL: CERTIFICATE_VERIFY_FAILED] certificate "
     "verify failed: Hostname mismatch, certificate is not valid for 'pc-0003'. (_ssl.c:1006)\")))",
     "TLS certificate is for another name (connect with the name on the desktop's certificate, or set "
     "ansible_winrm_server_cert_validation)"),
    ("winrm connection error: HTTPConnectionPool(host='desk01', port=5985): Read timed out. (read timeout=30)",
     "no answer in 30 s"),
    (f"{POOL} (Caused by ConnectTimeoutError(<urllib3.connection.HTTPConnection object at 0x7f>, 'Connection to "
     "pc-0003.trust.nhs.uk timed out. (connect timeout=30)'))", "no answer in 30 s (could not connect on 5985)"),
    ("ntlm: the specified credentials were rejected by the server", "credentials rejected"),
    (f"{POOL} (Caused by NameResolutionError(\"<urllib3.connection.HTTPConnection object at 0x7f>: Failed to "
     "resolve 'pc-0003.trust.nhs.uk' ([Errno -2] Name or service not known)\"))", "host name not found (DNS)"),
    (f"{POOL} (Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f>: Failed to "
     "establish a new connection: [Errno 113] No route to host'))", "no route to the host"),
    ("winrm connection error: ('Connection aborted.', RemoteDisconnected('Remote end closed connection without "
     "response'))", "connection dropped by the host"),
])
def test_known_errors_read_as_one_short_line(text: str, line: str) -> None:
    assert describe(text) == line


@pytest.mark.parametrize("text", [
    "winrm send_input failed; stdout: ; stderr: An internal error occurred. Code 500",
    "the runner's reply is not JSON (exit code 0)",
])
def test_other_errors_keep_their_own_text(text: str) -> None:
    assert describe(text) is None
