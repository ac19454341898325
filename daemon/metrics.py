"""/metrics: the service's state in Prometheus text format, gathered at scrape time from the
stages that own it (intake counters, core levels, the alert service's tallies of its tables)."""
from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from .intake import LATENCY_BUCKETS
from .model.levels import Level

if TYPE_CHECKING:
    from .service import Service


class ServiceCollector:
    def __init__(self, service: "Service", http_counts: Mapping[str, int] | None = None):
        self.service = service
        self.http_counts = http_counts or {}

    def collect(self):
        svc = self.service
        s = svc.intake.stats
        m = CounterMetricFamily("geowarn_readings", "Readings committed to the journal", labels=["kind"])
        for kind, n in sorted(s.readings_by_kind.items()):
            m.add_metric([kind], n)
        yield m
        m = CounterMetricFamily("geowarn_quarantine", "Frames and readings quarantined", labels=["reason"])
        for reason, n in sorted(s.quarantine.items()):
            m.add_metric([reason], n)
        yield m
        now = time.time()
        m = GaugeMetricFamily("geowarn_site_last_seen_age_seconds", "Age of the newest reading per site",
                              labels=["site"])
        for site, ts in sorted(s.last_seen_by_site.items()):
            m.add_metric([site], now - ts)
        yield m
        m = GaugeMetricFamily("geowarn_site_level", "Site warning level: 0 normal, 1 blue … 4 red", labels=["site"])
        for site, level in sorted(svc.core.site_levels().items()):
            m.add_metric([site], Level.of(level))
        yield m
        buckets, acc = [], 0
        for bound, n in zip((*LATENCY_BUCKETS, float("inf")), s.latency_counts):
            acc += n
            buckets.append((str(bound) if bound != float("inf") else "+Inf", acc))
        yield HistogramMetricFamily("geowarn_intake_latency_seconds", "Message receipt to journal commit",
                                    buckets=buckets, sum_value=s.latency_sum)
        yield CounterMetricFamily("geowarn_not_my_shard", "Items of other shards' sites, dropped",
                                  value=s.not_my_shard)
        yield GaugeMetricFamily("geowarn_shard_sites", "Sites this instance owns (its shard)",
                                value=len(svc.config.registry.sites))
        yield GaugeMetricFamily("geowarn_broker_connected", "1 while connected to the broker",
                                value=1 if s.connected else 0)
        yield GaugeMetricFamily("geowarn_intake_queued", "Messages received, not yet committed", value=svc.intake.queued)
        m = CounterMetricFamily("geowarn_http_refused", "HTTP requests refused by the gate (no valid token, "
                                "throttled past an address's budget, oversize body) or failed (errors)", labels=["what"])
        for what in ("refused", "throttled", "oversize", "errors"):
            m.add_metric([what], self.http_counts.get(what, 0))
        yield m
        yield CounterMetricFamily("geowarn_weather_warnings_refused", "Weather warnings refused on the MQTT topic",
                                  value=svc.weather_mqtt.rejected)
        m = GaugeMetricFamily("geowarn_failing_jobs", "Periodic jobs failing in a row past their limit")
        m.add_metric([], len(svc.jobs.failing()))
        yield m
        yield from self._journal_tables()
        if svc.exporter is not None:
            m = GaugeMetricFamily("geowarn_export_backlog_rows", "Journal rows not yet in InfluxDB", labels=["stream"])
            for stream, n in sorted(svc.exporter.backlog().items()):
                m.add_metric([stream], n)
            yield m

    def _journal_tables(self):
        open_alerts, outbox, results = self.service.alerts.status.tallies()
        m = GaugeMetricFamily("geowarn_open_alerts", "Open alerts", labels=["kind", "level"])
        for kind, level, n in open_alerts:
            m.add_metric([kind, level], n)
        yield m
        m = GaugeMetricFamily("geowarn_outbox", "Outbox rows by status (pending, failed: the depth)",
                              labels=["status"])
        for status, n in outbox.items():
            m.add_metric([status], n)
        yield m
        m = CounterMetricFamily("geowarn_notifications", "Delivery attempts by channel and result",
                                labels=["channel", "result"])
        for channel, ok, n in results:
            m.add_metric([channel, "ok" if ok else "failed"], n)
        yield m


def render(service: "Service", http_counts: Mapping[str, int] | None = None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(service, http_counts))
    return generate_latest(registry)
