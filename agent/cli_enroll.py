"""`asr-agent enroll` and `rotate-key`: the agent's identity with the collector.

Is: enrolment with a one-time token (the key is made here and never leaves the box) and key
rotation; `enrolled`, the identity the other commands need, and the clock they are handed.
Is not: the protocol of either (agent.enrollment) or where the identity is kept (agent.identity).
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from agent.config import AgentConfig
from agent.enrollment import enroll, rotate_key
from agent.identity import KEY_FILE, Identity, IdentityError, load_identity, load_key
from agent.push import open_client
from agent.state import make_state_dir
from wire.signing import key_id


def utcnow() -> datetime:
    """Now, in UTC: the clock the agent's commands are handed."""
    return datetime.now(timezone.utc)


def token_of(args: argparse.Namespace) -> str:
    """The one-time token, given on the command line or in a file."""
    if args.token_file is not None:
        return str(Path(args.token_file).read_text().strip())
    return str(args.token)


async def enroll_agent(config: AgentConfig, token: str) -> int:
    """`enroll`: join the collector once with a one-time token; a key made here."""
    collector = config.require_collector()
    state_dir = make_state_dir(config.agent.state_dir)
    async with open_client(collector) as client:
        identity = await enroll(state_dir, client, token, config.spool.cap_rows, utcnow())
    key = load_key(state_dir)
    print(
        f"enrolled as agent {identity.agent_id} for {identity.customer} / {identity.site}"
        f" at {identity.collector_url}; key {key_id(key.public_key())}"
        f" ({state_dir / KEY_FILE}, never leaves this box)"
    )
    return 0


async def rotate(config: AgentConfig) -> int:
    """`rotate-key`: replace the agent's key with a new one."""
    collector = config.require_collector()
    state_dir = config.agent.state_dir
    identity = enrolled(config)
    async with open_client(collector) as client:
        rotated = await rotate_key(state_dir, client, identity, utcnow())
    print(
        f"agent {identity.agent_id}: key {rotated.key_id} replaces {rotated.retired_key_id}"
        " (the old one still verifies for the collector's grace period)"
    )
    return 0


def enrolled(config: AgentConfig) -> Identity:
    """The agent's identity; IdentityError if it has not enrolled."""
    identity = load_identity(config.agent.state_dir)
    if identity is None:
        raise IdentityError(
            f"not enrolled ({config.agent.state_dir} has no identity):"
            " run asr-agent enroll --config FILE --token TOKEN first"
        )
    return identity
