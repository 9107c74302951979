"""`asr-agent run`: the agent as a service, with the resources it owns.

Is: the state directory locked, the identity and the spool opened (refusing a spool that is
missing or another agent's), the SNMP clients, the HTTPS session and the metrics endpoint made,
the schedule started, and all of them closed on SIGINT or SIGTERM.
Is not: what each poll and push does (agent.work, agent.service).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from agent import __version__
from agent.cli_enroll import enrolled, utcnow
from agent.config import AgentConfig
from agent.delivery import Deliverer
from agent.identity import KeyFiles
from agent.metrics import AgentMetrics
from agent.poller import Poller, SnmpClients
from agent.profile import load_profile
from agent.push import open_client
from agent.service import Service
from agent.spool import Spool, SpoolError
from agent.state import SPOOL_FILE, STATE_FILE, load_state, lock_state_dir, make_state_dir
from agent.work import AgentWork
from wire.signing import key_id

log = logging.getLogger("agent")


def _open_spool(config: AgentConfig, agent_id: str) -> Spool:
    path = config.agent.state_dir / SPOOL_FILE
    if not path.exists():
        raise SpoolError(
            f"{path} is missing though the agent is enrolled: a new spool would number"
            " readings from 1 again and the collector would take them for duplicates."
            " Restore it, or move identity.json and agent-key.pem away and enroll anew"
        )
    spool = Spool.open(path, config.spool.cap_rows)
    bound = spool.stats().agent_id
    if bound != agent_id:
        spool.close()
        raise SpoolError(f"{path} belongs to agent {bound}, not to {agent_id}")
    return spool


async def run(config: AgentConfig) -> int:
    """`run`: read the printers on a schedule and send what was read, until a signal."""
    collector = config.require_collector()
    state_dir = make_state_dir(config.agent.state_dir)
    lock = lock_state_dir(state_dir)
    try:
        identity = enrolled(config)
        keys = KeyFiles(state_dir)
        log.info(
            "agent %s (%s / %s), key %s, pushing to %s",
            identity.agent_id,
            identity.customer,
            identity.site,
            key_id(keys.current().public_key()),
            collector.url,
        )
        spool = _open_spool(config, identity.agent_id)
        try:
            if spool.reset_on_open:
                log.info(
                    "%d readings were in flight when the agent stopped: ready again",
                    spool.reset_on_open,
                )
            await _serve(config, identity.agent_id, spool, keys)
        finally:
            spool.close()
    finally:
        lock.close()
    return 0


async def _serve(config: AgentConfig, agent_id: str, spool: Spool, keys: KeyFiles) -> None:
    collector = config.require_collector()
    state_path = config.agent.state_dir / STATE_FILE
    state = load_state(state_path)
    profile = load_profile()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with SnmpClients() as clients, open_client(collector) as client:
        poller = Poller(
            profile,
            clients,
            max_in_flight=config.snmp.max_in_flight,
            max_repetitions=config.snmp.max_repetitions,
            unreachable_after=timedelta(hours=config.snmp.unreachable_after_hours),
        )
        deliverer = Deliverer(
            spool,
            client,
            agent_id,
            keys,
            config.spool.batch_size,
            collector.max_body_bytes,
            utcnow,
        )
        specs = config.printer_specs()
        metrics = AgentMetrics()
        if config.agent.metrics_address is not None:
            host, _, port = config.agent.metrics_address.rpartition(":")
            metrics.serve(host.strip("[]"), int(port))
            log.info("metrics on http://%s/metrics", config.agent.metrics_address)
        work = AgentWork(specs, poller, spool, deliverer, state, state_path, utcnow, metrics)
        service = Service(work, config.schedule)
        log.info("asr-agent %s: %d printer(s)", __version__, len(specs))
        await service.start(state.last_push_ok_at)
        await stop.wait()
        log.info("stopping")
        await service.stop(timeout=collector.request_timeout_seconds + 5)
