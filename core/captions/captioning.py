"""Image captioning end to end: vocabulary, the Flickr8k reader, greedy and beam decoding, BLEU, training
and evaluation of the Show-Attend-Tell captioner on captioned scenes of real images.

CLI:
    python -m core.captions.captioning train --out checkpoints/scenes_captioner
    python -m core.captions.captioning evaluate checkpoints/scenes_captioner      # BLEU-1..4 + exact match, seen and held-out

Decoding works on any model with `encode(images) -> (feats, state)`, `att_feat(feats)` and
`step(feats, keys, tokens, state) -> (logits, attention, state)`, so tests can pass a hand-built decoder.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = [PAD, START, END, UNK]
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def tokenize(caption: str) -> list[str]:
    """Lower-case words (hyphenated words and numbers kept whole); punctuation dropped."""
    return _WORD.findall(caption.lower())


class Vocabulary:
    """Words <-> ids; ids 0..3 are <pad>, <start>, <end>, <unk>."""

    def __init__(self, words: list[str]):
        self.words = SPECIALS + [w for w in words if w not in SPECIALS]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, captions, min_count: int = 1) -> "Vocabulary":
        counts: dict[str, int] = {}
        for c in captions:
            for w in tokenize(c):
                counts[w] = counts.get(w, 0) + 1
        return cls(sorted(w for w, n in counts.items() if n >= min_count))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, caption: str) -> list[int]:
        """<start> words <end> as ids; unknown words become <unk>."""
        return [1] + [self.index.get(w, 3) for w in tokenize(caption)] + [2]

    def decode(self, ids) -> str:
        """Ids back to text: stops at <end>, skips <pad> and <start>."""
        out = []
        for i in ids:
            i = int(i)
            if i == 2:
                break
            if i > 2:
                out.append(self.words[i])
        return " ".join(out)

    def pad(self, captions: list[str], length: int | None = None) -> torch.Tensor:
        ids = [self.encode(c) for c in captions]
        length = length or max(len(i) for i in ids)
        out = torch.zeros(len(ids), length, dtype=torch.long)
        for row, seq in enumerate(ids):
            seq = seq[:length]
            out[row, :len(seq)] = torch.tensor(seq)
        return out


# --- Flickr8k layout ----------------------------------------------------------------------------------------

@dataclass
class CaptionCorpus:
    images: dict[str, list[str]]  # image file name -> its captions
    problems: list[str] = field(default_factory=list)  # "line N: what is wrong", the rest still read
    folder: Path | None = None


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def read_flickr8k(folder: str | Path) -> CaptionCorpus:
    """The standard Flickr8k layout: `folder/Images/*.jpg` and `folder/captions.txt` with a header
    `image,caption` and one `image,caption` line per caption (captions may contain commas). Malformed
    lines are reported with their line numbers and skipped; images missing from Images/ likewise."""
    folder = Path(folder)
    text_path, image_dir = folder / "captions.txt", folder / "Images"
    if not text_path.is_file():
        raise FileNotFoundError(f"{text_path} not found: a Flickr8k folder holds captions.txt and Images/")
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{image_dir} not found: a Flickr8k folder holds captions.txt and Images/")
    present = {p.name for p in image_dir.iterdir()}
    corpus = CaptionCorpus({}, [], folder)
    raw = text_path.read_bytes()
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            line = line.decode("utf-8").strip()
        except UnicodeDecodeError:
            corpus.problems.append(f"line {number}: not UTF-8 text")
            continue
        if not line or (number == 1 and line.replace(" ", "").lower() == "image,caption"):
            continue
        name, sep, caption = line.partition(",")
        name, caption = name.strip(), caption.strip().strip('"').strip()
        if not sep:
            corpus.problems.append(f"line {number}: no comma between image and caption")
        elif not name.lower().endswith(IMAGE_SUFFIXES):
            corpus.problems.append(f"line {number}: {name[:40]!r} is not an image file name")
        elif not tokenize(caption):
            corpus.problems.append(f"line {number}: empty caption for {name}")
        elif name not in present:
            corpus.problems.append(f"line {number}: {name} is not in Images/")
        else:
            corpus.images.setdefault(name, []).append(caption)
    return corpus


# --- decoding -----------------------------------------------------------------------------------------------

@dataclass
class Decoded:
    tokens: list[int]  # without <start>, without <end>
    log_prob: float  # sum of the chosen words' log-probabilities (and of <end> when it ended)
    attention: list[np.ndarray] = field(default_factory=list)  # per word: (P,) attention over the grid
    top: list[list[tuple[int, float]]] = field(default_factory=list)  # per step: top-5 (word id, probability)
    ended: bool = True  # False when it hit max_len without <end>

    def score(self, length_penalty: float) -> float:
        """Length-normalised log-probability: log p / (number of tokens incl. <end>) ** length_penalty."""
        return self.log_prob / max(len(self.tokens) + int(self.ended), 1) ** length_penalty


def _next_word_log_probs(logits: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of the next word; <pad> and <start> can never be the next word."""
    logits = logits.float().clone()
    logits[:, :2] = -math.inf
    return torch.log_softmax(logits, 1)


@torch.no_grad()
def greedy(model, image: torch.Tensor, max_len: int = 30, prefix: list[int] = ()) -> Decoded:
    """Most probable word at each step; `prefix` words are forced first (their log-probabilities count)."""
    beams = beam_search(model, image, width=1, max_len=max_len, prefix=prefix)
    return beams[0]


@torch.no_grad()
def beam_search(model, image: torch.Tensor, width: int = 5, max_len: int = 30, length_penalty: float = 0.7,
                prefix: list[int] = ()) -> list[Decoded]:
    """Beam search from <start> (after the forced `prefix`): keeps the `width` best partial captions; a beam
    that emits <end> is finished; beams still open at `max_len` are ended there (and marked `ended=False`),
    so a decoder that never emits <end> still terminates. Returns up to `width` captions, best first by
    the length-normalised score (width 1: exactly greedy decoding)."""
    feats, state = model.encode(image)
    keys = model.att_feat(feats)
    beams = [Decoded([], 0.0)]
    states = state
    tokens = torch.tensor([1])
    finished: list[Decoded] = []
    forced = list(prefix)
    for step in range(max_len):
        n = len(beams)
        logits, alpha, states = model.step(feats.expand(n, -1, -1), keys.expand(n, -1, -1), tokens, states)
        logp = _next_word_log_probs(logits)
        top_p, top_i = logp.exp().topk(min(5, logp.shape[1]), 1)
        if step < len(forced):
            choices = [(0, forced[step], float(logp[0, forced[step]]))]
        else:
            cand_lp, cand_i = logp.topk(min(width, logp.shape[1]), 1)
            choices = sorted(((b, int(cand_i[b, k]), beams[b].log_prob + float(cand_lp[b, k]))
                              for b in range(n) for k in range(cand_i.shape[1])), key=lambda c: -c[2])[:width]
            choices = [(b, w, lp - beams[b].log_prob) for b, w, lp in choices]
        next_beams, keep, next_tokens = [], [], []
        for b, word, lp in choices:
            d = Decoded(beams[b].tokens + ([] if word == 2 else [word]), beams[b].log_prob + lp,
                        beams[b].attention + ([] if word == 2 else [alpha[b].cpu().numpy()]),
                        beams[b].top + [list(zip(top_i[b].tolist(), top_p[b].tolist()))])
            if word == 2:
                finished.append(d)
            else:
                next_beams.append(d)
                keep.append(b)
                next_tokens.append(word)
        if len(finished) >= width or not next_beams:
            break
        beams = next_beams
        idx = torch.tensor(keep)
        states = (states[0][idx], states[1][idx])
        tokens = torch.tensor(next_tokens)
    else:
        for d in beams:
            d.ended = False
            finished.append(d)
    return sorted(finished, key=lambda d: -d.score(length_penalty))[:width]


# --- BLEU and exact match -----------------------------------------------------------------------------------

def bleu(references: list[list[str]], hypotheses: list[str]) -> dict[str, float]:
    """Corpus BLEU-1..4 (nltk's `corpus_bleu`, uniform n-gram weights) of tokenised captions."""
    from nltk.translate.bleu_score import corpus_bleu

    refs = [[tokenize(r) for r in rs] for rs in references]
    hyps = [tokenize(h) for h in hypotheses]
    weights = [(1, 0, 0, 0), (0.5, 0.5, 0, 0), (1 / 3, 1 / 3, 1 / 3, 0), (0.25, 0.25, 0.25, 0.25)]
    scores = corpus_bleu(refs, hyps, weights=weights)
    return {f"bleu{n}": float(s) for n, s in zip(range(1, 5), scores)}


def exact_match(references: list[list[str]], hypotheses: list[str]) -> float:
    """Share of hypotheses equal (as token lists) to one of their references."""
    hits = [tokenize(h) in [tokenize(r) for r in rs] for rs, h in zip(references, hypotheses)]
    return float(np.mean(hits)) if hits else 0.0


# --- data, training, evaluation -----------------------------------------------------------------------------

def scene_makers(data_dir: str | None = None):
    """(train SceneMaker, test SceneMaker) over MNIST, Fashion-MNIST and CIFAR-10."""
    from core.data import load_dataset
    from core.data.scenes import SOURCES, SceneMaker

    sets = [load_dataset(name, data_dir) for name in SOURCES]
    return SceneMaker(*sets, split="train"), SceneMaker(*sets, split="test")


def grammar_vocabulary() -> Vocabulary:
    """Every word the scene grammar can produce (so the vocabulary does not depend on a sample)."""
    from core.data.scenes import CELLS, COLOURS, NOUNS

    words = set()
    for phrase in NOUNS + CELLS + list(COLOURS) + ["small large a an at the and there is in corner to left of right "
                                                    "above below"]:
        words.update(tokenize(phrase))
    return Vocabulary(sorted(words))


MEAN, STD = (0.10, 0.10, 0.09), (0.23, 0.22, 0.22)  # of the scenes' pixels (mostly black canvas), measured


MAX_TOKENS = 40  # <start> + words + <end>: the grammar's longest caption has 31 words


def caption_all(model, images: torch.Tensor, *, beam: int = 1, max_len: int = 38) -> list[Decoded]:
    from core.engine.tasks import normalize

    model.eval()
    x = normalize(images, MEAN, STD)
    if beam <= 1:
        return greedy_batch(model, x, max_len)
    return [beam_search(model, x[i:i + 1], width=beam, max_len=max_len)[0] for i in range(len(x))]


@torch.no_grad()
def greedy_batch(model, x: torch.Tensor, max_len: int = 30) -> list[Decoded]:
    """Greedy decoding of a whole batch at once (same result as `greedy` per image, much faster)."""
    feats, state = model.encode(x)
    keys = model.att_feat(feats)
    tokens = torch.ones(len(x), dtype=torch.long)
    out = [Decoded([], 0.0) for _ in range(len(x))]
    alive = torch.ones(len(x), dtype=torch.bool)
    for _ in range(max_len):
        logits, _, state = model.step(feats, keys, tokens, state)
        logp = _next_word_log_probs(logits)
        lp, tokens = logp.max(1)
        for i in torch.nonzero(alive).flatten().tolist():
            out[i].log_prob += float(lp[i])
            if int(tokens[i]) == 2:
                alive[i] = False
            else:
                out[i].tokens.append(int(tokens[i]))
        if not alive.any():
            break
    for i in torch.nonzero(alive).flatten().tolist():
        out[i].ended = False
    return out


def evaluate_scenes(model, vocab: Vocabulary, maker, held: set, *, n: int = 1000, seed: int = 7, beam: int = 1) -> dict:
    """BLEU-1..4 and exact match on fresh test scenes: 'seen' (no held-out pair) and 'held_out' (one at least)."""
    out = {}
    for mode in ("seen", "held_out"):
        scenes = maker.make(n, seed=seed + (mode == "held_out"), held_out=held, mode=mode)
        hyps = [vocab.decode(d.tokens) for d in caption_all(model, scenes.images, beam=beam)]
        out[mode] = {**bleu(scenes.captions, hyps), "exact_match": exact_match(scenes.captions, hyps), "n": n}
    return out


def _fit_captioner(model, make, n_train: int, val: tuple, *, epochs: int, lr: float, batch_size: int, seed: int,
                   max_steps: int, log):
    """Train through the common engine on `make(n, seed)` batches (fresh every epoch), validating on `val`."""
    from core.engine import EpochEvent, TensorLoader, TrainConfig, fit
    from core.captions.task import CaptionTask
    from core.engine import ComposedLoader

    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer="adamw", weight_decay=1e-4,
                         schedule="onecycle", seed=seed, grad_clip=5.0, keep_best=False, max_steps=max_steps,
                         channels_last=False)

    def report(event):
        if isinstance(event, EpochEvent):
            log(f"epoch {event.epoch}: " + " ".join(f"{k} {v:.4f}" for k, v in event.val.items())
                + f" ({event.seconds:.0f} s)")

    return fit(model, CaptionTask(MEAN, STD), ComposedLoader(make, n_train, batch_size, seed),
               TensorLoader(*val, batch_size=250, shuffle=False), config, callback=report)


def _training_card(result, started: float, **extra) -> dict:
    return {"epochs": result.epochs, "stop_reason": result.reason, "train_seconds": round(result.train_seconds, 1),
            "wall_seconds": round(time.perf_counter() - started, 1), "history": result.history, **extra}


def train_captioner(out: str | None, *, epochs: int = 12, n_train: int = 20_000, lr: float = 2e-3,
                    batch_size: int = 64, seed: int = 0, data_dir: str | None = None, eval_n: int = 1000,
                    max_steps: int = 0, log=print, **model_options) -> dict:
    """Train on freshly composed scenes every epoch (one random reference caption per scene)."""
    from core.engine.checkpoint import DatasetInfo, ModelCard, invoking_command, save_checkpoint, spec_of
    from core.data.scenes import held_out_pairs
    from core.models import build_model, count_parameters

    train_maker, test_maker = scene_makers(data_dir)
    held = held_out_pairs()
    vocab = grammar_vocabulary()

    def make(n: int, s: int):
        scenes = train_maker.make(n, seed=s, held_out=held)
        rng = np.random.default_rng(s)
        return scenes.images, vocab.pad([c[rng.integers(len(c))] for c in scenes.captions], MAX_TOKENS)

    model = build_model("captioner", in_channels=3, image_size=64, vocab_size=len(vocab), seed=seed,
                        **model_options)
    started = time.perf_counter()
    result = _fit_captioner(model, make, n_train, make(1000, 10_000 + seed), epochs=epochs, lr=lr,
                            batch_size=batch_size, seed=seed, max_steps=max_steps, log=log)
    model.eval()
    metrics = {"greedy": evaluate_scenes(model, vocab, test_maker, held, n=eval_n),
               "beam5": evaluate_scenes(model, vocab, test_maker, held, n=min(eval_n, 300), beam=5)}
    card = ModelCard(
        task="captioning", model=spec_of(model), vocabulary=vocab.words, held_out_pairs=sorted(held),
        dataset=DatasetInfo(name="scenes", sources=["mnist", "fashion_mnist", "cifar10"], channels=3, image_size=64,
                            mean=list(MEAN), std=list(STD)),
        metrics=metrics, params=count_parameters(model), command=invoking_command("core.captions.captioning"),
        training=_training_card(result, started, n_train=n_train, lr=lr, batch_size=batch_size, seed=seed))
    if out:
        save_checkpoint(out, model, card)
    return card


def load_flickr8k(folder: str | Path, size: int = 64, log=print) -> tuple[torch.Tensor, list[list[str]], list[str]]:
    """Images of a Flickr8k-layout folder, centre-cropped and resized to size x size, with their captions,
    and every problem found (malformed caption lines, unreadable images): each is skipped, never fatal."""
    from core.draw.preprocess import preprocess_photo, read_image

    corpus = read_flickr8k(folder)
    images, captions, problems = [], [], list(corpus.problems)
    for name, caps in sorted(corpus.images.items()):
        try:
            raw = read_image((Path(folder) / "Images" / name).read_bytes())
            images.append(preprocess_photo(raw, size=size, channels=3))
            captions.append(caps)
        except (OSError, ValueError) as exc:
            problems.append(f"Images/{name}: {exc}")
    for p in problems[:20]:
        log(f"skipped: {p}")
    if not images:
        raise ValueError(f"{folder}: no usable image with a caption")
    return torch.from_numpy(np.stack(images)), captions, problems


def train_on_flickr8k(folder: str | Path, out: str | None, *, epochs: int = 20, lr: float = 2e-3,
                      batch_size: int = 64, seed: int = 0, test_share: float = 0.1, min_count: int = 3,
                      max_steps: int = 0, log=print, **model_options) -> dict:
    """The same captioner on a Flickr8k-layout folder: images split (seeded) into train and test, a
    vocabulary of the train captions' words seen at least `min_count` times, BLEU on the test images."""
    from core.engine.checkpoint import DatasetInfo, ModelCard, invoking_command, save_checkpoint, spec_of
    from core.models import build_model, count_parameters

    images, captions, problems = load_flickr8k(folder, log=log)
    order = np.random.default_rng(seed).permutation(len(images))
    n_test = max(1, int(round(test_share * len(images)))) if len(images) > 1 else 0
    test, train = order[:n_test], order[n_test:]
    vocab = Vocabulary.build([c for i in train for c in captions[i]], min_count=min_count)

    def make(n: int, s: int):
        rng = np.random.default_rng(s)
        pick = rng.permutation(train)[:n]
        return images[pick], vocab.pad([captions[i][rng.integers(len(captions[i]))] for i in pick], MAX_TOKENS)

    model = build_model("captioner", in_channels=3, image_size=64, vocab_size=len(vocab), seed=seed,
                        **model_options)
    started = time.perf_counter()
    shown = test if len(test) else train[:1]
    val = (images[shown], vocab.pad([captions[i][0] for i in shown], MAX_TOKENS))
    result = _fit_captioner(model, make, len(train), val, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                            max_steps=max_steps, log=log)
    model.eval()
    hyps = [vocab.decode(d.tokens) for d in caption_all(model, images[shown])]
    refs = [captions[i] for i in shown]
    card = ModelCard(
        task="captioning", model=spec_of(model), vocabulary=vocab.words, held_out_pairs=[],
        dataset=DatasetInfo(name=f"flickr8k:{folder}", channels=3, image_size=64, mean=list(MEAN), std=list(STD),
                            train_size=len(train), test_size=len(shown),
                            extra={"images": len(images), "skipped": problems[:100]}),
        metrics={"greedy": {"test": {**bleu(refs, hyps), "exact_match": exact_match(refs, hyps), "n": len(refs)}}},
        params=count_parameters(model), command=invoking_command("core.captions.captioning"),
        training=_training_card(result, started, lr=lr, batch_size=batch_size, seed=seed))
    if out:
        save_checkpoint(out, model, card)
    return card


# --- one image at a time (the caption page) ---------------------------------------------------------------

def vocabulary_of(card) -> Vocabulary:
    return Vocabulary(card.vocabulary[len(SPECIALS):])


def caption_image(model, image: np.ndarray, *, beam: int = 1, prefix: list[int] = ()) -> list[Decoded]:
    """Captions of one (3, 64, 64) uint8 image, best first (one for greedy, up to `beam` for beam search);
    `prefix` word ids are forced first and the rest is decoded from there."""
    from core.engine.tasks import normalize

    model.eval()
    x = normalize(torch.from_numpy(np.asarray(image))[None], MEAN, STD)
    if beam <= 1:
        return [greedy(model, x, max_len=MAX_TOKENS - 2, prefix=list(prefix))]
    return beam_search(model, x, width=beam, max_len=MAX_TOKENS - 2, prefix=list(prefix))


def attention_map(alpha: np.ndarray, size: int = 64) -> np.ndarray:
    """A grid's attention weights (P,) as a (size, size) map in [0, 1] (bilinear upsampling)."""
    g = int(round(math.sqrt(len(alpha))))
    m = torch.from_numpy(np.asarray(alpha, dtype=np.float32)).view(1, 1, g, g)
    m = torch.nn.functional.interpolate(m, size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    return ((m - m.min()) / (m.max() - m.min()).clamp_min(1e-12)).numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.captions.captioning", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the captioner on composed scenes and save it with its card")
    t.add_argument("--epochs", type=int, default=12)
    t.add_argument("--n-train", type=int, default=20_000, help="scenes composed per epoch")
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--data-dir")
    t.add_argument("--flickr8k", metavar="FOLDER", help="train on a Flickr8k-layout folder (Images/ + captions.txt) "
                   "instead of the composed scenes")
    t.add_argument("--out", required=True)
    e = sub.add_parser("evaluate", help="BLEU-1..4 and exact match on fresh seen and held-out test scenes")
    e.add_argument("folder")
    e.add_argument("--n", type=int, default=1000)
    e.add_argument("--beam", type=int, default=1)
    e.add_argument("--data-dir")
    args = parser.parse_args(argv)
    from core.engine.checkpoint import CheckpointError, load_checkpoint
    from core.data import DataError

    try:
        if args.command == "train" and args.flickr8k:
            card = train_on_flickr8k(args.flickr8k, args.out, epochs=args.epochs, lr=args.lr,
                                     batch_size=args.batch_size, seed=args.seed)
            print(json.dumps(card.metrics, indent=2))
        elif args.command == "train":
            card = train_captioner(args.out, epochs=args.epochs, n_train=args.n_train, lr=args.lr,
                                   batch_size=args.batch_size, seed=args.seed, data_dir=args.data_dir)
            print(json.dumps(card.metrics, indent=2))
        else:
            model, card = load_checkpoint(args.folder)
            _, test_maker = scene_makers(args.data_dir)
            held = {tuple(p) for p in card.held_out_pairs}
            print(json.dumps(evaluate_scenes(model, Vocabulary(card.vocabulary[len(SPECIALS):]), test_maker, held,
                                             n=args.n, beam=args.beam), indent=2))
    except (DataError, CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
