"""`python -m nhs_cm_emulator` is the `nhs-cm-emulator` command."""

from nhs_cm_emulator.cli import main

raise SystemExit(main())
