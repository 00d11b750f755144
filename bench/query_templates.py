"""Benchmark: each health-query template's accuracy on a real Prometheus scraping series with known truth.

Run from the repository root: ``.venv/bin/python bench/query_templates.py``. A local exporter serves the
Istio, ingress-nginx, Contour/Envoy and application series for a canary (5% errors, latencies 20-400 ms)
and a baseline (1% errors, 5-80 ms); a real Prometheus scrapes it every second. For each template and
track it reports the measured error rate against the truth (relative error), and the measured p95
against the true p95 with both of their histogram buckets. Writes bench/results/query_templates.json.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "rollout"))

from metric_servers import App, prometheus, serve, wait_until  # noqa: E402
from test_metrics_templates import (  # noqa: E402
    BASELINE,
    CANARY,
    MS_BUCKETS,
    NAMESPACE,
    PORT,
    SECONDS_BUCKETS,
    SERVICE,
    Exposition,
    bucket_index,
    record,
)

from components.spec import Strategy  # noqa: E402
from infra.rollout.metrics.prometheus import PrometheusProvider  # noqa: E402
from infra.rollout.metrics.templates import TEMPLATES, DataPlane, TemplatedTraffic, track_ids  # noqa: E402
from infra.rollout.seams import Track  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "query_templates.json"


def main() -> int:
    expo = Exposition()
    for plane in DataPlane:
        for track, truth in ((Track.CANARY, CANARY), (Track.BASELINE, BASELINE)):
            record(expo, plane, track, truth, zero=True)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp, serve(App(routes={"/metrics": lambda _: (200, expo.text())})) as app, \
            prometheus(app.url.removeprefix("http://"), Path(tmp)) as url:
        provider = PrometheusProvider(url=url)

        def total(expr: str) -> float:
            series = provider.vector(expr)
            return series[0].value if series else -1.0

        wait_until(lambda: total("sum(istio_requests_total)") == 0.0, "zeroed counters scraped")
        for plane in DataPlane:
            for track, truth in ((Track.CANARY, CANARY), (Track.BASELINE, BASELINE)):
                record(expo, plane, track, truth, zero=False)
        wait_until(lambda: total("sum(istio_requests_total)") == CANARY.requests + BASELINE.requests, "traffic")
        points = int(total("count_over_time(up[5m])"))
        wait_until(lambda: total("count_over_time(up[5m])") >= points + 3, "three more scrapes", timeout=20)
        for plane in DataPlane:
            template = TEMPLATES[plane]
            traffic = TemplatedTraffic(provider, template, track_ids(SERVICE, NAMESPACE, PORT, Strategy.CANARY))
            bounds = [b * template.latency_unit_ms for b in
                      (SECONDS_BUCKETS if template.latency_unit_ms == 1000.0 else MS_BUCKETS)]
            for track, truth in ((Track.CANARY, CANARY), (Track.BASELINE, BASELINE)):
                rate = traffic.error_rate(track, 120.0) or 0.0
                p95 = traffic.counts(track, 120.0).p95_ms or 0.0
                rows.append({
                    "template": plane.value, "track": track.value,
                    "requests_metric": template.requests_metric, "latency_histogram": template.latency_histogram,
                    "true_error_rate": truth.error_rate, "measured_error_rate": round(rate, 6),
                    "relative_error": round(abs(rate - truth.error_rate) / truth.error_rate, 6),
                    "true_p95_ms": round(truth.p95_ms, 2), "measured_p95_ms": round(p95, 2),
                    "bucket_distance": abs(bucket_index(bounds, p95) - bucket_index(bounds, truth.p95_ms)),
                })
        provider.close()
    doc = {"load_average": os.getloadavg(), "rows": rows,
           "goal": {"relative_error_max": 0.01, "bucket_distance_max": 1},
           "met": all(float(str(r["relative_error"])) <= 0.01 and int(str(r["bucket_distance"])) <= 1 for r in rows)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
    for r in rows:
        print(f"{r['template']:8} {r['track']:8} error rate {r['measured_error_rate']:.5f} "
              f"(true {r['true_error_rate']:.5f}, rel err {r['relative_error']:.4%})  "
              f"p95 {r['measured_p95_ms']:8.2f} ms (true {r['true_p95_ms']:.2f}, {r['bucket_distance']} bucket off)")
    print(f"met: {doc['met']}  load: {doc['load_average']}")
    return 0 if doc["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
