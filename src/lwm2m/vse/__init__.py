"""The virtual secure element (VSE): an emulated UICC for the PC/SC path, speaking the vpcd
protocol of Debian's vsmartcard-vpcd reader under pcscd (ARCHITECTURE decision 4).

It is a faithful test device, not a mock: an ETSI TS 102 221 file system with EF.DIR, EF.ICCID
and the PKCS #15 application carrying EF LwM2M_Bootstrap (LwM2M-TS-Core Appendix G), logical
channels, T=0 style response chaining, a GlobalPlatform issuer security domain with real SCP03
(GP Card Spec 2.3 Amd D) and GET DATA identification, and a GSMA IoT SAFE applet (IoT.05) whose
P-256 keys are generated and used inside it. Its personalisation persists in a JSON file.

Run it with ``python -m lwm2m.vse --port 35963 --state vse.json`` or ``lwm2m vse run``.
"""

from lwm2m.vse.server import VseServer, run
from lwm2m.vse.state import VseState, load_state, save_state
from lwm2m.vse.uicc import VirtualUicc

__all__ = ["VirtualUicc", "VseServer", "VseState", "load_state", "run", "save_state"]
