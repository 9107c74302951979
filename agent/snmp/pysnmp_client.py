"""SNMP through pysnmp 7's asyncio API: the path for SNMPv3 (USM), usable for v1/v2c too.

The only module that imports pysnmp. Its errors are translated here into the agent's error
tree; its values into plain Python (int, bytes, OID tuples, NoValue).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyasn1.type import univ
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
    next_cmd,
    usmAesCfb128Protocol,
    usmAesCfb192Protocol,
    usmAesCfb256Protocol,
    usmDESPrivProtocol,
    usmHMAC128SHA224AuthProtocol,
    usmHMAC192SHA256AuthProtocol,
    usmHMAC256SHA384AuthProtocol,
    usmHMAC384SHA512AuthProtocol,
    usmHMACMD5AuthProtocol,
    usmHMACSHAAuthProtocol,
)
from pysnmp.proto import rfc1905

from agent.snmp import ber
from agent.snmp.ber import Oid, VarBind
from agent.snmp.errors import SnmpAuthError, SnmpError, SnmpProtocolError, SnmpTimeout, TooBig
from agent.snmp.session import Credentials, Target

_AUTH = {
    "MD5": usmHMACMD5AuthProtocol,
    "SHA": usmHMACSHAAuthProtocol,
    "SHA224": usmHMAC128SHA224AuthProtocol,
    "SHA256": usmHMAC192SHA256AuthProtocol,
    "SHA384": usmHMAC256SHA384AuthProtocol,
    "SHA512": usmHMAC384SHA512AuthProtocol,
}
_PRIV = {
    "DES": usmDESPrivProtocol,
    "AES": usmAesCfb128Protocol,
    "AES192": usmAesCfb192Protocol,
    "AES256": usmAesCfb256Protocol,
}
# Error indications that mean the agent refused our credentials (RFC 3414 USM reports).
_AUTH_FAILURES = (
    "UnknownUserName",
    "WrongDigest",
    "DecryptionError",
    "UnsupportedSecurityLevel",
    "UnknownSecurityName",
    "AuthenticationError",
)


class PysnmpClient:
    """Owns one pysnmp engine for every printer; hands out sessions."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    @classmethod
    async def create(cls) -> PysnmpClient:
        """Build the engine off the event loop: it loads MIB modules from disk."""
        return cls(await asyncio.to_thread(SnmpEngine))

    def session(self, target: Target, credentials: Credentials) -> PysnmpSession:
        """A session for one printer, any SNMP version."""
        return PysnmpSession(self._engine, target, credentials)

    def close(self) -> None:
        """Close the engine's sockets."""
        self._engine.close_dispatcher()


def _auth_data(credentials: Credentials) -> CommunityData | UsmUserData:
    if credentials.version != "3":
        return CommunityData(credentials.community, mpModel=0 if credentials.version == "1" else 1)
    return UsmUserData(
        credentials.user,
        authKey=credentials.auth_key,
        privKey=credentials.priv_key,
        authProtocol=_AUTH[credentials.auth_protocol] if credentials.auth_protocol else None,
        privProtocol=_PRIV[credentials.priv_protocol] if credentials.priv_protocol else None,
    )


def _plain(value: Any) -> ber.Value:
    """A pysnmp value as the codec's plain value."""
    if isinstance(value, rfc1905.NoSuchObject):
        return ber.NO_SUCH_OBJECT_VALUE
    if isinstance(value, rfc1905.NoSuchInstance):
        return ber.NO_SUCH_INSTANCE_VALUE
    if isinstance(value, rfc1905.EndOfMibView):
        return ber.END_OF_MIB_VIEW_VALUE
    # pysnmp's SNMP types derive from pyasn1's universal ones (IpAddress, Opaque: OctetString).
    if isinstance(value, univ.OctetString):
        return bytes(value.asOctets())
    if isinstance(value, univ.ObjectIdentifier):
        return tuple(value)
    if isinstance(value, univ.Integer):
        return int(value)
    return None


class PysnmpSession:
    """Calls to one printer through pysnmp; retries with backoff done here, not by pysnmp."""

    def __init__(self, engine: Any, target: Target, credentials: Credentials) -> None:
        self._engine = engine
        self._target = target
        self._auth = _auth_data(credentials)
        self._context = ContextData(contextName=credentials.context.encode())
        self._version = credentials.version
        self._transports: list[Any] = []

    @property
    def bulk(self) -> bool:
        return self._version != "1"

    async def _transports_for_tries(self) -> list[Any]:
        if not self._transports:
            host = self._target.host.strip("[]")
            kind = Udp6TransportTarget if ":" in host else UdpTransportTarget
            self._transports = [
                await kind.create((host, self._target.port), timeout=wait, retries=0)
                for wait in self._target.waits()
            ]
        return self._transports

    async def _call(self, command: Any, *args: Any, oids: list[Oid]) -> list[VarBind]:
        varbinds = [ObjectType(ObjectIdentity(oid)) for oid in oids]
        for transport in await self._transports_for_tries():
            error, status, index, answer = await command(
                self._engine,
                self._auth,
                transport,
                self._context,
                *args,
                *varbinds,
                lookupMib=False,
            )
            if error is None:
                break
            name = type(error).__name__
            if name == "RequestTimedOut":
                continue
            if name in _AUTH_FAILURES or any(
                f.lower() in str(error).lower().replace(" ", "") for f in _AUTH_FAILURES
            ):
                raise SnmpAuthError(f"{self._target.host}: credentials refused ({error})")
            raise SnmpError(f"{self._target.host}: {error}")
        else:
            raise SnmpTimeout(
                f"no answer from {self._target.host}:{self._target.port} after "
                f"{self._target.retries + 1} tries over "
                f"{sum(self._target.waits()):.1f} s"
            )
        if status:
            if int(status) == 1:
                raise TooBig(f"{self._target.host}: tooBig")
            raise SnmpProtocolError(
                f"{self._target.host}: error status {status.prettyPrint()} at index {int(index)}"
            )
        return [(tuple(vb[0]), _plain(vb[1])) for vb in answer]

    async def get(self, oids: list[Oid]) -> list[VarBind]:
        if self._version != "1":
            return await self._call(get_cmd, oids=oids)
        # v1 reports a missing object as noSuchName for the whole request: ask one by one.
        out: list[VarBind] = []
        for oid in oids:
            try:
                out.extend(await self._call(get_cmd, oids=[oid]))
            except SnmpProtocolError as err:
                if "noSuchName" not in str(err):
                    raise
                out.append((oid, ber.NO_SUCH_OBJECT_VALUE))
        return out

    async def get_next(self, oids: list[Oid]) -> list[VarBind]:
        try:
            return await self._call(next_cmd, oids=oids)
        except SnmpProtocolError as err:
            if "noSuchName" not in str(err) or len(oids) == 1:
                if "noSuchName" in str(err):
                    return [(oids[0], ber.END_OF_MIB_VIEW_VALUE)]
                raise
        out: list[VarBind] = []
        for oid in oids:
            out.extend(await self.get_next([oid]))
        return out

    async def get_bulk(
        self, non_repeaters: list[Oid], repeaters: list[Oid], max_repetitions: int
    ) -> list[VarBind]:
        return await self._call(
            bulk_cmd, len(non_repeaters), max_repetitions, oids=[*non_repeaters, *repeaters]
        )
