"""`asr-collector serve` logging one JSON object per line, with no secret in any of them."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from tests.collector.kit import start_collector

PASSWORD = "hunter2-not-in-logs"


async def test_json_logs_from_a_real_serve_hold_no_secret(
    empty_pg_url: str, tmp_path: Path
) -> None:
    # PostgreSQL here trusts loopback, so the password is carried and never checked.
    url = empty_pg_url.replace("postgres@", f"postgres:{PASSWORD}@", 1)
    assert PASSWORD in url
    config = tmp_path / "collector.toml"
    config.write_text(
        f'[collector]\nstate_dir = "{tmp_path}"\nlog_level = "debug"\nlog_format = "json"\n'
        f'[server]\nhost = "127.0.0.1"\nport = 0\nplain_http = true\n'
        f'[database]\nurl = "{url}"\n[plan]\nenabled = false\n'
    )
    served = await start_collector(config)
    try:
        token = "asr1_NotARealTokenButLooksLikeOne123"
        async with aiohttp.ClientSession() as http:
            body = {
                "v": 1,
                "token": token,
                "public_key": "x",
                "agent_version": "0",
                "hostname": "h",
            }
            async with http.post(served.url + "/api/v1/enroll", json=body) as response:
                assert response.status in (400, 401, 403)
            headers = {"Authorization": "Bearer asrp_NotARealTokenEither456"}
            async with http.get(served.url + "/api/v1/portal/me", headers=headers) as response:
                assert response.status == 401
    finally:
        assert await served.stop() == 0
    lines = served.log.read_text().splitlines()
    assert len(lines) >= 3
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    assert any("schema revision" in entry["message"] for entry in entries)
    text = served.log.read_text()
    for secret in (PASSWORD, "NotARealToken"):
        assert secret not in text
