"""Captioned scenes made of real images: 1 to 3 objects from MNIST, Fashion-MNIST and CIFAR-10 on a 64x64
canvas, each scene with several captions from a small grammar with varied wording.

Owns the object vocabulary (30 object classes: ten digits, ten clothes, ten photo classes), scene
layout (a 2 x 2 grid of 32 px cells, one object per cell, small jitter), appearance (digits and clothes
in one of five colour tints and two sizes; photos fill their cell), the caption grammar, and the split
of object-class pairs into "seen" and "held-out": training scenes never contain a held-out pair
together, so scenes that do measure generalisation to new combinations rather than memory.

Train scenes use each data set's train images, test scenes its test images. Seeded and deterministic.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

SIZE, CELL = 64, 32
CELLS = ["top left", "top right", "bottom left", "bottom right"]  # cell k is at row k // 2, column k % 2
COLOURS = {"red": (255, 64, 64), "green": (64, 224, 64), "blue": (80, 120, 255), "yellow": (255, 230, 40),
           "white": (255, 255, 255)}
DIGIT_NOUNS = [str(d) for d in range(10)]
CLOTHES_NOUNS = ["t-shirt", "pair of trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                 "boot"]
PHOTO_NOUNS = ["airplane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
NOUNS = DIGIT_NOUNS + CLOTHES_NOUNS + PHOTO_NOUNS  # object class k: 0-9 digits, 10-19 clothes, 20-29 photos
SOURCES = ("mnist", "fashion_mnist", "cifar10")


@dataclass
class SceneObject:
    cls: int  # 0..29, see NOUNS
    cell: int  # 0..3, see CELLS
    colour: str | None  # tint of a digit or a piece of clothing; None for photos
    size: str | None  # "small" | "large" for digits and clothes; None for photos
    image: int  # index into its source data set's split


@dataclass
class Scenes:
    images: torch.Tensor  # uint8 (N, 3, 64, 64)
    objects: list[list[SceneObject]]
    captions: list[list[str]]  # several reference captions per scene


def held_out_pairs(fraction: float = 0.1, seed: int = 0) -> set[tuple[int, int]]:
    """A fixed share of all unordered pairs of object classes that training scenes never show together."""
    pairs = list(itertools.combinations(range(len(NOUNS)), 2))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(pairs), size=int(round(fraction * len(pairs))), replace=False)
    return {pairs[i] for i in sorted(chosen)}


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou8" else "a ") + phrase


def describe(obj: SceneObject) -> str:
    """'a small red 7', 'a large blue pair of trousers', 'an airplane'."""
    if obj.cls >= 20:
        return _article(NOUNS[obj.cls])
    return _article(f"{obj.size} {obj.colour} {NOUNS[obj.cls]}")


def captions_for(objects: list[SceneObject]) -> list[str]:
    """Every wording the grammar has for a scene (objects in any order); the first is the canonical one."""
    objs = sorted(objects, key=lambda o: o.cell)  # reading order
    at = [f"{describe(o)} at the {CELLS[o.cell]}" for o in objs]
    if len(objs) == 1:
        return [at[0], f"there is {at[0]}", f"{describe(objs[0])} in the {CELLS[objs[0].cell]} corner"]
    if len(objs) == 2:
        a, b = objs
        out = [f"{at[0]} and {at[1]}", f"{at[1]} and {at[0]}"]
        if a.cell // 2 == b.cell // 2:  # same row
            out += [f"{describe(a)} to the left of {describe(b)}", f"{describe(b)} to the right of {describe(a)}"]
        elif a.cell % 2 == b.cell % 2:  # same column
            out += [f"{describe(a)} above {describe(b)}", f"{describe(b)} below {describe(a)}"]
        return out
    return [f"{at[0]}, {at[1]} and {at[2]}", f"there is {at[0]}, {at[1]} and {at[2]}", f"{at[2]}, {at[1]} and {at[0]}"]


def _grey_object(tile: np.ndarray, size: str, colour: str) -> np.ndarray:
    """A 28x28 grey tile as a tinted RGB float image of 28 (large) or 18 (small) pixels."""
    side = 28 if size == "large" else 18
    t = torch.from_numpy(tile.astype(np.float32) / 255)[None, None]
    if side != 28:
        t = torch.nn.functional.interpolate(t, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
    return t[0, 0].numpy()[..., None] * np.array(COLOURS[colour], dtype=np.float32)[None, None]


class SceneMaker:
    """Composes scenes from the three data sets' images of one split ("train" or "test")."""

    def __init__(self, digits, fashion, photos, split: str = "train"):
        """Each source: a `core.data.Dataset`; only the chosen split's images are used."""
        pick = (lambda d: (d.train_x, d.train_y)) if split == "train" else (lambda d: (d.test_x, d.test_y))
        self.sources = [pick(d) for d in (digits, fashion, photos)]
        self.by_class = [[np.nonzero(y.numpy() == c)[0] for c in range(10)] for _, y in self.sources]

    def _object(self, cls: int, cell: int, rng: np.random.Generator) -> SceneObject:
        source, c = divmod(cls, 10)
        index = int(rng.choice(self.by_class[source][c]))
        if source == 2:
            return SceneObject(cls, cell, None, None, index)
        return SceneObject(cls, cell, str(rng.choice(list(COLOURS))), str(rng.choice(["small", "large"])), index)

    def render(self, objects: list[SceneObject], rng: np.random.Generator) -> np.ndarray:
        canvas = np.zeros((SIZE, SIZE, 3), dtype=np.float32)
        for o in objects:
            x, _ = self.sources[o.cls // 10]
            tile = x[o.image].numpy()
            if o.cls >= 20:
                img, side = tile.transpose(1, 2, 0).astype(np.float32), 32
            else:
                img = _grey_object(tile[0], o.size, o.colour)
                side = img.shape[0]
            slack = CELL - side
            dy, dx = (rng.integers(0, slack + 1, size=2) if slack else (0, 0))
            top, left = (o.cell // 2) * CELL + int(dy), (o.cell % 2) * CELL + int(dx)
            region = canvas[top:top + side, left:left + side]
            canvas[top:top + side, left:left + side] = img if o.cls >= 20 else np.maximum(region, img)
        return np.clip(canvas, 0, 255).round().astype(np.uint8)

    def make(self, n: int, *, seed: int = 0, held_out: set[tuple[int, int]] | None = None,
             mode: str = "seen", max_objects: int = 3) -> Scenes:
        """`n` scenes of 1..`max_objects` objects. mode "seen": no held-out pair appears together (training
        and the seen test set); mode "held_out": every scene contains at least one held-out pair."""
        rng = np.random.default_rng(seed)
        held = held_out or set()
        held_list = sorted(held)
        images, all_objects, captions = [], [], []
        while len(images) < n:
            if mode == "held_out":
                pair = held_list[rng.integers(len(held_list))]
                count = int(rng.integers(2, max_objects + 1))
                classes = list(pair) + [int(c) for c in rng.integers(0, len(NOUNS), size=count - 2)]
            else:
                count = int(rng.integers(1, max_objects + 1))
                classes = [int(c) for c in rng.integers(0, len(NOUNS), size=count)]
                if any(tuple(sorted(p)) in held for p in itertools.combinations(classes, 2)):
                    continue
            cells = rng.permutation(4)[:len(classes)]
            objects = [self._object(c, int(k), rng) for c, k in zip(classes, cells)]
            images.append(self.render(objects, rng))
            all_objects.append(objects)
            captions.append(captions_for(objects))
        x = torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).copy())
        return Scenes(x, all_objects, captions)
