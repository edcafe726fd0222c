"""``aicity bench soak``: sustained ingest over HTTP at a set rate for minutes, on a real server: readings lost
(sent − stored, counted in the store's history) and the server process's memory over time (flat = no leak).

The load comes from client processes of their own, each pacing ``options=update`` batches of its own meters to
its share of the rate; the server (FastAPI on uvicorn, SQLite store) runs in this process, whose resident memory
is sampled every few seconds. The slope is fitted over the samples after the first fifth of the run (warm-up)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

METERS = 1000
CLIENTS = 2


def rss_mb() -> float:
    """This process's resident memory (Linux ``/proc``), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples after the first fifth, in MB per minute."""
    tail = samples[len(samples) // 5:]
    if len(tail) < 2:
        return 0.0
    n = len(tail)
    mx = sum(t for t, _ in tail) / n
    my = sum(m for _, m in tail) / n
    var = sum((t - mx) ** 2 for t, _ in tail)
    return 0.0 if var == 0 else 60.0 * sum((t - mx) * (m - my) for t, m in tail) / var


def _paced(part: int, url: str, token: str, seconds: float, rate: float, out: Any) -> None:
    """One client: batches of its own :data:`METERS` meters, paced to ``rate`` entity updates a second."""
    import httpx

    sent = batches = 0
    period = METERS / rate
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            due = started + batches * period
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            batch = [{"id": f"urn:ngsi-ld:Meter:{part}-{k}", "type": "Meter",
                      "power": {"type": "Property", "value": batches + k}} for k in range(METERS)]
            r = http.post("/ngsi-ld/v1/entityOperations/upsert", params={"options": "update"}, json=batch)
            if r.status_code not in (201, 204):
                out.put({"error": f"HTTP {r.status_code}: {r.text[:200]}"})
                return
            sent += METERS
            batches += 1
        out.put({"sent": sent, "duration": time.perf_counter() - started})


def run_soak(seconds: float = 600.0, rate_per_s: float = 20_000.0, sample_s: float = 5.0) -> dict[str, Any]:
    """Sustain ``rate_per_s`` entity updates a second over HTTP for ``seconds``; one JSON-ready record."""
    import multiprocessing

    from aicity.platform.bench import _count, served

    token = "s" * 24
    with served("aicity-soak-", token) as (_folder, store, _platform, server):
        ctx = multiprocessing.get_context("spawn")
        q = ctx.Queue()
        procs = [ctx.Process(target=_paced, args=(i, server.url, token, seconds, rate_per_s / CLIENTS, q),
                             daemon=True) for i in range(CLIENTS)]
        samples: list[tuple[float, float]] = []
        try:
            started = time.perf_counter()
            for p in procs:
                p.start()
            while any(p.is_alive() for p in procs) and time.perf_counter() - started < seconds + 120:
                samples.append((round(time.perf_counter() - started, 1), round(rss_mb(), 1)))
                time.sleep(sample_s)
            results = [q.get(timeout=60) for _ in procs]
            for r in results:
                if "error" in r:
                    raise RuntimeError(r["error"])
            sent = sum(int(r["sent"]) for r in results)
            duration = max(float(r["duration"]) for r in results)
            stored = sum(_count(store, f"urn:ngsi-ld:Meter:{c}-{k}", "power") for c in range(CLIENTS)
                         for k in range(METERS))
        finally:
            for p in procs:
                p.join(timeout=30)
    return {"measurement": "soak_http", "seconds": seconds, "target_rate_per_s": rate_per_s,
            "rate_per_s": round(sent / duration), "n": sent, "lost": sent - stored, "duration_s": round(duration, 1),
            "rss_mb": {"start": samples[0][1] if samples else None, "end": samples[-1][1] if samples else None,
                       "max": max((m for _, m in samples), default=None)},
            "rss_slope_mb_per_min": round(slope_mb_per_min(samples), 3), "rss_samples": samples,
            "note": f"{CLIENTS} client processes pacing options=update batches of {METERS:,} meters; the server "
                    "and its SQLite store in the measuring process, whose resident memory is sampled; lost = sent "
                    "− stored in history; slope fitted after the first fifth"}
