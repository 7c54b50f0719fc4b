"""Multi-MNIST end to end: training the multi-task pair CNN and the CRNN, the lambda sweep, evaluation.

CLI:
    python -m core.composer.multidigit train-pair --out checkpoints/mnist_pair_cnn      # multi-task CNN
    python -m core.composer.multidigit train-crnn --out checkpoints/mnist_crnn          # CRNN + CTC
    python -m core.composer.multidigit sweep --into checkpoints/mnist_pair_cnn           # what lambda does
    python -m core.composer.multidigit evaluate checkpoints/mnist_pair_cnn checkpoints/mnist_crnn

Training composes a fresh set of images from MNIST's first 55,000 train digits every epoch and
validates on images composed from the last 5,000; evaluation composes fresh images from the test
digits with a fixed seed, using the generator settings stored in the model card.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable

import numpy as np
import torch

from core.engine.checkpoint import (CheckpointError, DatasetInfo, ModelCard, invoking_command, load_checkpoint,
                             save_checkpoint, spec_of, update_card)
from core.composer.ctc import beam_decode, greedy_batch, to_digits
from core.data import DataError, load_dataset
from core.data.multimnist import compose_pairs, compose_strings
from core.engine import ComposedLoader, EpochEvent, TensorLoader, TrainConfig, fit
from core.engine.predict import predict_logits
from core.models import build_model, count_parameters
from core.models.multidigit import split_pair_output
from core.composer.tasks import CTCTask, PairTask
from core.engine.tasks import normalize

TRAIN_DIGITS = 55_000  # MNIST train digits 0..54,999 compose training images, the rest validation images
TEST_SEED = 2026


def pair_maker(images, labels, generator: dict) -> Callable[[int, int], tuple]:
    def make(n: int, seed: int) -> tuple:
        p = compose_pairs(images, labels, n, seed=seed, **generator)
        return p.images, p.classes, p.x
    return make


def string_maker(images, labels, generator: dict) -> Callable[[int, int], tuple]:
    def make(n: int, seed: int) -> tuple:
        s = compose_strings(images, labels, n, seed=seed, **generator)
        return s.images, s.targets, s.lengths
    return make


# --- evaluation -----------------------------------------------------------------------------------------

def model_outputs(model, card: dict, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The model's raw outputs for uint8 images, normalised as its card says (see `predict_logits`)."""
    return predict_logits(model, images, card.dataset.mean, card.dataset.std, batch_size)


def evaluate_pairs(model, card: dict, digits, labels, n: int = 10_000, seed: int = TEST_SEED) -> dict:
    """Both-digits accuracy, per-digit accuracy and x-centre MAE (pixels) on freshly composed images."""
    p = compose_pairs(digits, labels, n, seed=seed, **card.generator)
    logits, x = split_pair_output(model_outputs(model, card, p.images))
    right = logits.argmax(2) == p.classes
    err = (x - p.x).abs()
    return {"both_digits_accuracy": right.all(1).float().mean().item(),
            "digit_accuracy": right.float().mean().item(), "x_mae_px": err.mean().item(),
            "x_within_2px": (err < 2).float().mean().item(), "n": n, "seed": seed}


def evaluate_strings(model, card: dict, digits, labels, n: int = 10_000, seed: int = TEST_SEED,
                     beam_n: int = 2000, beam_width: int = 8) -> dict:
    """Exact match of greedy decoding on 4-5 digit strings (the target), on each length 1..6, and of beam
    search on the first `beam_n` 4-5 digit strings."""
    gen = dict(card.generator)
    out = {}
    for name, lo, hi in [("4-5", 4, 5)] + [(str(k), k, k) for k in range(1, gen.get("max_len", 6) + 1)]:
        s = compose_strings(digits, labels, n if name == "4-5" else n // 5, seed=seed + lo * 10 + hi,
                            **{**gen, "min_len": lo, "max_len": hi})
        log_probs = model_outputs(model, card, s.images).log_softmax(2)
        truth = [tuple(t[:k].tolist()) for t, k in zip(s.targets, s.lengths)]
        greedy = greedy_batch(log_probs)
        out[name] = {"exact_greedy": float(np.mean([g == t for g, t in zip(greedy, truth)])), "n": len(truth)}
        if name == "4-5":
            m = min(beam_n, len(truth))
            beams = [to_digits(beam_decode(lp, beam_width)[0][0]) for lp in log_probs[:m]]
            out[name]["exact_beam"] = float(np.mean([b == t for b, t in zip(beams, truth[:m])]))
            out[name]["exact_greedy_same_subset"] = float(np.mean([g == t for g, t in zip(greedy[:m], truth[:m])]))
            out[name]["beam_n"], out[name]["beam_width"] = m, beam_width
    return {"exact_match_4_5": out["4-5"]["exact_greedy"], "by_length": out, "seed": seed}


def evaluate_checkpoint(folder: str, data_dir: str | None = None, n: int = 10_000, seed: int = TEST_SEED) -> dict:
    model, card = load_checkpoint(folder)
    ds = load_dataset("mnist", data_dir)
    if card.task == "multi_digit":
        return evaluate_pairs(model, card, ds.test_x, ds.test_y, n, seed)
    if card.task == "digit_string":
        return evaluate_strings(model, card, ds.test_x, ds.test_y, n, seed)
    raise CheckpointError(f"{folder}: task {card.task!r} is not a Multi-MNIST model")


# --- one image at a time (the composer page) ----------------------------------------------------------------

def pair_prediction(model, card: dict, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For one composed (28, W) image: digit probabilities (2, 10), left then right, and x-centres (2,) px."""
    logits, x = split_pair_output(model_outputs(model, card, torch.from_numpy(np.asarray(image))[None, None]))
    return logits[0].softmax(1).numpy(), x[0].numpy()


def _head_targets(digits: tuple[int, int]) -> dict:
    return {f"left digit is {digits[0]}": lambda out: out[:, digits[0]],
            f"right digit is {digits[1]}": lambda out: out[:, 10 + digits[1]],
            "left x-centre": lambda out: out[:, 20], "right x-centre": lambda out: out[:, 21]}


def _batch(card: dict, image: np.ndarray) -> torch.Tensor:
    ds = card.dataset
    return normalize(torch.from_numpy(np.asarray(image))[None, None], ds.mean, ds.std)


def head_cams(model, card: dict, image: np.ndarray, digits: tuple[int, int], hires: bool = True) -> dict[str, np.ndarray]:
    """HiResCAM (or plain Grad-CAM) of each output of the multi-task model: the left and right digit heads
    (for the classes in `digits`) and the two x regression outputs, at the backbone's last conv layer:
    name -> (28, W) in [0, 1]. See `core.inside.explain.grad_cam` for why HiResCAM suits these heads."""
    from core.inside.explain import grad_cam

    x = _batch(card, image)
    return {name: grad_cam(model, x, target, hires=hires)[0].numpy() for name, target in _head_targets(digits).items()}


def head_saliency(model, card: dict, image: np.ndarray, digits: tuple[int, int]) -> dict[str, np.ndarray]:
    """Gradient saliency |d output / d pixel| of the same four outputs: name -> (28, W) in [0, 1]."""
    from core.inside.explain import saliency

    x = _batch(card, image)
    return {name: saliency(model, x, target)[0].numpy() for name, target in _head_targets(digits).items()}


def string_log_probs(model, card: dict, image: np.ndarray) -> np.ndarray:
    """The CRNN's per-column log-probabilities (T, 11) for one (28, W) image; class 0 = blank."""
    return model_outputs(model, card, torch.from_numpy(np.asarray(image))[None, None]).log_softmax(2)[0].numpy()


def pick_tiles(text: str, images, labels, seed: int = 0) -> list[np.ndarray]:
    """One random test image of each digit in `text` (seeded): a handwriting for a typed string."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    return [np.asarray(images[rng.choice(np.nonzero(labels == int(ch))[0])]).reshape(28, 28) for ch in text]


def string_offsets(n: int, gap: int, width: int) -> list[int]:
    """Left edges of `n` 28 px tiles `gap` px apart, the string centred on a `width` px canvas."""
    span = n * 28 + (n - 1) * gap
    start = (width - span) // 2
    return [start + k * (28 + gap) for k in range(n)]


# --- training -------------------------------------------------------------------------------------------

def _fit(model, task, make_train, make_val, *, n_train: int, epochs: int, lr: float, batch_size: int, seed: int,
         log, max_steps: int = 0, grad_clip: float = 0.0):
    loader = ComposedLoader(make_train, n_train, batch_size, seed)
    val = make_val(min(5000, max(n_train // 10, 500)), seed + 1)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer="adamw", weight_decay=1e-4,
                         schedule="onecycle", seed=seed, monitor="val_accuracy", keep_best=True, max_steps=max_steps,
                         grad_clip=grad_clip)

    def report(event):
        if isinstance(event, EpochEvent):
            log(f"epoch {event.epoch}: " + " ".join(f"{k} {v:.4f}" for k, v in event.val.items())
                + f" ({event.seconds:.0f} s)")

    return fit(model, task, loader, TensorLoader(*val, batch_size=500, shuffle=False), config, callback=report)


def _card(task: str, ds, model, generator: dict, result, started: float, metrics: dict, extra: dict) -> ModelCard:
    return ModelCard(
        task=task, model=spec_of(model), dataset=DatasetInfo(**{**ds.describe(), "name": "mnist"}),
        generator=generator, metrics=metrics, params=count_parameters(model),
        command=invoking_command("core.composer.multidigit"),
        training={"epochs": result.epochs, "stop_reason": result.reason, "best_epoch": result.best_epoch,
                  "train_seconds": round(result.train_seconds, 1),
                  "wall_seconds": round(time.perf_counter() - started, 1), "history": result.history, **extra})


def train_pair(out: str | None, *, epochs: int = 6, x_weight: float = 10.0, n_train: int = 60_000, width: int = 64,
               max_overlap: int = 8, noise: float = 0.0, lr: float = 2e-3, batch_size: int = 128, seed: int = 0,
               data_dir: str | None = None, max_steps: int = 0, eval_n: int = 10_000, log=print, **model_options) -> dict:
    """Train the multi-task CNN; evaluate on fresh test compositions; save it with its card if `out`."""
    ds = load_dataset("mnist", data_dir)
    generator = {"width": width, "max_overlap": max_overlap, "noise": noise}
    model = build_model("pair_cnn", in_channels=1, image_size=28, width=width, seed=seed, **model_options)
    task = PairTask(ds.mean, ds.std, x_weight=x_weight)
    started = time.perf_counter()
    result = _fit(model, task, pair_maker(ds.train_x[:TRAIN_DIGITS], ds.train_y[:TRAIN_DIGITS], generator),
                  pair_maker(ds.train_x[TRAIN_DIGITS:], ds.train_y[TRAIN_DIGITS:], generator), n_train=n_train,
                  epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, log=log, max_steps=max_steps)
    card = _card("multi_digit", ds, model, generator, result, started, {}, {"lambda": x_weight, "n_train": n_train,
                 "lr": lr, "batch_size": batch_size, "seed": seed})
    card.metrics = {f"test_{k}": v for k, v in evaluate_pairs(model.eval(), card, ds.test_x, ds.test_y,
                                                                   eval_n).items()}
    if out:
        save_checkpoint(out, model, card)
    return card


def train_crnn(out: str | None, *, epochs: int = 8, n_train: int = 50_000, width: int = 192, max_len: int = 6,
               gap: tuple[int, int] = (-6, 4), noise: float = 0.0, lr: float = 2e-3, batch_size: int = 128,
               seed: int = 0, data_dir: str | None = None, max_steps: int = 0, eval_n: int = 10_000,
               log=print, **model_options) -> dict:
    """Train the CRNN with CTC; evaluate exact match on fresh test strings; save it with its card if `out`."""
    ds = load_dataset("mnist", data_dir)
    generator = {"width": width, "max_len": max_len, "gap": list(gap), "noise": noise}
    model = build_model("crnn", in_channels=1, image_size=28, width=width, seed=seed, **model_options)
    task = CTCTask(ds.mean, ds.std)
    started = time.perf_counter()
    result = _fit(model, task, string_maker(ds.train_x[:TRAIN_DIGITS], ds.train_y[:TRAIN_DIGITS], generator),
                  string_maker(ds.train_x[TRAIN_DIGITS:], ds.train_y[TRAIN_DIGITS:], generator), n_train=n_train,
                  epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, log=log, max_steps=max_steps, grad_clip=5.0)
    card = _card("digit_string", ds, model, generator, result, started, {}, {"n_train": n_train, "lr": lr,
                 "batch_size": batch_size, "seed": seed})
    ev = evaluate_strings(model.eval(), card, ds.test_x, ds.test_y, eval_n)
    card.metrics = {"test_exact_match_4_5": ev["exact_match_4_5"],
                       "test_exact_match_4_5_beam": ev["by_length"]["4-5"]["exact_beam"], "test_by_length": ev["by_length"]}
    if out:
        save_checkpoint(out, model, card)
    return card


def sweep(lambdas: list[float], *, epochs: int, n_train: int, into: str | None = None, data_dir: str | None = None,
          log=print, **options) -> list[dict]:
    """Train one pair CNN per lambda (same data, seed and budget): accuracy against position error."""
    rows = []
    for lam in lambdas:
        card = train_pair(None, epochs=epochs, x_weight=lam, n_train=n_train, data_dir=data_dir, eval_n=5000,
                          log=lambda s: None, **options)
        m = card.metrics
        rows.append({"lambda": lam, "both_digits_accuracy": round(m["test_both_digits_accuracy"], 4),
                     "x_mae_px": round(m["test_x_mae_px"], 3), "train_seconds": card.training["train_seconds"]})
        log(f"lambda {lam:<8g} both digits {m['test_both_digits_accuracy']:.4f}  x MAE {m['test_x_mae_px']:.3f} px")
    if into:
        update_card(into, lambda_sweep={"rows": rows, "epochs": epochs, "n_train": n_train,
                                        "command": invoking_command("core.composer.multidigit")})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.composer.multidigit", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tp = sub.add_parser("train-pair", help="train the multi-task CNN on composed digit pairs")
    tc = sub.add_parser("train-crnn", help="train the CRNN with CTC on composed digit strings")
    sw = sub.add_parser("sweep", help="one short pair-CNN run per lambda: accuracy against x error")
    for p in (tp, tc, sw):
        p.add_argument("--epochs", type=int, default={"train-pair": 6, "train-crnn": 8, "sweep": 2}[p.prog.split()[-1]])
        p.add_argument("--n-train", type=int, default={"train-pair": 60_000, "train-crnn": 50_000,
                                                       "sweep": 20_000}[p.prog.split()[-1]])
        p.add_argument("--lr", type=float, default=2e-3)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--data-dir")
    for p in (tp, sw):
        p.add_argument("--width", type=int, default=64)
        p.add_argument("--max-overlap", type=int, default=8)
    tp.add_argument("--lambda", dest="x_weight", type=float, default=10.0)
    sw.add_argument("--lambdas", default="0,0.1,1,10,100")
    sw.add_argument("--into", help="a pair checkpoint whose card gets the table")
    tc.add_argument("--width", type=int, default=192)
    tc.add_argument("--hidden", type=int, default=128)
    for p in (tp, tc):
        p.add_argument("--out", required=True)
    ev = sub.add_parser("evaluate", help="metrics of pair / CRNN checkpoints on freshly composed test images")
    ev.add_argument("folders", nargs="+")
    ev.add_argument("--n", type=int, default=10_000)
    ev.add_argument("--seed", type=int, default=TEST_SEED)
    ev.add_argument("--data-dir")
    args = parser.parse_args(argv)
    try:
        if args.command == "train-pair":
            card = train_pair(args.out, epochs=args.epochs, x_weight=args.x_weight, n_train=args.n_train,
                              width=args.width, max_overlap=args.max_overlap, lr=args.lr, seed=args.seed,
                              data_dir=args.data_dir)
            print(json.dumps(card.metrics, indent=2))
        elif args.command == "train-crnn":
            card = train_crnn(args.out, epochs=args.epochs, n_train=args.n_train, width=args.width, lr=args.lr,
                              seed=args.seed, data_dir=args.data_dir, hidden=args.hidden)
            print(json.dumps(card.metrics, indent=2))
        elif args.command == "sweep":
            sweep([float(v) for v in args.lambdas.split(",")], epochs=args.epochs, n_train=args.n_train, into=args.into,
                  data_dir=args.data_dir, width=args.width, max_overlap=args.max_overlap, lr=args.lr, seed=args.seed)
        else:
            for folder in args.folders:
                print(folder)
                print(json.dumps(evaluate_checkpoint(folder, args.data_dir, args.n, args.seed), indent=2))
    except (DataError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
