"""`asr-agent status`: what the agent holds, and when it last read and sent.

Is: a read-only look at the state directory (identity, key, a pending rotation, the spool's
counts, the last poll and push and each printer's state), printed for a person or as JSON; it
runs beside a running agent and changes nothing.
Is not: the health of the collector's side, or metrics (agent.metrics).
"""

from __future__ import annotations

import json
from typing import Any

from agent.config import AgentConfig
from agent.identity import KEY_FILE, load_identity, load_key, pending_key
from agent.spool import Spool
from agent.state import SPOOL_FILE, STATE_FILE, load_state
from wire.signing import key_id


def status(config: AgentConfig, as_json: bool) -> int:
    """`status`: what the agent holds, and when it last read and sent, as text or JSON."""
    state_dir = config.agent.state_dir
    identity = load_identity(state_dir)
    key = None
    if (state_dir / KEY_FILE).exists():
        key = key_id(load_key(state_dir).public_key())
    pending = pending_key(state_dir)
    spool_path = state_dir / SPOOL_FILE
    spool: dict[str, Any] | None = None
    if spool_path.exists():
        with Spool.open_read_only(spool_path) as opened:
            stats = opened.stats()
        spool = {
            "depth": stats.depth,
            "ready": stats.ready,
            "in_flight": stats.in_flight,
            "last_seq": stats.last_seq,
            "dropped_total": stats.dropped_total,
            "rejected_total": stats.rejected_total,
            "oldest_read_at": stats.oldest_read_at.isoformat() if stats.oldest_read_at else None,
        }
    state = load_state(state_dir / STATE_FILE)
    data: dict[str, Any] = {
        "agent": identity.to_dict() if identity else None,
        "key_id": key,
        "rotation_pending": key_id(pending.public_key()) if pending else None,
        "spool": spool,
        **state.to_dict(),
    }
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        print(_render_status(data, config))
    return 0


def _render_status(data: dict[str, Any], config: AgentConfig) -> str:
    agent, spool = data["agent"], data["spool"]
    lines = []
    if agent is None:
        lines.append(f"agent      not enrolled (state directory {config.agent.state_dir})")
    else:
        lines.append(
            f"agent      {agent['agent_id']} for {agent['customer']} / {agent['site']},"
            f" enrolled {agent['enrolled_at']}"
        )
        lines.append(f"collector  {agent['collector_url']}")
    if data["key_id"]:
        pending = f" (rotation to {data['rotation_pending']} unfinished)"
        lines.append(f"key        {data['key_id']}{pending if data['rotation_pending'] else ''}")
    if spool is None:
        lines.append("spool      none yet")
    else:
        lines.append(
            f"spool      {spool['depth']} readings ({spool['ready']} ready,"
            f" {spool['in_flight']} in flight), oldest read {spool['oldest_read_at'] or '-'};"
            f" last seq {spool['last_seq']}; dropped {spool['dropped_total']},"
            f" rejected {spool['rejected_total']}"
        )
    states: dict[str, int] = {}
    for printer in data["printers"].values():
        states[printer["state"]] = states.get(printer["state"], 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    lines.append(f"last poll  {data['last_poll_at'] or 'never'}{': ' + summary if summary else ''}")
    if data["last_push_at"] is None:
        lines.append("last push  never")
    elif data["last_push_error"] is None:
        lines.append(f"last push  {data['last_push_at']}: delivered")
    else:
        lines.append(
            f"last push  {data['last_push_at']}: FAILED: {data['last_push_error']};"
            f" last good push {data['last_push_ok_at'] or 'never'}"
        )
    offset = data.get("clock_offset_seconds")
    if offset is not None:
        lines.append(
            f"clock      {abs(offset):.0f} s {'behind' if offset > 0 else 'ahead of'} the"
            f" collector's: times sent are corrected by {offset:+.0f} s; set it right (NTP)"
        )
    for name, printer in data["printers"].items():
        error = printer.get("error")
        lines.append(
            f"  {name}: {printer['state']}, last answered {printer['last_answered'] or 'never'}"
            + (f": {error}" if error else "")
        )
    return "\n".join(lines)
