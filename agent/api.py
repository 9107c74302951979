"""The agent's public face to code outside the agent: decoding a printer's values as it does.

Is: what the collector's simulation imports to read simulated devices with the agent's own
decoder (R1): the profile built from `mibs/`, the decoding of one supply row and of the
error bits, and the SNMP value type those take. Only re-exports.
Is not: the poller, the spool or SNMP on the wire; those stay inside the agent.
"""

from agent.decode import decode_errors, decode_supply
from agent.profile import Profile, load_profile
from agent.snmp.ber import Value

__all__ = ["Profile", "Value", "decode_errors", "decode_supply", "load_profile"]
