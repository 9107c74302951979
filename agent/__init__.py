"""The ASR edge agent: reads printers over SNMP and reports their supplies."""

__version__ = "0.1.0"
