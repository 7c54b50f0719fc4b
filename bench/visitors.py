"""Five visitors at once while a run trains: each opens a different page at the same moment, then moves one of
its controls a few times; prints how long each page took to open and to answer, the training run's images/s
before and during the visit, and the server's RSS.

    python -m bench.visitors [--moves 5] [--preset "Fast MNIST (the benchmark recipe)"] [--json PATH]

Starts its own server (no file watching, no usage statistics) and a training run of `--preset` in the server's
runs folder (as the Trainer does); the five visitors are five Chromium instances in five threads (Playwright's
sync API wants one instance per thread). Targets (issue 19): every page open within 10 s, every answer within
1.5 s, server RSS under 1.5 GB. Every wait is on a condition in the page.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.app_speed import (ARGS, CHROMIUM, free_port, image_sources, metrics_text, proc_stats, settle, start_server,
                             timed_change, wait_healthy)

# page -> (text that shows it has drawn its result, the control a visitor moves, what the answer changes, tab)
VISITS = {
    "draw": ("Prediction", "button:Clear|Example", "metrics", None),
    "inside": ("Prediction", "slider:Square size", "images", "Occlusion"),
    "latent": ("Map point", "slider:Direction 1", "images", "Walk"),
    "composer": ("Left digit", "slider:Position", "metrics", None),
    "captions": ("Attention for every word", "slider:Word", "images", None),
}


def visit(url: str, path: str, moves: int, start: threading.Barrier, out: dict) -> None:
    from playwright.sync_api import sync_playwright

    marker, control, answer, tab = VISITS[path]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        start.wait()  # the five visitors arrive together
        began = time.perf_counter()
        page.goto(f"{url}/{path}")
        page.get_by_text(marker, exact=False).first.wait_for(timeout=300_000)
        settle(page, timeout=300_000)
        out["open_s"] = time.perf_counter() - began
        if tab:
            page.get_by_role("tab", name=tab).click()
        probe = (lambda: metrics_text(page)) if answer == "metrics" else (lambda: image_sources(page))
        kind, name = control.split(":")
        answers = []
        for i in range(moves):
            if kind == "button":
                label = name.split("|")[i % 2]
                act = lambda: page.get_by_role("button", name=label, exact=True).click()  # noqa: E731
            else:
                slider = page.locator("[data-testid='stSlider']", has_text=name).first.get_by_role("slider")
                slider.focus()
                act = lambda: page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")  # noqa: E731
            answers.append(timed_change(page, act, probe, timeout=120_000))
            settle(page, timeout=120_000)
        out["answers_s"] = answers
        browser.close()


def images_per_s(run_dir: Path, since: float) -> float | None:
    """The run's mean images/s over its step events after `since` (training seconds)."""
    rates = []
    events = run_dir / "events.jsonl"
    for line in events.read_text().splitlines() if events.exists() else []:
        event = json.loads(line)
        if event.get("kind") == "step" and event.get("train_seconds", 0) > since:
            rates.append(event["images_per_s"])
    return statistics.median(rates) if rates else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=5)
    parser.add_argument("--preset", default="Fast MNIST (the benchmark recipe)")
    parser.add_argument("--json", default="bench/results/visitors.json")
    args = parser.parse_args(argv)
    runs = Path(tempfile.mkdtemp(prefix="cnn_studio_visitors_"))
    os.environ["CNN_STUDIO_RUNS"] = str(runs)
    from core.trainer import runs as run_store
    from core.trainer.presets import preset

    port = free_port()
    server = start_server(port, str(runs))
    url = f"http://127.0.0.1:{port}"
    results = {path: {} for path in VISITS}
    try:
        wait_healthy(url)
        spec = preset(args.preset)
        spec.config.epochs = 50  # longer than the visit: the run trains all along
        run_dir = run_store.start_run(spec, root=runs)
        while run_store.read_status(run_dir).get("state") != "running" or images_per_s(run_dir, 0) is None:
            time.sleep(0.2)  # polling the run's status file until it trains
        time.sleep(5)  # five seconds of training alone: the rate before the visitors
        alone_until = max(json.loads(line).get("train_seconds", 0)
                          for line in (run_dir / "events.jsonl").read_text().splitlines())
        start = threading.Barrier(len(VISITS))
        threads = [threading.Thread(target=visit, args=(url, path, args.moves, start, results[path]))
                   for path in VISITS]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        during = images_per_s(run_dir, alone_until)
        alone = statistics.median([json.loads(line)["images_per_s"] for line in
                                   (run_dir / "events.jsonl").read_text().splitlines()
                                   if json.loads(line).get("kind") == "step"
                                   and json.loads(line)["train_seconds"] <= alone_until] or [0])
        rss = proc_stats(server.pid)[1]
        run_store.request_stop(run_dir)
        run_store.wait(run_dir, timeout=120)
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"\nFive visitors at once while `{args.preset}` trains ({os.cpu_count()} cores)\n")
    print("| page | open s | answers p50 s | answers max s |\n|---|---:|---:|---:|")
    for path, r in results.items():
        answers = r.get("answers_s") or [float("nan")]
        print(f"| {path} | {r.get('open_s', float('nan')):.1f} | {statistics.median(answers):.2f} | "
              f"{max(answers):.2f} |")
    print(f"\ntraining: {alone:,.0f} img/s alone, {during or 0:,.0f} img/s during the visit; server RSS {rss:,.0f} MB")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"preset": args.preset, "pages": results, "train_images_per_s_alone": alone,
                                           "train_images_per_s_during": during, "server_rss_mb": rss}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
