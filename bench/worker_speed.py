"""Does training slow down when the app is open? The same run started from the command line and from the Trainer
page (headless Chromium watching it live), alternated, images/s of each from its model card.

    python -m bench.worker_speed [--repeats 2] [--preset "Fast MNIST (the benchmark recipe)"] [--json PATH]

The run is a Trainer preset; the command line trains the command its card records, so both sides train the
same spec. Needs the preset's data set ($CNN_STUDIO_DATA), Playwright and Chromium (scripts/setup.sh dev).
Target (issue 17): the Trainer's run keeps at least 80 % of the command line's images/s.
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.app_speed import ARGS, CHROMIUM, ROOT, free_port, settle, start_server, wait_healthy
from core.engine.checkpoint import read_card
from core.classifier.presets import PRESETS
from core.runs import read_status


def images_per_s(card) -> float:
    training = card.training
    return training["steps"] * training["config"]["batch_size"] / training["train_seconds"]


def from_cli(name: str, out: Path) -> float:
    argv = shlex.split(PRESETS[name].command(out))[3:]  # drop "python -m core"
    subprocess.run([sys.executable, "-m", "core", *argv], cwd=ROOT, check=True, capture_output=True)
    return images_per_s(read_card(out))


def from_trainer(page, url: str, name: str, runs: Path) -> float:
    before = set(runs.iterdir())
    page.goto(url + "/trainer")
    page.get_by_label("Recipe", exact=True).click()
    page.get_by_role("option", name=name, exact=True).click()
    page.wait_for_function("(n) => { const f = document.querySelectorAll(\"input[aria-label='Epochs']\"); "
                           "return f.length === 1 && f[0].value === n; }", arg=str(PRESETS[name].config.epochs),
                           timeout=60_000)  # the old form has gone and the preset's is drawn: Start trains it
    settle(page)
    page.get_by_role("button", name="Start training").click()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # the page watches the run live all along; the run's files say when it ends
        new = set(runs.iterdir()) - before
        if new and read_status(next(iter(new))).get("state") in ("finished", "failed", "stopped"):
            return images_per_s(read_card(next(iter(new))))
        time.sleep(0.5)
    raise TimeoutError("the Trainer's run did not finish within 10 minutes")


def main(argv=None) -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="Fast MNIST (the benchmark recipe)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", default="bench/results/worker_speed.json")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cnn_studio_worker_speed_"))
    runs = work / "runs"
    runs.mkdir()
    port = free_port()
    server = start_server(port, str(runs))
    url = f"http://127.0.0.1:{port}"
    cli, trainer = [], []
    try:
        wait_healthy(url)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            for i in range(args.repeats):  # alternated, so both sides meet the same machine
                cli.append(from_cli(args.preset, work / f"cli{i}"))
                trainer.append(from_trainer(page, url, args.preset, runs))
                print(f"round {i + 1}: command line {cli[-1]:,.0f} img/s, Trainer {trainer[-1]:,.0f} img/s", flush=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    ratio = statistics.median(trainer) / statistics.median(cli)
    print(f"\n| started from | img/s (median of {args.repeats}) |\n|---|---:|\n| command line | "
          f"{statistics.median(cli):,.0f} |\n| Trainer page, tab open | {statistics.median(trainer):,.0f} |\n"
          f"\nTrainer / command line: {ratio:.0%} (target: at least 80 %)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"preset": args.preset, "cli": cli, "trainer": trainer, "ratio": ratio},
                                          indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
