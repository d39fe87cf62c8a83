"""nhs_cm_emulator: an emulated estate of Windows desktops that answers WinRM (WS-Management).

It is not Windows and never runs PowerShell or any other program: each command a client sends is
interpreted in Python against the emulated host's state (see state.py). The WinRM server lives in
server.py (HTTP), auth.py (Basic, NTLM, message encryption), wsman.py (WS-Man/WinRS) and tls.py.
"""

__version__ = "0.1.0"
