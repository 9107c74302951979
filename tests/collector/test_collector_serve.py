"""`asr-collector serve` as real processes: two on one PostgreSQL, and the embedded default."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

from collector.service import Collector, Settings
from collector.store.database import Database
from collector.store.schema import readings
from tests.collector.kit import Agent, Clock, start_collector
from wire.batch import encode_batch


def _config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


async def test_r2_two_collectors_store_each_reading_once(empty_pg_url: str, tmp_path: Path) -> None:
    configs = [
        _config(
            tmp_path / name / "collector.toml",
            f'[collector]\nstate_dir = "{tmp_path / name}"\n'
            '[server]\nhost = "127.0.0.1"\nport = 0\nplain_http = true\n'
            f'[database]\nurl = "{empty_pg_url}"\n',
        )
        for name in ("a", "b")
    ]
    first, second = await asyncio.gather(*(start_collector(c) for c in configs))
    db = Database.open(empty_pg_url)
    try:
        token, _ = await Collector(db, Settings()).create_token("acme", "milano")
        async with aiohttp.ClientSession() as http:
            clock = Clock()
            agent = Agent(http, first.url, clock)
            assert (await agent.enroll(token)).status == 201
            twin = Agent(http, second.url, clock, key=agent.key, agent_id=agent.agent_id)
            accepted: dict[int, int] = {}
            for round_ in range(12):
                body = encode_batch(agent.batch(range(round_ * 25 + 1, round_ * 25 + 26)))
                replies = await asyncio.gather(
                    *(sender.send(body) for sender in (agent, twin, agent, twin))
                )
                for reply in replies:
                    assert reply.status == 200, reply.body
                    for result in reply.body["results"]:
                        if result["status"] == "accepted":
                            accepted[result["seq"]] = accepted.get(result["seq"], 0) + 1
        assert accepted == dict.fromkeys(range(1, 301), 1)
        counts = await db.row_counts()
        assert (counts["readings"], counts["batches"], counts["heartbeats"]) == (300, 12, 12)
        assert counts["supplies"] == 1500
        async with db.transaction() as conn:
            seqs = select(func.count(readings.c.seq.distinct()))
            assert (await conn.execute(seqs)).scalar_one() == 300
    finally:
        await db.close()
        codes = await asyncio.gather(first.stop(), second.stop())
    assert codes == [0, 0], (first.log.read_text(), second.log.read_text())


async def test_embedded_default_serves_a_pinnable_self_signed_certificate(tmp_path: Path) -> None:
    config = _config(
        tmp_path / "collector.toml",
        f'[collector]\nstate_dir = "{tmp_path / "state"}"\n'
        '[server]\nhost = "127.0.0.1"\nport = 0\n',
    )
    served = await start_collector(config)
    try:
        assert served.url.startswith("https://127.0.0.1:")
        (announced,) = [line for line in served.lines if "SHA-256" in line]
        assert "made a self-signed certificate" in announced
        pin = bytes.fromhex(announced.rsplit(" ", 1)[-1].replace(":", ""))
        connector = aiohttp.TCPConnector(ssl=aiohttp.Fingerprint(pin))
        async with (
            aiohttp.ClientSession(connector=connector) as http,
            http.get(served.url + "/healthz") as response,
        ):
            assert (response.status, await response.json()) == (200, {"status": "ok"})
    finally:
        assert await served.stop() == 0
    assert (tmp_path / "state" / "collector.db").exists()
    assert (tmp_path / "state" / "tls-key.pem").stat().st_mode & 0o077 == 0
