"""The SNMP error tree: every failure says whether trying again later may help."""

from __future__ import annotations


class SnmpError(Exception):
    """A read failed; `transient` says whether a later poll may succeed."""

    transient = False


class SnmpTimeout(SnmpError):
    """No answer at all: asleep, off, unreachable, or (v1/v2c) a wrong community."""

    transient = True


class SnmpAuthError(SnmpError):
    """The agent answered but refused our credentials (SNMPv3 USM reports)."""


class SnmpProtocolError(SnmpError):
    """The answer broke the protocol: malformed BER, wrong PDU, or an error status."""


class NotAPrinter(SnmpError):
    """The device answered SNMP but shows no Printer-MIB supplies table."""


class TooBig(SnmpProtocolError):
    """The answer would not fit in one message: ask for fewer rows at a time."""
