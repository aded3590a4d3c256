"""/metrics in the Prometheus text format: requests by route and status, decisions, latency
histograms, webhook deliveries. One registry per app, so several apps in a process stay apart."""

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)


class ServiceMetrics:
    def __init__(self, webhooks=None, mqtt=None):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "facegate_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "facegate_http_request_seconds",
            "Time to answer an HTTP request, by route template",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "facegate_decisions",
            "Door decisions, by decision",
            ["decision"],
            registry=self.registry,
        )
        self.decision_seconds = Histogram(
            "facegate_decision_seconds",
            "Time the recognizer took for one door decision",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "facegate_decision_batch_size",
            "Door queries decided together in one batched model pass",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32),
            registry=self.registry,
        )
        self.overloaded = Counter(
            "facegate_overloaded",
            "Door queries refused with 503 because the queue was full",
            registry=self.registry,
        )
        self.timed_out = Counter(
            "facegate_decision_timeouts",
            "Door queries answered 503 because they were not decided in time",
            registry=self.registry,
        )
        self._queued = Gauge(
            "facegate_queued_queries",
            "Door queries waiting for the models now",
            registry=self.registry,
        )
        self._unavailable = Gauge(
            "facegate_unavailable_models",
            "Candidates scored without their personal discriminator (file missing or damaged) "
            "since the start",
            registry=self.registry,
        )
        if webhooks is not None:
            delivered = Gauge(
                "facegate_webhooks_delivered",
                "Webhook deliveries that succeeded since the start",
                registry=self.registry,
            )
            delivered.set_function(lambda: webhooks.delivered)
            failed = Gauge(
                "facegate_webhooks_failed",
                "Webhook events given up on since the start",
                registry=self.registry,
            )
            failed.set_function(lambda: webhooks.failed)
            pending = Gauge(
                "facegate_webhooks_pending",
                "Webhook deliveries waiting in the outbox",
                registry=self.registry,
            )
            pending.set_function(lambda: webhooks.pending)
        if mqtt is not None and mqtt.enabled:
            for name, help_text in (
                ("published", "Events the MQTT broker acknowledged since the start"),
                ("dropped", "Events dropped because the MQTT queue was full"),
                ("queued", "Events waiting for the MQTT broker"),
                ("connected", "1 while connected to the MQTT broker"),
            ):
                gauge = Gauge(f"facegate_mqtt_{name}", help_text, registry=self.registry)
                gauge.set_function(lambda name=name: float(getattr(mqtt, name)))

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.request_seconds.labels(route).observe(seconds)

    def decision(self, decision: str, seconds: float) -> None:
        self.decisions.labels(decision).inc()
        self.decision_seconds.observe(seconds)

    def batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)

    def watch_queue(self, depth) -> None:
        self._queued.set_function(depth)

    def watch_unavailable(self, count) -> None:
        self._unavailable.set_function(count)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
