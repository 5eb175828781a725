"""Numbers shared by several layers (LwM2M-TS-Core §6, §7)."""

from __future__ import annotations

__all__ = ["LWM2M_VERSION", "MAX_ID"]

#: LwM2M ids are 16-bit; 65535 (MAX_ID) is reserved and never a valid id (LwM2M-TS-Core §7.1).
MAX_ID = 65535

#: The enabler version this package implements (the ``lwm2m=`` registration parameter).
LWM2M_VERSION = "1.1"
