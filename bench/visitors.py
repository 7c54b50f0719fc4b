"""Five visitors at once while a run trains: each opens one page (Draw, Inside, Latent space, Composer, Caption
generator) at the same moment in its own browser session, then works it (a stroke, the occlusion square, a
latent direction, a digit's position, the caption's word), while a Fast MNIST run started the Trainer's way
trains in the app's worker process.

    python -m bench.visitors [--repeats 3] [--json bench/results/visitors.json]

Prints per visitor the time to its page and its interaction latencies, the run's images/s before and while
the visitors are in, and the server's RSS after every page of a full tour and the run. Targets (issue 19):
every page within 10 s, every interaction within 1.5 s, RSS under 1.5 GB. Needs MNIST ($CNN_STUDIO_DATA),
Playwright and Chromium (scripts/setup.sh dev). One Chromium, one browser context (session) per visitor.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.app_speed import ARGS, CHROMIUM, IDLE, PAGES, ROOT, free_port, proc_stats, start_server, wait_healthy
from core.classifier.presets import PRESETS
from core.runs import read_events, read_status, request_stop, start_run

RUN = "Fast MNIST (the benchmark recipe)"
METRICS = "() => [...document.querySelectorAll(\"[data-testid='stMetric']\")].map(m => m.innerText).join('|')"
IMAGES = "() => [...document.querySelectorAll(\"[data-testid='stImage'] img\")].map(i => i.src).join('|')"


async def changed(page, act, probe: str, timeout: float = 60.0) -> float:
    """Seconds from `act()` to the moment the page's `probe` (a JS expression) reads something new."""
    before = await page.evaluate(probe)
    started = time.perf_counter()
    await act()
    await page.wait_for_function(f"(b) => ({probe})() !== b", arg=before, timeout=timeout * 1000, polling=10)
    return time.perf_counter() - started


async def slider(page, label: str):
    """One step right on the slider labelled `label`: each interaction asks for a state not seen before."""
    handle = page.locator("[data-testid='stSlider']", has_text=label).first.get_by_role("slider")
    await handle.press("ArrowRight")  # focuses the handle, then the key


async def stroke(page, i: int):
    pad = page.locator("canvas.sketchpad").first
    await pad.wait_for(timeout=30_000)  # the pad mounts once its script has loaded
    box = await pad.bounding_box()
    points = [(60 + 30 * i, 60), (140, 200 - 20 * i), (220 - 25 * i, 90)]
    await page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    await page.mouse.down()
    for x, y in points[1:]:
        await page.mouse.move(box["x"] + x, box["y"] + y, steps=6)


VISITORS = {  # page -> (tab to open first or None, the interaction, what it changes)
    "draw": (None, "stroke", METRICS),
    "inside": ("Occlusion", "Square size", IMAGES),
    "latent": ("Walk", "Direction 1", IMAGES),
    "composer": (None, "Position", METRICS),
    "captions": (None, "Word", IMAGES),
}


async def failed(page, path: str, what: str):
    shot = Path(tempfile.gettempdir()) / f"visitors_{path}.png"
    await page.screenshot(path=str(shot), full_page=True)
    raise RuntimeError(f"{path}: {what}; what the page showed: {shot}") from None


async def visit(browser, url: str, path: str, repeats: int, start: asyncio.Event) -> dict:
    context = await browser.new_context(viewport={"width": 1400, "height": 1100})
    page = await context.new_page()
    tab, action, probe = VISITORS[path]
    await start.wait()
    began = time.perf_counter()
    try:
        await page.goto(f"{url}/{path}", wait_until="commit", timeout=120_000)
        await page.get_by_text(PAGES[path], exact=False).first.wait_for(timeout=120_000)
        await page.wait_for_function(IDLE, timeout=120_000)
    except Exception:  # noqa: BLE001 - what the visitor saw instead is kept, then the run fails
        await failed(page, path, "did not open within 2 minutes")
    opened = time.perf_counter() - began
    print(f"{path}: opened in {opened:.1f} s", flush=True)
    if tab:
        await page.get_by_role("tab", name=tab).click()
        await page.wait_for_function(IDLE, timeout=120_000)
    latencies = []
    for i in range(repeats):
        try:
            if action == "stroke":  # the pen goes down and draws first; the clock starts when it lifts
                await stroke(page, i)
                latencies.append(await changed(page, page.mouse.up, probe))
            else:
                latencies.append(await changed(page, lambda: slider(page, action), probe))
            await page.wait_for_function(IDLE, timeout=120_000)
        except Exception:  # noqa: BLE001 - what the visitor saw instead is kept, then the run fails
            await failed(page, path, f"{action} #{i + 1} changed nothing within a minute")
    print(f"{path}: {action} answered in {', '.join(f'{t:.2f}' for t in latencies)} s", flush=True)
    await context.close()
    return {"page": path, "open_s": opened, "interactions_s": latencies}


def throughput(run_dir: Path) -> tuple[int, float]:
    """(steps, training seconds) the run has done so far."""
    steps = read_events(run_dir).get("step", [])
    return (steps[-1]["step"], steps[-1]["train_seconds"]) if steps else (0, 0.0)


def rate(a: tuple[int, float], b: tuple[int, float], batch: int) -> float | None:
    return (b[0] - a[0]) * batch / (b[1] - a[1]) if b[1] > a[1] else None


async def crowd(url: str, repeats: int) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        start = asyncio.Event()
        tasks = [asyncio.create_task(visit(browser, url, path, repeats, start)) for path in VISITORS]
        await asyncio.sleep(0)
        start.set()  # all five arrive together
        results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=900)  # a stuck visitor fails the run
        await browser.close()
    return results


async def tour(url: str) -> None:
    """One visitor opens every page in turn (what the server keeps after a full tour)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await browser.new_page()
        for path, marker in {**PAGES, "trainer": "Train a model", "runs": "Compare runs"}.items():  # a run exists
            await page.goto(f"{url}/{path}")
            await page.get_by_text(marker, exact=False).first.wait_for(timeout=300_000)
            await page.wait_for_function(IDLE, timeout=300_000)
        await browser.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="interactions per visitor")
    parser.add_argument("--epochs", type=int, default=40, help="the run's epochs: enough to outlast the visitors")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "visitors.json"))
    args = parser.parse_args(argv)
    runs = Path(tempfile.mkdtemp(prefix="cnn_studio_visitors_"))
    os.environ["CNN_STUDIO_RUNS"] = str(runs)  # the run below is started the way the Trainer starts one
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(port, str(runs))
    spec = copy.deepcopy(PRESETS[RUN])
    spec = dataclasses.replace(spec, config=dataclasses.replace(spec.config, epochs=args.epochs))
    run_dir = None
    try:
        wait_healthy(url)
        run_dir = start_run(spec)
        while not read_events(run_dir).get("step"):  # the data is prepared: training has begun
            if read_status(run_dir).get("state") in ("failed", "stopped"):
                raise RuntimeError(f"the run did not start: {read_status(run_dir).get('message')}")
            time.sleep(0.2)
        before = throughput(run_dir)
        time.sleep(5)  # the run alone, for its images/s before the visitors come
        alone = throughput(run_dir)
        began = time.perf_counter()
        visitors = asyncio.run(crowd(url, args.repeats))
        crowd_s = time.perf_counter() - began
        during = throughput(run_dir)
        still = read_status(run_dir).get("state") == "running"
        asyncio.run(tour(url))
        rss = proc_stats(server.pid)[1]
    finally:
        if run_dir is not None:
            request_stop(run_dir)
        server.terminate()
        server.wait(timeout=20)
    batch = spec.config.batch_size
    print("| visitor | page opened (s) | interactions (s) |\n|---|---:|---|")
    for v in visitors:
        print(f"| {v['page']} | {v['open_s']:.1f} | {', '.join(f'{t:.2f}' for t in v['interactions_s'])} |")
    opens = [v["open_s"] for v in visitors]
    clicks = [t for v in visitors for t in v["interactions_s"]]
    summary = {"open_max_s": max(opens), "interaction_max_s": max(clicks),
               "interaction_median_s": statistics.median(clicks),
               "images_per_s_alone": rate(before, alone, batch), "images_per_s_with_visitors": rate(alone, during, batch),
               "run_trained_throughout": still, "crowd_seconds": crowd_s, "rss_mb_after_tour_and_run": rss}
    print(f"\nslowest page {summary['open_max_s']:.1f} s (target 10), slowest interaction "
          f"{summary['interaction_max_s']:.2f} s (target 1.5), median interaction {summary['interaction_median_s']:.2f} s")
    print(f"training: {summary['images_per_s_alone'] or 0:,.0f} img/s alone, "
          f"{summary['images_per_s_with_visitors'] or 0:,.0f} img/s with the visitors "
          f"({'still training' if still else 'the run ended before the visitors left'})")
    print(f"server RSS after the visitors, a full tour and the run: {rss:,.0f} MB (target < 1,536)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"visitors": visitors, "summary": summary, "cpus": os.cpu_count()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
