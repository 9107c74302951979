"""The HTTP views: read the request, call the service, answer; errors become statuses here.

Every refusal answers JSON {"error", "reason"[, "field"]} and counts in the metrics by reason.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections import Counter

from aiohttp import web

from collector.appkeys import COLLECTOR, CONFIG, METRICS
from collector.errors import (
    AuthError,
    BatchConflict,
    BodyTooLarge,
    CollectorError,
    EnrollError,
    InvalidRequest,
    KeyInUse,
    ReplayedNonce,
    StoreUnavailable,
    UnknownKey,
    UnsupportedMediaType,
)
from collector.records import ACCEPTED, DUPLICATE, REJECTED
from collector.store import outbox_rows
from wire.enroll import encode_message
from wire.errors import WireError
from wire.signing import SignatureError

log = logging.getLogger(__name__)

Refusal = CollectorError | WireError | SignatureError
REFUSALS = (CollectorError, WireError, SignatureError)

# First match wins: subclasses before their bases.
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (BodyTooLarge, 413),
    (UnsupportedMediaType, 415),
    (WireError, 400),
    (InvalidRequest, 400),
    (SignatureError, 401),
    (UnknownKey, 401),
    (AuthError, 403),  # revoked, retired past its grace, or another agent's key
    (ReplayedNonce, 409),
    (BatchConflict, 409),  # a batch id again, with readings its first body did not hold
    (KeyInUse, 409),
    (EnrollError, 401),  # token unknown, used or expired
    (StoreUnavailable, 503),
)


def refusal(
    request: web.Request,
    endpoint: str,
    err: Exception,
    statuses: tuple[tuple[type[Exception], int], ...],
    body: dict[str, str],
) -> web.Response:
    """A refused request's answer: the status of the first kind `err` is in `statuses` (500
    if none), counted by endpoint and reason, logged; a 503 asks to retry in 30 s."""
    status = next((code for kind, code in statuses if isinstance(err, kind)), 500)
    reason = str(getattr(err, "reason", "error"))
    request.app[METRICS].rejections.labels(endpoint, reason).inc()
    field = getattr(err, "field", None)
    if field:
        body["field"] = field
    headers = {"Retry-After": "30"} if status == 503 else None
    log.info("%s refused (%d %s): %s", endpoint, status, reason, err)
    return web.json_response(body, status=status, headers=headers)


def _refuse(request: web.Request, endpoint: str, err: Refusal) -> web.Response:
    return refusal(request, endpoint, err, _STATUS, {"error": str(err), "reason": err.reason})


async def json_body(request: web.Request, limit: int) -> bytes:
    """The JSON body, refused before reading it all if larger than `limit`."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"body of {request.content_length} bytes, more than {limit}")
    if request.content_type != "application/json":
        raise UnsupportedMediaType(f"content type {request.content_type!r}, not application/json")
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:  # no Content-Length (chunked): count as it comes
            raise BodyTooLarge(f"body larger than {limit} bytes")
    return bytes(body)


async def post_readings(request: web.Request) -> web.Response:
    """POST /api/v1/readings: a signed batch of readings (R2)."""
    metrics = request.app[METRICS]
    started = time.perf_counter()
    try:
        body = await json_body(request, request.app[CONFIG].ingest.max_body_bytes)
        result = await request.app[COLLECTOR].ingest(request.headers, body)
    except REFUSALS as err:
        metrics.batches.labels("refused").inc()
        return _refuse(request, "readings", err)
    finally:
        metrics.latency.observe(time.perf_counter() - started)
    metrics.batches.labels("stored" if result.new_batch else "resent").inc()
    statuses = Counter(r.status for r in result.results)
    for status, count in statuses.items():
        metrics.readings.labels(status).inc(count)
    log.info(
        "batch %s from agent %s: %d readings, %d accepted, %d rejected, %d duplicate%s",
        result.batch_id,
        result.agent_id,
        len(result.results),
        statuses[ACCEPTED],
        statuses[REJECTED],
        statuses[DUPLICATE],
        "" if result.new_batch else " (sent again)",
    )
    for kind, count in Counter(r.kind for r in result.results if r.kind).items():
        metrics.quarantined.labels(kind).inc(count)
    offset = result.clock_offset_seconds
    if metrics.agent_clock(result.agent_id, offset):
        if offset is None:
            log.info("agent %s: its clock agrees with the collector's again", result.agent_id)
        else:
            log.warning(
                "agent %s: its clock is %.0f s %s the collector's; it corrects the times it"
                " sends by %+.0f s (readings kept in order); set its clock right (NTP)",
                result.agent_id,
                abs(offset),
                "behind" if offset > 0 else "ahead of",
                offset,
            )
    return web.json_response(result.to_dict())


async def enroll(request: web.Request) -> web.Response:
    """POST /api/v1/enroll: a one-time token and a public key make an agent."""
    try:
        body = await json_body(request, request.app[CONFIG].enroll.max_body_bytes)
        enrollment = await request.app[COLLECTOR].enroll(body)
    except REFUSALS as err:
        return _refuse(request, "enroll", err)
    request.app[METRICS].enrollments.inc()
    log.info(
        "enrolled agent %s (key %s) for %s / %s",
        enrollment.agent_id,
        enrollment.key_id,
        enrollment.customer,
        enrollment.site,
    )
    return _json(encode_message(enrollment), status=201)


async def rotate_key(request: web.Request) -> web.Response:
    """POST /api/v1/agents/{agent_id}/keys: a new key, endorsed and signed by the old one."""
    agent_id = request.match_info["agent_id"]
    try:
        body = await json_body(request, request.app[CONFIG].enroll.max_body_bytes)
        rotated = await request.app[COLLECTOR].rotate_key(agent_id, request.headers, body)
    except REFUSALS as err:
        return _refuse(request, "keys", err)
    request.app[METRICS].rotations.inc()
    log.info("agent %s: key %s replaces %s", agent_id, rotated.key_id, rotated.retired_key_id)
    return _json(encode_message(rotated), status=201)


# A metrics app of its own (metrics.listen) serves the metrics of this collector app.
METRICS_SOURCE = web.AppKey("metrics_source", web.Application)
METRICS_TOKEN = web.AppKey("metrics_token", str)  # the bearer token /metrics asks for, if any


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text exposition; the outboxes' depths read now."""
    source = request.app.get(METRICS_SOURCE, request.app)
    metrics = source[METRICS]
    token = request.app.get(METRICS_TOKEN)
    if token is not None and not _bearer_is(request, token):
        metrics.rejections.labels("metrics", "bad-token").inc()
        log.info("metrics refused (401 bad-token) to %s", request.remote)
        return web.Response(
            status=401,
            text="a bearer token is required (metrics.token_file)\n",
            headers={"WWW-Authenticate": 'Bearer realm="asr-metrics"'},
        )
    try:
        metrics.set_outboxes(await outbox_rows.depths(source[COLLECTOR].db))
    except StoreUnavailable:  # the counters still answer while the database is away
        log.warning("metrics: the outboxes' depths are unknown (database unavailable)")
    body, content_type = metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: 200 when the database answers, 503 when not."""
    try:
        await request.app[COLLECTOR].db.ping()
    except StoreUnavailable as err:
        return web.json_response({"status": "unavailable", "error": str(err)}, status=503)
    return web.json_response({"status": "ok"})


def _bearer_is(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def _json(body: bytes, status: int) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


ROUTES = [
    web.post("/api/v1/enroll", enroll),
    web.post("/api/v1/readings", post_readings),
    web.post("/api/v1/agents/{agent_id}/keys", rotate_key),
    web.get("/healthz", healthz),
]
# On a listener of its own (metrics.listen), or on the main port with metrics.on_main_port.
METRICS_ROUTES = [web.get("/metrics", metrics)]
