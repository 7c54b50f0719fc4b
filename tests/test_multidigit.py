"""Multi-MNIST: generator labels by construction, both models' shapes and a short training run, CTC decoding
on hand-built probability matrices, and the shipped checkpoints through the evaluation command."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.composer.ctc import align, beam_decode, collapse, greedy_decode
from core.data.multimnist import DIGIT, compose, compose_pairs, compose_strings, ink_centre
from core.engine import TrainConfig, fit
from core.models import build_model
from core.composer.multidigit import pair_maker, string_maker
from core.composer.tasks import CTCTask, PairTask
from core.engine import ComposedLoader


def coded_tiles():
    """One 28x28 tile per class whose ink has a value no other class uses (20 * (c + 1)) and a
    class-dependent width, so a composed image tells which pixel came from which class."""
    tiles = np.zeros((10, DIGIT, DIGIT), dtype=np.uint8)
    for c in range(10):
        tiles[c, 6:22, 4 + c % 3:24 - c % 2] = 20 * (c + 1)
    return tiles, np.arange(10)


def com_x(mask: np.ndarray, image: np.ndarray) -> float:
    cols = (mask * image).sum(0).astype(np.float64)
    return float((cols * np.arange(len(cols))).sum() / cols.sum())


def test_pair_labels_are_right_by_construction():
    tiles, labels = coded_tiles()
    p = compose_pairs(tiles, labels, 300, width=72, max_overlap=0, seed=3)
    assert p.images.shape == (300, 1, 28, 72) and p.images.dtype == torch.uint8
    for img, cls, x in zip(p.images[:, 0].numpy(), p.classes.numpy(), p.x.numpy()):
        assert x[0] < x[1]  # left to right
        if cls[0] == cls[1]:  # same tile twice: the ink's centre is the mean of the two centres
            assert com_x(img == 20 * (cls[0] + 1), img) == pytest.approx(x.mean(), abs=1e-3)
            continue
        for c, xc in zip(cls, x):
            assert com_x(img == 20 * (c + 1), img) == pytest.approx(xc, abs=1e-3)
    assert len(np.unique(p.classes.numpy(), axis=0)) > 50  # the pairs vary


def test_pairs_overlap_noise_and_seeds():
    tiles, labels = coded_tiles()
    a = compose_pairs(tiles, labels, 500, width=56, max_overlap=12, seed=1)
    b = compose_pairs(tiles, labels, 500, width=56, max_overlap=12, seed=1)
    c = compose_pairs(tiles, labels, 500, width=56, max_overlap=12, seed=2)
    assert torch.equal(a.images, b.images) and torch.equal(a.x, b.x)
    assert not torch.equal(a.images, c.images)
    gap = (a.x[:, 1] - a.x[:, 0]).numpy()
    assert gap.min() >= 28 - 12 - 3 and (gap < 26).any()  # tiles overlap, by at most 12 px
    noisy = compose_pairs(tiles, labels, 500, width=56, max_overlap=12, noise=0.2, seed=1)
    assert torch.equal(noisy.classes, a.classes) and torch.equal(noisy.x, a.x)
    assert (noisy.images[a.images == 0] > 0).float().mean() > 0.3  # noise on the background
    with pytest.raises(ValueError, match="cannot hold"):
        compose_pairs(tiles, labels, 5, width=40)


def test_string_labels_are_right_by_construction():
    tiles, labels = coded_tiles()
    s = compose_strings(tiles, labels, 300, width=192, max_len=6, gap=(-6, 4), seed=5)
    assert s.images.shape == (300, 1, 28, 192)
    assert set(s.lengths.tolist()) == {1, 2, 3, 4, 5, 6}
    for img, t, n, x in zip(s.images[:, 0].numpy(), s.targets.numpy(), s.lengths.numpy(), s.x.numpy()):
        assert (t[n:] == -1).all() and (t[:n] >= 0).all()
        assert (np.diff(x[:n]) > 0).all()  # left to right
        for c in set(t[:n].tolist()):
            assert com_x(img == 20 * (c + 1), img) == pytest.approx(x[:n][t[:n] == c].mean(), abs=1e-3)


def test_compose_one_image_clips_into_the_canvas():
    tiles, _ = coded_tiles()
    image, centres = compose([tiles[1], tiles[7]], [-10, 100], width=64)
    assert image.shape == (28, 64)
    assert centres[0] == pytest.approx(float(ink_centre(tiles[1]))) and centres[1] == pytest.approx(36 + float(ink_centre(tiles[7])))
    assert ink_centre(np.zeros((28, 28)))[()] == pytest.approx(13.5)


def sklearn_tiles():
    """scikit-learn's bundled 8x8 handwritten digits, upscaled into 20x20 boxes on 28x28 tiles."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images).float()[:, None] / 16
    x = F.pad(F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False), (4, 4, 4, 4))
    return (x * 255).clamp(0, 255).to(torch.uint8), torch.from_numpy(d.target)


def test_models_have_the_documented_shapes():
    pair = build_model("pair_cnn", in_channels=1, image_size=28, width=64)
    assert pair(torch.zeros(3, 1, 28, 64)).shape == (3, 22)
    crnn = build_model("crnn", in_channels=1, image_size=28, width=192)
    assert crnn(torch.zeros(2, 1, 28, 192)).shape == (2, 24, 11)
    assert build_model("crnn", in_channels=1, image_size=28, width=96)(torch.zeros(1, 1, 28, 96)).shape == (1, 12, 11)


@pytest.mark.parametrize("kind", ["pair", "string"])
def test_short_training_lowers_the_loss(kind):
    images, labels = sklearn_tiles()
    mean, std = (0.1,), (0.25,)
    if kind == "pair":
        model = build_model("pair_cnn", in_channels=1, image_size=28, width=64, channels=(16, 32, 32), hidden=64)
        task, make = PairTask(mean, std, x_weight=1.0), pair_maker(images, labels, {"width": 64})
    else:
        model = build_model("crnn", in_channels=1, image_size=28, width=96, hidden=64, channels=(16, 32, 48, 64))
        task, make = CTCTask(mean, std), string_maker(images, labels, {"width": 96, "max_len": 3, "gap": (-4, 0)})
    val = make(256, 99)
    before = task.summarize(task.evaluation_sums(model.eval(), val))["loss"]
    result = fit(model, task, ComposedLoader(make, 1536, 64), None,
                 TrainConfig(epochs=2, lr=3e-3, optimizer="adamw", schedule="onecycle", keep_best=False, threads=2))
    after = task.summarize(task.evaluation_sums(model.eval(), val))
    assert result.reason == "completed" and after["loss"] < 0.7 * before
    if kind == "pair":
        assert after["digit_accuracy"] > 0.3 and after["x_mae"] < 6  # chance is 0.1 and ~10 px


def test_greedy_collapses_repeats_then_drops_blanks():
    assert collapse([1, 1, 0, 1, 2, 2, 0]) == (1, 1, 2)
    path = [0, 3, 3, 0, 0, 5, 0, 5]
    lp = np.log(np.eye(6)[path] * 0.95 + 0.01)
    labels, best = greedy_decode(lp)
    assert labels == (3, 5, 5) and best.tolist() == path


def test_beam_finds_the_labelling_greedy_misses():
    # per column: blank 0.6, "a" 0.4. Best path: blank blank (0.36) -> "". But "a" has paths
    # a-, -a, aa = 0.24 + 0.24 + 0.16 = 0.64, so the most probable labelling is "a".
    lp = np.log(np.array([[0.6, 0.4], [0.6, 0.4]]))
    assert greedy_decode(lp)[0] == ()
    beams = beam_decode(lp, beam_width=4)
    assert beams[0][0] == (1,) and math.exp(beams[0][1]) == pytest.approx(0.64)
    assert beams[1][0] == () and math.exp(beams[1][1]) == pytest.approx(0.36)


def test_beam_matches_brute_force_on_small_random_matrices():
    rng = np.random.default_rng(0)
    for _ in range(5):
        probs = rng.dirichlet(np.ones(3), size=5)  # T = 5 columns, blank + 2 labels
        totals: dict[tuple, float] = {}
        for path in itertools.product(range(3), repeat=5):
            totals[collapse(path)] = totals.get(collapse(path), 0.0) + float(np.prod(probs[np.arange(5), path]))
        best = max(totals, key=totals.get)
        found = beam_decode(np.log(probs), beam_width=50)
        assert found[0][0] == best and math.exp(found[0][1]) == pytest.approx(totals[best], rel=1e-9)
        assert sum(math.exp(p) for _, p in found) <= 1 + 1e-9


def test_beam_width_one_equals_greedy_on_confident_columns():
    rng = np.random.default_rng(1)
    path = rng.integers(0, 11, size=30)
    probs = np.full((30, 11), 0.02)
    probs[np.arange(30), path] = 0.8
    lp = np.log(probs / probs.sum(1, keepdims=True))
    assert beam_decode(lp, beam_width=1)[0][0] == greedy_decode(lp)[0]


def test_alignment_is_the_most_probable_path_for_the_labels():
    probs = np.full((6, 4), 0.05)
    for t, c in enumerate([0, 2, 2, 0, 2, 3]):
        probs[t, c] = 0.85
    lp = np.log(probs)
    assert align(lp, (2, 2, 3)).tolist() == [0, 2, 2, 0, 2, 3]
    forced = align(lp, (3,))  # a labelling the columns do not favour still gets its best path
    assert collapse(forced) == (3,)
    with pytest.raises(ValueError):
        align(lp[:2], (2, 2))  # a repeat needs a blank between: 3 columns at least


def test_shipped_checkpoints_meet_their_targets(real_data):
    from core.composer.multidigit import evaluate_checkpoint
    from core.paths import SHIPPED_CHECKPOINTS

    pair = evaluate_checkpoint(SHIPPED_CHECKPOINTS / "mnist_pair_cnn", str(real_data), n=2000, seed=7)
    assert pair["both_digits_accuracy"] >= 0.975 and pair["x_mae_px"] <= 1.2
    strings = evaluate_checkpoint(SHIPPED_CHECKPOINTS / "mnist_crnn", str(real_data), n=1000, seed=7)
    assert strings["exact_match_4_5"] >= 0.95
