"""The drift watch's reaction times with the real ansible-rulebook against the lab (seed scenario).

Each run starts the seed's lab, reloads the proxy (nothing stale), starts ansible-rulebook on
``badgateway.k8s.drift_watch`` with remediation on, replaces the app pod (``badlab step``) and
measures from the start of that replacement:

- to the drift watch's event (its log line; target: within 5 s, issue 14),
- to the reload (the new nginx workers' start, from the diagnosis' result),
- to the verified reload (the diagnosis' result written, after its proof),
- to the first 200 a user's request gets again from the proxy URL (polled every 50 ms).

Prints every run and the medians. Needs root, nginx, .venv-eda and Java 17 (make venv-eda,
make system-deps).

    python bench/eda.py [--runs 3]
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "lab")]

from badlab.fixture import start_lab, stop_lab  # noqa: E402
from eda_rulebook import Rulebook, reload_proxies, report  # noqa: E402

EVENT_TARGET_SECONDS = 5.0


def first_200(lab, stop: threading.Event, box: dict) -> None:
    """Poll the proxy URL until it answers 200; record when (Unix time)."""
    while not stop.is_set():
        if lab.http_status(timeout=2) == 200:
            box["ok_at"] = time.time()
            return
        time.sleep(0.05)


def one_run(directory: Path) -> dict[str, float]:
    lab = start_lab("stale_upstream", directory / "lab", owner_pid=os.getpid())
    rb = None
    try:
        reload_proxies(lab)
        (directory / "rb").mkdir()
        rb = Rulebook(
            lab, directory / "rb", drift_watch_remediate=True, diagnose_502_url=lab.proxy_url
        )
        rb.watching()
        stop, box = threading.Event(), {}
        step = lab.step("{replace_pod: {pod: open-webui-0}}")
        started = step["started"]
        poller = threading.Thread(target=first_200, args=(lab, stop, box), daemon=True)
        poller.start()
        diagnosis = report(rb, "diagnosis-nginx-proxy-0.json", 120)
        verified = (rb.reports / "diagnosis-nginx-proxy-0.json").stat().st_mtime
        poller.join(30)
        stop.set()
        (entry,) = diagnosis["remediation"]["replicas"]
        if not entry["verified"]:
            raise RuntimeError(f"the reload was not verified: {entry}")
        reload_at = datetime.datetime.fromisoformat(entry["last_reload"].replace("Z", "+00:00"))
        event_at = rb.events()[0][0]
        return {
            "event": event_at - started,
            "reload": reload_at.timestamp() - started,
            "verified": verified - started,
            "200 again": box.get("ok_at", float("nan")) - started,
        }
    finally:
        if rb is not None:
            rb.stop()
        stop_lab(directory / "lab")


def main() -> int:
    """Run the benchmark; exit 1 if a run fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="eda-bench-") as tmp:
        for n in range(1, args.runs + 1):
            directory = Path(tmp) / f"run{n}"
            directory.mkdir()
            try:
                figures = one_run(directory)
            except Exception as exc:  # noqa: BLE001 - a failed run is reported, then exit 1
                print(f"run {n}: failed: {exc}", file=sys.stderr)
                return 1
            runs.append(figures)
            print(f"run {n}: " + ", ".join(f"{k} {v:.2f} s" for k, v in figures.items()))
    medians = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    verdict = "within" if medians["event"] < EVENT_TARGET_SECONDS else "OVER"
    print(
        "drift watch, seed replacement to: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in medians.items())
        + f" (medians of {len(runs)} runs); the event {verdict} the {EVENT_TARGET_SECONDS:g} s target"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
