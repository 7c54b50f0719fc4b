"""Image captioning: vocabulary, greedy and beam decoding, BLEU and exact match, the composed scenes and their
evaluation, and one image at a time for the caption page. Training is `core.captions.recipe`; the Flickr8k
reader is `core.captions.flickr8k`.

Decoding works on any model with `encode(images) -> (feats, state)`, `att_feat(feats)` and
`step(feats, keys, tokens, state) -> (logits, attention, state)`, so tests can pass a hand-built decoder.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

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

def scene_makers(data_dir: str | None = None, loader=None):
    """(train SceneMaker, test SceneMaker) over MNIST, Fashion-MNIST and CIFAR-10 (`loader(name, data_dir)`
    reads each: `load_dataset` by default; the pages pass `load_or_sample`)."""
    from core.data import load_dataset
    from core.data.scenes import SOURCES, SceneMaker

    sets = [(loader or load_dataset)(name, data_dir) for name in SOURCES]
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


# --- one image at a time (the caption page) ---------------------------------------------------------------

def vocabulary_of(card) -> Vocabulary:
    return Vocabulary(card.section("vocabulary")[len(SPECIALS):])


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
