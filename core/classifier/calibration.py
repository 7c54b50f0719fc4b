"""How far a classifier's confidence can be trusted: calibration measured and fixed, and "none of these".

Calibration: the expected calibration error (ECE: 15 equal-width bins of the top label's confidence, the gap
between each bin's confidence and its accuracy weighted by its share of images), the negative log-likelihood and
the Brier score, and temperature scaling (Guo et al., 2017): one number T that divides the logits, fitted by
minimising the NLL on held-out training data (the run's validation split, never the test set). A reliability
diagram is the bins themselves (confidence against accuracy, with the counts).

Out of distribution: a score that is high for images like the training data and low for anything else. The
energy score (Liu et al., 2020: T log sum exp(logits / T)) separates MNIST from Fashion-MNIST best of the scores
measured here (see the README's table, from `python -m core ood`); the maximum softmax probability (Hendrycks &
Gimpel, 2017) is reported beside it. The threshold that accepts 95 % of the in-distribution test images is
stored on the card; the pages say "this does not look like any class it knows" below it.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

BINS = 15
TPR = 0.95  # the share of in-distribution test images the stored threshold accepts
SCORES = ("energy", "msp")  # the first is the one the pages use


def reliability(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> list[dict]:
    """The reliability diagram: per equal-width confidence bin, its range, mean confidence, accuracy and count."""
    probs = F.softmax(logits.float() / temperature, dim=1)
    confidence, predicted = probs.max(1)
    right = (predicted == labels).float()
    edges = torch.linspace(0, 1, BINS + 1)
    rows = []
    for i in range(BINS):
        inside = (confidence > edges[i]) & (confidence <= edges[i + 1]) if i else (confidence <= edges[1])
        n = int(inside.sum())
        rows.append({"low": round(float(edges[i]), 4), "high": round(float(edges[i + 1]), 4), "count": n,
                     "confidence": round(float(confidence[inside].mean()), 5) if n else None,
                     "accuracy": round(float(right[inside].mean()), 5) if n else None})
    return rows


def ece(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    """Expected calibration error over BINS equal-width bins of the top label's confidence."""
    rows, n = reliability(logits, labels, temperature), len(labels)
    return float(sum(r["count"] / n * abs(r["confidence"] - r["accuracy"]) for r in rows if r["count"]))


def nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    return float(F.cross_entropy(logits.float() / temperature, labels))


def brier(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean squared distance between the probabilities and the one-hot label, summed over classes."""
    probs = F.softmax(logits.float() / temperature, dim=1)
    return float((probs - F.one_hot(labels, probs.shape[1]).float()).pow(2).sum(1).mean())


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T in [0.05, 20] that minimises the NLL of logits / T on these (held-out) images."""
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")
    logits = logits.float().detach()

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss
    optimizer.step(closure)
    return float(min(max(math.exp(float(log_t.detach())), 0.05), 20.0))


def score(logits: torch.Tensor, name: str = "energy", temperature: float = 1.0) -> torch.Tensor:
    """How much each image looks like the training data (higher: more): the energy score or the top probability."""
    logits = logits.float()
    if name == "energy":
        return temperature * torch.logsumexp(logits / temperature, dim=1)
    if name == "msp":
        return F.softmax(logits / temperature, dim=1).max(1).values
    raise ValueError(f"unknown out-of-distribution score {name!r}; known: {', '.join(SCORES)}")


def threshold(in_scores: torch.Tensor, tpr: float = TPR) -> float:
    """The score above which `tpr` of the in-distribution images lie."""
    return float(torch.quantile(in_scores.float(), 1 - tpr))


def separation(in_scores: torch.Tensor, out_scores: torch.Tensor) -> dict:
    """AUROC (in-distribution as positives) and the share of the other images accepted at 95 % TPR."""
    from sklearn.metrics import roc_auc_score

    a, b = in_scores.float().numpy(), out_scores.float().numpy()
    auroc = roc_auc_score(np.r_[np.ones(len(a)), np.zeros(len(b))], np.r_[a, b])
    return {"auroc": round(float(auroc), 5), "fpr_at_95_tpr": round(float((b >= threshold(in_scores)).mean()), 5)}


def calibration_metrics(val: tuple | None, test: tuple) -> tuple[dict, dict]:
    """(card metrics, the card's calibration section) from (logits, labels) of the validation split (None when the
    run held none out: no temperature then) and of the test split."""
    logits, labels = test
    metrics = {"ece": round(ece(logits, labels), 5), "nll": round(nll(logits, labels), 5),
               "brier": round(brier(logits, labels), 5)}
    section = {"bins": BINS, "reliability": reliability(logits, labels)}
    if val is not None and len(val[1]) >= 50:
        t = fit_temperature(*val)
        metrics.update(temperature=round(t, 4), ece_calibrated=round(ece(logits, labels, t), 5),
                       nll_calibrated=round(nll(logits, labels, t), 5), brier_calibrated=round(brier(logits, labels, t), 5))
        section.update(temperature=round(t, 4), fitted_on=f"the validation split ({len(val[1]):,} held-out training "
                       "images)", reliability_calibrated=reliability(logits, labels, t))
    section["ood"] = {"score": SCORES[0], "threshold": round(threshold(score(logits, SCORES[0])), 5), "tpr": TPR,
                      "on": f"the test split ({len(labels):,} images)"}  # the raw logits: T only rescales confidence
    return metrics, section
