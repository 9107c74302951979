"""The typed keys of what the aiohttp application holds."""

from __future__ import annotations

from aiohttp import web

from collector.config import CollectorConfig
from collector.metrics import Metrics
from collector.service import Clock, Collector

CONFIG = web.AppKey("config", CollectorConfig)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
METRICS = web.AppKey("metrics", Metrics)
COLLECTOR = web.AppKey("collector", Collector)
