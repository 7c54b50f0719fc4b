"""The app as a visitor meets it, in headless Chromium: launch -> Home, each page's first open, interaction
latency (stroke -> prediction on Draw, a latent slider -> the decoded picture, a composer position slider ->
the answer, the caption word slider -> the attention map), the server's RSS after the tour, and its CPU
while idle with a tab open.

    python -m bench.app_speed [--repeats 12] [--idle 30] [--json bench/results/app_speed.json]

Starts its own server (the project's .streamlit/config.toml: no file watching, no usage statistics) on a
free port, with an empty runs folder and the data directory of the environment (none: the shipped samples).
Every wait is on a condition in the page (a value that changes, a spinner that goes), never a fixed sleep.
Prints tables and writes JSON. Needs Playwright and Chromium (scripts/setup.sh dev).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]
PAGES = {  # path -> text that shows the page has drawn its result
    "": "Shipped models", "trainer": "No runs yet", "runs": "No runs yet", "draw": "Prediction",
    "composer": "Left digit", "strings": "CRNN reads", "captions": "Attention for every word", "inside": "Prediction",
    "latent": "Map point", "sweeps": "No sweeps yet",
}
IDLE = "() => !document.querySelector(\"[data-testid='stStatusWidget']\")?.innerText?.includes('Running')"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, runs: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless",
                             "true", "--server.port", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "CNN_STUDIO_RUNS": runs})


def wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the server did not answer within 60 s")


def settle(page, timeout: int = 120_000) -> None:
    """Wait until Streamlit has finished the current run (no 'Running' status)."""
    page.wait_for_function(IDLE, timeout=timeout)


def proc_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds used so far, RSS in MB) of a process and its children, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                    text=True).stdout.split()]
    cpu, rss = 0.0, 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick
            rss += int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, IndexError, ValueError):
            continue
    return cpu, rss


def metrics_text(page) -> str:
    return page.evaluate("() => [...document.querySelectorAll(\"[data-testid='stMetric']\")].map(m => m.innerText).join('|')")


def image_sources(page) -> list[str]:
    return page.evaluate("() => [...document.querySelectorAll(\"[data-testid='stImage'] img\")].map(i => i.src)")


def timed_change(page, act, probe, timeout: int = 30_000, prepare=None) -> float:
    """Seconds from `act()` to the moment `probe()` returns something new (`prepare()` runs before the clock)."""
    before = probe()
    if prepare is not None:
        prepare()
    started = time.perf_counter()
    act()
    deadline = started + timeout / 1000
    while time.perf_counter() < deadline:
        if probe() != before:
            return time.perf_counter() - started
        page.wait_for_timeout(5)  # a polling interval, not a fixed wait: the loop ends on the change
    raise TimeoutError("the page did not change")


def tour(url: str, server: subprocess.Popen, repeats: int, idle_seconds: int) -> dict:
    from playwright.sync_api import sync_playwright

    out = {"pages": {}, "latency": {}}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        for path, marker in PAGES.items():
            started = time.perf_counter()
            page.goto(f"{url}/{path}")
            page.get_by_text(marker, exact=False).first.wait_for(timeout=120_000)
            settle(page)
            out["pages"][path or "home"] = time.perf_counter() - started
        out["latency"]["draw stroke"] = draw_latency(page, url, repeats)
        out["latency"]["draw pointer move -> bars, in the browser"] = live_latency(page, url)
        out["latency"]["latent slider"] = slider_latency(page, f"{url}/latent", "Direction 1", repeats,
                                                         lambda: image_sources(page), tab="Walk")
        out["latency"]["composer slider"] = slider_latency(page, f"{url}/composer", "Position", repeats,
                                                           lambda: metrics_text(page))
        out["latency"]["caption word slider"] = slider_latency(page, f"{url}/captions", "Word", repeats,
                                                               lambda: image_sources(page))
        out["rss_mb_after_tour"] = proc_stats(server.pid)[1]
        page.goto(url)
        page.get_by_text("Shipped models").first.wait_for(timeout=60_000)
        settle(page)
        cpu_before, wall_before = proc_stats(server.pid)[0], time.perf_counter()
        page.wait_for_timeout(idle_seconds * 1000)  # the measurement itself: a tab open, nobody interacting
        out["idle_cpu_percent"] = 100 * (proc_stats(server.pid)[0] - cpu_before) / (time.perf_counter() - wall_before)
        browser.close()
    return out


def draw_latency(page, url: str, repeats: int) -> list[float]:
    page.goto(f"{url}/draw")
    page.get_by_text("Prediction").first.wait_for(timeout=60_000)
    settle(page)
    canvas = page.locator("canvas.sketchpad").first
    canvas.wait_for(timeout=30_000)  # the pad mounts once its script has loaded
    box = canvas.bounding_box()
    rng = np.random.default_rng(0)
    times = []

    def pen_down_and_draw():  # the stroke itself is the user's time; the clock starts when the pen lifts
        points = rng.uniform(40, 240, (3, 2))
        page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
        page.mouse.down()
        for x, y in points[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=6)
    probe = lambda: metrics_text(page)  # noqa: E731
    for _ in range(repeats):
        try:
            times.append(timed_change(page, page.mouse.up, probe, timeout=10_000, prepare=pen_down_and_draw))
        except TimeoutError:
            continue  # a stroke that did not change the prediction's value or confidence: not a measurement
        settle(page)
    return times


def live_latency(page, url: str, moves: int = 200) -> list[float]:
    """The Draw page's in-browser prediction (ONNX Runtime Web): for `moves` pointer moves of one long stroke, the
    time from each move's event to the bars showing a prediction that includes it (the pad's own clock); [] when
    the runtime is not installed."""
    page.goto(f"{url}/draw")
    page.get_by_text("Prediction").first.wait_for(timeout=60_000)
    settle(page)
    page.wait_for_function("() => window.__cnnLive && (window.__cnnLive.ready || window.__cnnLive.error)", timeout=60_000)
    if not page.evaluate("() => window.__cnnLive.ready"):
        return []
    box = page.locator("canvas.sketchpad").first.bounding_box()
    path = [(140 + 100 * np.sin(i / 9), 40 + i) for i in range(moves)]  # a wavy stroke down the pad
    page.evaluate("() => { window.__cnnLive.times = []; }")
    page.mouse.move(box["x"] + 140, box["y"] + 30)
    page.mouse.down()
    for x, y in path:
        page.mouse.move(box["x"] + x, box["y"] + y)
    page.wait_for_function(f"() => window.__cnnLive.times.length >= 1", timeout=10_000)
    times = page.evaluate("() => window.__cnnLive.times.slice()")
    page.mouse.up()
    settle(page)
    return [t / 1000 for t in times]


def slider_latency(page, url: str, label: str, repeats: int, probe, tab: str | None = None) -> list[float]:
    page.goto(url)
    settle(page)
    if tab:
        page.get_by_role("tab", name=tab).click()
    slider = page.locator("[data-testid='stSlider']", has_text=label).first.get_by_role("slider")
    slider.wait_for(timeout=60_000)
    times = []
    for i in range(repeats):
        slider.focus()
        times.append(timed_change(page, lambda: page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft"),
                                  probe))
        settle(page)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--idle", type=int, default=30, help="seconds of idle CPU measurement")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "app_speed.json"))
    args = parser.parse_args(argv)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(port, tempfile.mkdtemp(prefix="cnn_studio_bench_runs_"))
    try:
        wait_healthy(url)
        result = tour(url, server, args.repeats, args.idle)
    finally:
        server.terminate()
        server.wait(timeout=20)
    # launch -> Home on a second, fresh server: the time a visitor waits after `cnn-studio app`
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(port, tempfile.mkdtemp(prefix="cnn_studio_bench_runs_"))
    launched = time.perf_counter()
    try:
        from playwright.sync_api import sync_playwright

        wait_healthy(url)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page()
            page.goto(url)
            page.get_by_text("Shipped models").first.wait_for(timeout=60_000)
            result["launch_to_home_s"] = time.perf_counter() - launched
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(f"launch -> Home rendered: {result['launch_to_home_s']:.2f} s")
    print("\n| page | first open (s) |\n|---|---:|")
    for name, seconds in result["pages"].items():
        print(f"| {name} | {seconds:.2f} |")
    print("\n| interaction | n | p50 (ms) | p95 (ms) | max (ms) |\n|---|---:|---:|---:|---:|")
    summary = {}
    for name, times in result["latency"].items():
        ms = np.array(times) * 1000
        summary[name] = {"n": len(ms), "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
                         "p95_ms": float(np.percentile(ms, 95)) if len(ms) else None}
        if len(ms):
            print(f"| {name} | {len(ms)} | {summary[name]['p50_ms']:.0f} | {summary[name]['p95_ms']:.0f} | {ms.max():.0f} |")
    print(f"\nserver RSS after the tour: {result['rss_mb_after_tour']:.0f} MB")
    print(f"server CPU while idle with a tab open ({args.idle} s): {result['idle_cpu_percent']:.2f} %")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({**result, "latency_summary": summary, "cpus": os.cpu_count()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
