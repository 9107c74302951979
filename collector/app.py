"""The collector's aiohttp application: the factory, its resources, its background job.

`create_app` builds the app; the database, the nonce pruner and the daily replenishment run's
schedule are owned by `cleanup_ctx`:
opened (and migrated) when the app starts, closed when it stops. A test may hand in a
database it owns; the app then uses it and leaves it open. `create_metrics_app` builds the
small app that serves its /metrics on a listener of its own (metrics.listen).

Every answer says `Server: asr-collector` (no versions) and `X-Content-Type-Options: nosniff`;
over TLS, `Strict-Transport-Security` for a year (no includeSubDomains: the collector speaks
for its own host name only); the JSON APIs' answers `Cache-Control: no-store`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from aiohttp import web
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.base import BaseScheduler

from collector.appkeys import CLOCK, COLLECTOR, CONFIG, METRICS
from collector.config import CollectorConfig
from collector.daily_run import RunResult, schedule
from collector.fulfil import views as fulfil
from collector.fulfil.simulated_mode import SimulatedMode
from collector.metrics import Metrics
from collector.notify.outbox import Mailer, run_mailer
from collector.periodic import every
from collector.portal import api as portal_api
from collector.portal import pages as portal_pages
from collector.portal.auth import setup_portal_auth
from collector.service import Clock, Collector, Settings, utcnow
from collector.store.database import Database
from collector.store.migrate import migrate
from collector.views import METRICS_ROUTES, METRICS_SOURCE, METRICS_TOKEN, ROUTES

log = logging.getLogger(__name__)

SERVER = "asr-collector"
HSTS = "max-age=31536000"  # a year


def create_app(
    config: CollectorConfig, database: Database | None = None, clock: Clock = utcnow
) -> web.Application:
    """The collector app for this config; `database` is opened from the config when None."""
    app = web.Application()
    app[CONFIG] = config
    app[CLOCK] = clock
    app[METRICS] = Metrics()
    app.on_response_prepare.append(security_headers)
    app.cleanup_ctx.append(_collector(database))
    app.cleanup_ctx.append(_nonce_pruner)
    app.cleanup_ctx.append(_planner)
    app.cleanup_ctx.append(_mailer)
    app.cleanup_ctx.append(fulfil.inbound_ctx)  # the warehouse's updates: key, nonce pruning
    app.cleanup_ctx.append(fulfil.dispatcher_ctx)  # new shipments to the warehouse
    app[fulfil.IN_PROCESS] = {"simulated": SimulatedMode}  # the edge's choice of warehouse
    app.add_routes(ROUTES)
    app.add_routes(fulfil.ROUTES)
    if config.portal.enabled:  # R17: the portal's pages and its JSON API, behind login
        setup_portal_auth(app, config)
        portal_pages.setup_pages(app)
        app.add_routes(portal_api.ROUTES)
        app.add_routes(portal_pages.ROUTES)
    if config.metrics.on_main_port:  # else the public port answers 404 for /metrics
        token = config.metrics_token()
        assert token is not None  # the config requires token_file with on_main_port
        app[METRICS_TOKEN] = token
        app.add_routes(METRICS_ROUTES)
    return app


def create_metrics_app(source: web.Application) -> web.Application:
    """An app serving only GET /metrics of the collector app `source` (metrics.listen)."""
    app = web.Application()
    app[METRICS_SOURCE] = source
    token = source[CONFIG].metrics_token()
    if token is not None:
        app[METRICS_TOKEN] = token
    app.on_response_prepare.append(security_headers)
    app.add_routes(METRICS_ROUTES)
    return app


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The headers every answer carries (see the module's docstring)."""
    headers = response.headers
    headers["Server"] = SERVER
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.secure:  # TLS here; behind a TLS proxy (plain_http) the proxy adds it
        headers.setdefault("Strict-Transport-Security", HSTS)
    if request.path.startswith("/api/") or response.content_type == "application/json":
        headers.setdefault("Cache-Control", "no-store")


def _collector(
    database: Database | None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        db = database or Database.open(config.database_url(), config.database.pool_size)
        try:
            if database is None:
                revision = await migrate(db)
                log.info("database %s at schema revision %s", db.dialect, revision)
            app[COLLECTOR] = Collector(db, Settings.from_config(config), app[CLOCK])
            yield
        finally:
            if database is None:
                await db.close()

    return ctx


async def _planner(app: web.Application) -> AsyncIterator[None]:
    """The daily replenishment run, at `plan.at` (UTC), while the app runs."""
    config = app[CONFIG]
    if not config.plan.enabled:
        yield
        return
    metrics = app[METRICS]
    watch = PlanWatch(metrics, config.plan.budget_minutes * 60)
    scheduler = schedule(
        app[COLLECTOR].db,
        config.rules(),
        config.plan.at,
        app[CLOCK],
        watch.finished,
        on_progress=metrics.plan_progressed,
    )
    watch.attach(scheduler)
    yield
    watch.stop()
    scheduler.shutdown(wait=False)


class PlanWatch:
    """Each scheduled run's outcome to the metrics, and a word when a run is slower than its
    schedule: past `budget` seconds (said once when it passes, while the run still goes, and
    again with its duration when it ends), or still going when the next day's time comes.

    APScheduler runs one instance of the daily job at a time (max_instances=1): when the
    next time comes and the run is still going, it does not start a second one beside it
    nor queue one for later; that day's scheduled run is skipped (APScheduler's own line says
    "maximum number of running instances reached") and the next one is the day after.
    """

    def __init__(self, metrics: Metrics, budget: float) -> None:
        self.metrics = metrics
        self.budget = budget
        self.started_at: float | None = None  # time.monotonic() of the running run's start
        self._counted = False  # this run's overrun is counted already
        self._timer: asyncio.TimerHandle | None = None
        metrics.plan_budget.set(budget)

    def attach(self, scheduler: BaseScheduler) -> None:
        """Hear the scheduler start the daily job, and skip it while it runs still."""
        scheduler.add_listener(self._event, EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES)

    def _event(self, event: JobSubmissionEvent) -> None:
        if event.code == EVENT_JOB_MAX_INSTANCES:
            self.missed(event.scheduled_run_times)
        else:
            self.started()

    def started(self) -> None:
        """A scheduled run starts (the scheduler submitted the job)."""
        self.stop()
        self.started_at = time.monotonic()
        self._counted = False
        self._timer = asyncio.get_running_loop().call_later(self.budget, self._over_budget)

    def _over_budget(self) -> None:
        self._timer = None
        if self.started_at is None:
            return
        self._count()
        log.warning(
            "plan: the daily run has been going for %s, past its budget of %s"
            " ([plan] budget_minutes); it goes on",
            _minutes(time.monotonic() - self.started_at),
            _minutes(self.budget),
        )

    def _count(self) -> None:
        if not self._counted:
            self._counted = True
            self.metrics.plan_overruns.labels("budget").inc()

    def missed(self, times: list[datetime]) -> None:
        """The next scheduled time came while the run was still going: that run is skipped."""
        self.metrics.plan_overruns.labels("schedule").inc()
        going = (
            ""
            if self.started_at is None
            else f" (going for {_minutes(time.monotonic() - self.started_at)})"
        )
        log.warning(
            "plan: the daily run due at %s is skipped: the previous run is still going%s;"
            " the next one is at the following scheduled time (docs/operations.md, a run"
            " slower than its schedule)",
            ", ".join(t.isoformat() for t in times),
            going,
        )

    def finished(self, result: RunResult | None) -> None:
        """A scheduled run's end (None: it failed), to the metrics; slow, to the log too."""
        metrics = self.metrics
        if result is None:
            metrics.plan_runs.labels("failed").inc()
        elif not result.ran:
            metrics.plan_runs.labels("skipped").inc()
        else:
            seconds = result.read_seconds + result.decide_seconds + result.write_seconds
            metrics.plan_ran(seconds, result.counts)
        if self.started_at is None:
            return
        took = time.monotonic() - self.started_at
        self.stop()
        if result is None or not result.ran:
            return
        metrics.plan_last_seconds.set(took)
        if took > self.budget:
            self._count()
            log.warning(
                "plan: run %s took %s, over its budget of %s ([plan] budget_minutes)",
                result.run_id,
                _minutes(took),
                _minutes(self.budget),
            )

    def stop(self) -> None:
        """Forget the running run and its budget's timer (the app stops)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.started_at = None


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


async def _mailer(app: web.Application) -> AsyncIterator[None]:
    """The notifications outbox, sent over SMTP every `mail.interval_seconds` (if enabled)."""
    config = app[CONFIG]
    if not config.mail.enabled:
        yield
        return
    mailer = Mailer(app[COLLECTOR].db, config.mail)
    task = asyncio.create_task(run_mailer(mailer, app[CLOCK]), name="mailer")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _nonce_pruner(app: web.Application) -> AsyncIterator[None]:
    interval = app[CONFIG].ingest.nonce_prune_interval_seconds
    prune = app[COLLECTOR].prune_nonces
    async with every(
        interval, prune, "nonce-pruner", log, "pruning nonces failed", "pruned %d nonces"
    ):
        yield
