"""The head taught from shots: a linear classifier on the backbone's features, and its held-out check.

Every model is ridge-penalised logistic regression on standardised features, trained full-batch with L-BFGS.
The check trains one more model per fold (leave-one-out up to LOO_MAX shots, else FOLDS stratified folds) in
the same batched problem as the final model, so the check costs about what the training does. Because an
L2-penalised linear model's weights lie in the span of its training features, every model is solved in that
span (at most shots x views numbers instead of 1904): exact, and 10-20 x less work. The out-of-fold answers
give the accuracy per class, the confusion between the classes, the temperature and the "none of these"
threshold (`core.classifier.calibration`), as for any trained classifier.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from core.classifier.calibration import calibration_metrics
from core.errors import SettingsError

LOO_MAX = 60  # up to this many shots the check is leave-one-out; more: FOLDS-fold cross-validation
FOLDS = 10
DECAY = 3e-2  # the L2 penalty (per weight, on standardised features): from 1e-3 to 30 it moves CIFAR-10 few-shot
# accuracy by under a point; 3e-2 keeps the temperature fitted on the held-out answers near 1
STEPS = 60  # L-BFGS iterations (each up to 4 evaluations)


@dataclass
class Taught:
    classes: list[str]
    weight: torch.Tensor  # (C, D): on the raw features (standardisation folded in)
    bias: torch.Tensor  # (C,)
    losses: list[float]  # the final model's training loss, per L-BFGS evaluation
    check: dict  # {"method", "accuracy", "per_class", "confusion", "shots"}
    held: torch.Tensor  # (N, C) each shot's logits from the model of the check that did not see it
    metrics: dict = field(default_factory=dict)  # calibration metrics of the out-of-fold answers
    calibration: dict = field(default_factory=dict)  # the card's calibration section (temperature, threshold)
    seconds: float = 0.0

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return features.float() @ self.weight.T + self.bias


def folds_of(labels: torch.Tensor) -> tuple[torch.Tensor, str]:
    """(fold of each shot, the check's name): leave-one-out for few shots, else stratified FOLDS-fold."""
    n = len(labels)
    if n <= LOO_MAX:
        return torch.arange(n), f"leave-one-out over {n} shots"
    fold = torch.empty(n, dtype=torch.long)
    for c in labels.unique():
        idx = (labels == c).nonzero()[:, 0]
        fold[idx] = torch.arange(len(idx)) % FOLDS
    return fold, f"{FOLDS}-fold cross-validation over {n} shots"


def _fit(z: torch.Tensor, y: torch.Tensor, use: torch.Tensor, classes: int, on_loss=None):
    """Models m = 0..M-1 each trained on the shots with use[m] (z: (N, V, R) features in the span's basis);
    returns weights (M, R, C), biases (M, C) and the losses of model 0."""
    m, (n, v, r) = len(use), z.shape
    w = torch.zeros(m, r, classes, requires_grad=True)
    b = torch.zeros(m, classes, requires_grad=True)
    target = y.repeat_interleave(v)
    share = (use.float() / use.float().sum(1, keepdim=True)).repeat_interleave(v, 1) / v  # (M, N * V), sums to 1
    flat = z.reshape(n * v, r)
    losses: list[float] = []
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=STEPS, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-6, tolerance_change=1e-9)

    def closure():
        opt.zero_grad()
        logits = torch.einsum("kr,mrc->mkc", flat, w) + b[:, None]  # (M, N * V, C)
        ce = F.cross_entropy(logits.reshape(-1, classes), target.repeat(m), reduction="none").view(m, -1)
        per_model = (ce * share).sum(1) + DECAY / 2 * (w ** 2).sum((1, 2))
        loss = per_model.sum()
        loss.backward()
        losses.append(float(per_model[0].detach()))
        if on_loss is not None:
            on_loss(losses)
        return loss

    opt.step(closure)
    return w.detach(), b.detach(), losses


def teach(features: torch.Tensor, labels: torch.Tensor, classes: list[str], on_loss=None) -> Taught:
    """Train the head on (N, V, D) features of shots labelled 0..C-1 and check it on held-out shots."""
    began, n_classes = time.perf_counter(), len(classes)
    counts = torch.bincount(labels, minlength=n_classes)
    if (counts < 2).any():
        few = [classes[i] for i in (counts < 2).nonzero()[:, 0].tolist()]
        raise SettingsError(f"Every class needs at least 2 shots; add more to: {', '.join(few)}.")
    n, v, d = features.shape
    flat = features.reshape(n * v, d).float()
    mean, scale = flat.mean(0), flat.std(0).clamp_min(1e-3)
    centred = (flat - mean) / scale
    _, sv, basis = torch.linalg.svd(centred, full_matrices=False)  # the span of the training features
    basis = basis[sv > sv[0] * 1e-6]  # (R, D)
    z = (centred @ basis.T).view(n, v, -1)
    fold, method = folds_of(labels)
    folds = int(fold.max()) + 1
    use = torch.cat([torch.ones(1, n, dtype=torch.bool), fold[None] != torch.arange(folds)[:, None]])
    w, b, losses = _fit(z, labels, use, n_classes, on_loss)
    held = torch.einsum("nr,nrc->nc", z[:, 0], w[1 + fold]) + b[1 + fold]  # each shot by the model that left it out
    weight = (basis.T @ w[0]).T / scale  # (C, D) on raw features
    bias = b[0] - weight @ mean
    check = _check(held, labels, classes, method)
    metrics, section = calibration_metrics((held, labels), (held, labels))
    section["ood"]["on"] = f"the held-out answers of the {method}"
    if "temperature" in section:
        section["fitted_on"] = section["ood"]["on"]
    else:
        section["without_temperature"] = "no temperature: fitting one needs at least 50 held-out shots"
    return Taught(classes, weight, bias, losses, check, held, metrics, section, time.perf_counter() - began)


def _check(held: torch.Tensor, labels: torch.Tensor, classes: list[str], method: str) -> dict:
    guess = held.argmax(1)
    k = len(classes)
    confusion = torch.zeros(k, k, dtype=torch.long)
    confusion.index_put_((labels, guess), torch.ones_like(labels), accumulate=True)
    per_class = {c: round(float(confusion[i, i] / confusion[i].sum().clamp_min(1)), 4) for i, c in enumerate(classes)}
    return {"method": method, "accuracy": round(float((guess == labels).float().mean()), 4),
            "per_class": per_class, "confusion": confusion.tolist(), "shots": int(len(labels))}
