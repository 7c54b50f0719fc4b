"""CTC decoding: greedy (best path), prefix beam search, and the forced alignment of a labelling.

Owns turning per-column class probabilities (T, C), class 0 = blank, into label sequences. Labels are
returned as class indices (the CRNN's digit d is class d + 1; `to_digits` converts). All functions take
log-probabilities; beam search works in log space, so long inputs do not underflow.
"""
from __future__ import annotations

import numpy as np
import torch

BLANK = 0
NEG_INF = -np.inf


def _as_log_probs(log_probs) -> np.ndarray:
    lp = log_probs.detach().cpu().numpy() if isinstance(log_probs, torch.Tensor) else np.asarray(log_probs)
    if lp.ndim != 2:
        raise ValueError(f"expected (T, C) log-probabilities, got shape {lp.shape}")
    return lp.astype(np.float64)


def collapse(path) -> tuple[int, ...]:
    """Merge repeated classes, then drop blanks: (1, 1, 0, 1, 2, 2) -> (1, 1, 2)."""
    out, prev = [], None
    for c in path:
        c = int(c)
        if c != prev and c != BLANK:
            out.append(c)
        prev = c
    return tuple(out)


def greedy_decode(log_probs) -> tuple[tuple[int, ...], np.ndarray]:
    """Best path decoding: (labels, the per-column argmax path)."""
    path = _as_log_probs(log_probs).argmax(1)
    return collapse(path), path


def greedy_batch(log_probs: torch.Tensor) -> list[tuple[int, ...]]:
    """Greedy decoding of a batch (B, T, C) as digits (class - 1) per row."""
    paths = log_probs.argmax(2).cpu().numpy()
    return [to_digits(collapse(p)) for p in paths]


def to_digits(labels) -> tuple[int, ...]:
    return tuple(int(c) - 1 for c in labels)


def reading_log_prob(log_probs, labels) -> float:
    """log P(labels | image), summed over every alignment that collapses to `labels` (the CTC forward algorithm,
    through torch's ctc_loss): the exact probability of a reading, whatever a beam search kept of it."""
    lp = torch.as_tensor(_as_log_probs(log_probs), dtype=torch.float64)
    if not labels:
        return float(lp[:, BLANK].sum())
    targets = torch.tensor([list(labels)], dtype=torch.long)
    loss = torch.nn.functional.ctc_loss(lp[:, None], targets, torch.tensor([lp.shape[0]]),
                                        torch.tensor([len(labels)]), blank=BLANK, reduction="sum", zero_infinity=False)
    return -float(loss)


def _logadd(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    hi, lo = (a, b) if a > b else (b, a)
    return hi + np.log1p(np.exp(lo - hi))


def beam_decode(log_probs, beam_width: int = 8) -> list[tuple[tuple[int, ...], float]]:
    """CTC prefix beam search: the `beam_width` most probable labellings with their log-probability (summed
    over all the paths that collapse to them), best first. Width 1 keeps a single prefix per step."""
    lp = _as_log_probs(log_probs)
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}  # prefix -> (ends in blank, not)
    for t in range(lp.shape[0]):
        step = lp[t]
        nxt: dict[tuple[int, ...], list[float]] = {}

        def add(prefix, p_b=NEG_INF, p_nb=NEG_INF):
            cur = nxt.setdefault(prefix, [NEG_INF, NEG_INF])
            cur[0], cur[1] = _logadd(cur[0], p_b), _logadd(cur[1], p_nb)

        for prefix, (p_b, p_nb) in beams.items():
            total = _logadd(p_b, p_nb)
            add(prefix, p_b=total + step[BLANK])  # a blank keeps the prefix
            if prefix:
                add(prefix, p_nb=p_nb + step[prefix[-1]])  # the last label repeated, not separated: merged
            for c in range(lp.shape[1]):
                if c == BLANK:
                    continue
                if prefix and c == prefix[-1]:
                    add(prefix + (c,), p_nb=p_b + step[c])  # a repeat needs a blank in between
                else:
                    add(prefix + (c,), p_nb=total + step[c])
        ranked = sorted(nxt.items(), key=lambda kv: _logadd(*kv[1]), reverse=True)
        beams = {prefix: (v[0], v[1]) for prefix, v in ranked[:beam_width]}
    final = [(prefix, _logadd(*v)) for prefix, v in beams.items()]
    return sorted(final, key=lambda pv: pv[1], reverse=True)


def align(log_probs, labels) -> np.ndarray:
    """The most probable path (T,) that collapses to `labels` (Viterbi over the blank-interleaved labels):
    which column emits which label. Raises ValueError if no path of length T can produce `labels`."""
    lp = _as_log_probs(log_probs)
    ext = [BLANK]
    for c in labels:
        ext += [int(c), BLANK]
    t_len, s_len = lp.shape[0], len(ext)
    score = np.full((t_len, s_len), NEG_INF)
    back = np.zeros((t_len, s_len), dtype=np.int64)
    score[0, 0] = lp[0, ext[0]]
    if s_len > 1:
        score[0, 1] = lp[0, ext[1]]
    for t in range(1, t_len):
        for s in range(s_len):
            options = [(score[t - 1, s], s)]
            if s >= 1:
                options.append((score[t - 1, s - 1], s - 1))
            if s >= 2 and ext[s] != BLANK and ext[s] != ext[s - 2]:
                options.append((score[t - 1, s - 2], s - 2))
            best, frm = max(options, key=lambda o: o[0])
            score[t, s] = best + lp[t, ext[s]]
            back[t, s] = frm
    ends = [s_len - 1] + ([s_len - 2] if s_len > 1 else [])
    s = max(ends, key=lambda e: score[-1, e])
    if score[-1, s] == NEG_INF:
        raise ValueError(f"no alignment of {len(labels)} labels fits {t_len} columns")
    path = np.zeros(t_len, dtype=np.int64)
    for t in range(t_len - 1, -1, -1):
        path[t] = ext[s]
        s = back[t, s]
    return path
