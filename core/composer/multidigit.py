"""Multi-MNIST: composing training data, evaluation on fresh test compositions, and one image at a time.

Training composes a fresh set of images from MNIST's first 55,000 train digits every epoch and
validates on images composed from the last 5,000; evaluation composes fresh images from the test
digits with a fixed seed, using the generator settings stored in the model card. The recipes that
train the two models are in `core.composer.recipes`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from core.composer.ctc import beam_decode, greedy_batch, to_digits
from core.data import load_dataset
from core.data.multimnist import compose_pairs, compose_strings
from core.engine.checkpoint import CheckpointError, load_checkpoint
from core.engine.predict import predict_logits
from core.engine.tasks import normalize
from core.models.multidigit import split_pair_output
from core.progress import counted

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
    p = compose_pairs(digits, labels, n, seed=seed, **card.section("generator"))
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
    gen = dict(card.section("generator"))
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
            beams = [to_digits(beam_decode(lp, beam_width)[0][0])
                     for lp in counted(log_probs[:m], f"beam search (width {beam_width})", "string")]
            out[name]["exact_beam"] = float(np.mean([b == t for b, t in zip(beams, truth[:m])]))
            out[name]["exact_greedy_same_subset"] = float(np.mean([g == t for g, t in zip(greedy[:m], truth[:m])]))
            out[name]["beam_n"], out[name]["beam_width"] = m, beam_width
    return {"exact_match_4_5": out["4-5"]["exact_greedy"], "by_length": out, "seed": seed}


def test_metrics(model, card, ds, n: int = 10_000, seed: int = TEST_SEED) -> dict:
    """The card's test metrics of a pair CNN or CRNN on `n` fresh compositions of `ds`'s test digits (the
    recipes record these; `python -m core evaluate` measures them again)."""
    if card.task == "multi_digit":
        return {f"test_{k}": v for k, v in evaluate_pairs(model, card, ds.test_x, ds.test_y, n, seed).items()}
    ev = evaluate_strings(model, card, ds.test_x, ds.test_y, n, seed)
    return {"test_exact_match_4_5": ev["exact_match_4_5"], "test_exact_match_4_5_beam": ev["by_length"]["4-5"]["exact_beam"],
            "test_by_length": ev["by_length"]}


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


def familiarity(model, card: dict, images: torch.Tensor) -> torch.Tensor:
    """How much each composed image (N, 1, 28, W) looks like the model's training images: the energy score
    (log sum exp of the logits) of its least sure digit head (pair CNN), or its columns' mean (CRNN). (N,)"""
    out = model_outputs(model, card, images)
    if card.task == "multi_digit":
        logits, _ = split_pair_output(out)
        return torch.logsumexp(logits, dim=2).min(1).values
    return torch.logsumexp(out, dim=2).mean(1)


def familiarity_range(model, card: dict, digits, labels, n: int = 2000, seed: int = TEST_SEED + 7) -> tuple:
    """(low, high): the familiarity range that holds 95 % of images freshly composed (the card's generator) from
    `digits`, 2.5 % cut off each side. Two-sided, because pixel noise makes the pair CNN *more* sure of itself,
    not less: an image it was not trained on can score above every training image."""
    generator = card.section("generator")
    composed = (compose_pairs(digits, labels, n, seed=seed, **generator).images if card.task == "multi_digit"
                else compose_strings(digits, labels, n, seed=seed, **generator).images)
    scores = familiarity(model, card, composed)
    return float(torch.quantile(scores, 0.025)), float(torch.quantile(scores, 0.975))


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
