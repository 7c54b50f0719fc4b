"""The training engine on real `digits` data: learning, stopping, early stopping, NaN, schedules."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.data import load_dataset
from core.engine import RunControl, TensorLoader, TrainConfig, fit
from core.models import build_model
from core.engine.tasks import ClassificationTask


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def setup(digits, model="seed004_cnn", batch_size=64, val=True):
    torch.manual_seed(0)
    net = build_model(model, in_channels=1, image_size=8, num_classes=10)
    task = ClassificationTask(digits.mean, digits.std)
    train = TensorLoader(digits.train_x, digits.train_y, batch_size=batch_size)
    test = TensorLoader(digits.test_x, digits.test_y, batch_size=500, shuffle=False) if val else None
    return net, task, train, test


def test_loss_goes_down_and_accuracy_rises(digits):
    net, task, train, test = setup(digits)
    events = []
    result = fit(net, task, train, test, TrainConfig(epochs=4, lr=3e-3), callback=events.append)
    epochs = [e for e in events if e.kind == "epoch"]
    assert epochs[-1].train["loss"] < 0.5 * epochs[0].train["loss"]
    assert epochs[-1].val["accuracy"] > 0.85 and result.reason == "completed"
    steps = [e for e in events if e.kind == "step"]
    assert len(steps) == result.steps == 4 * len(train)
    assert all(s.images_per_s > 0 and s.lr > 0 for s in steps) and events[-1].kind == "end"
    assert steps[-1].progress == pytest.approx(1.0)


def test_cooperative_stop(digits):
    net, task, train, test = setup(digits)
    control = RunControl()

    def on_event(event):
        if event.kind == "step" and event.step == 3:
            control.stop()

    result = fit(net, task, train, test, TrainConfig(epochs=5), callback=on_event, control=control)
    assert result.reason == "stopped" and result.steps == 3 and result.epochs == 1


def test_early_stopping_and_keep_best(digits):
    net, task, train, test = setup(digits)
    # lr 0 after a first good epoch cannot improve: early stopping fires after `patience` stale epochs
    control = RunControl()
    events = []

    def on_event(event):
        events.append(event)
        if event.kind == "epoch" and event.epoch == 2:
            control.set_lr(0.0)

    result = fit(net, task, train, test, TrainConfig(epochs=20, lr=3e-3, early_stopping=2), on_event, control)
    assert result.reason == "early_stopping" and result.epochs <= 5
    assert result.best_epoch <= result.epochs - 2
    assert all(e.lr == 0.0 for e in events if e.kind == "step" and e.epoch > 3)


def test_keep_best_restores_best_weights(digits):
    net, task, train, test = setup(digits)
    control = RunControl()

    def on_event(event):
        if event.kind == "epoch" and event.epoch == 2:
            control.set_lr(5.0)  # wreck the model in epoch 3

    result = fit(net, task, train, test, TrainConfig(epochs=3, lr=3e-3, monitor="val_accuracy"), on_event, control)
    from core.engine import evaluate
    final = evaluate(net, task, test)["accuracy"]
    if result.reason == "completed":
        assert result.best_epoch == 2 and "Restored" in result.message
    assert final == pytest.approx(result.best_value)


class NanAfter(ClassificationTask):
    def __init__(self, *a, after: int, **k):
        super().__init__(*a, **k)
        self.after, self.calls = after, 0

    def training_loss(self, model, batch):
        loss, stats = super().training_loss(model, batch)
        self.calls += 1
        return (loss * float("nan") if self.calls > self.after else loss), stats


def test_nan_loss_stops_with_advice(digits):
    net, _, train, test = setup(digits)
    task = NanAfter(digits.mean, digits.std, after=len(train) + 5)
    events = []
    result = fit(net, task, train, test, TrainConfig(epochs=5), callback=events.append)
    assert result.reason == "diverged" and "learning rate" in result.message
    assert events[-1].kind == "end" and events[-1].reason == "diverged"
    assert all(torch.isfinite(p).all() for p in net.parameters())
    assert result.steps == len(train) + 5


def test_max_steps_dry_run(digits):
    net, task, train, _ = setup(digits, val=False)
    result = fit(net, task, train, None, TrainConfig(epochs=3, max_steps=2))
    assert result.reason == "max_steps" and result.steps == 2


def test_seeded_runs_are_identical(digits):
    losses = []
    for _ in range(2):
        net, task, train, _ = setup(digits, val=False)
        events = []
        fit(net, task, train, None, TrainConfig(epochs=1, seed=7), callback=events.append)
        losses.append([e.loss for e in events if e.kind == "step"])
    assert losses[0] == losses[1]


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_per_step_schedules(digits, schedule):
    net, task, train, _ = setup(digits, val=False)
    events = []
    fit(net, task, train, None, TrainConfig(epochs=3, lr=1e-2, schedule=schedule, warmup_epochs=1,
                                            optimizer="sgd"), callback=events.append)
    lrs = [e.lr for e in events if e.kind == "step"]
    peak = max(lrs)
    assert peak == pytest.approx(1e-2, rel=0.05) and lrs[0] < peak and lrs[-1] < 0.05 * peak
    assert 0 < lrs.index(peak) < len(lrs) - 1


def test_plateau_schedule_cuts_lr(digits):
    net, task, train, test = setup(digits, model="mlp")  # no BatchNorm: a tiny LR really changes nothing
    result = fit(net, task, train, test, TrainConfig(epochs=4, lr=1e-5, schedule="plateau", plateau_patience=0,
                                                     plateau_factor=0.5, optimizer="sgd", momentum=0.0))
    lrs = [h["lr"] for h in result.history]
    assert lrs == pytest.approx([1e-5, 5e-6, 2.5e-6, 1.25e-6])  # epoch 1 improves on nothing; then halvings


def test_mixup_cutmix_smoothing_and_augmentation_train(digits):
    from core.data import AugmentConfig
    net, _, train, test = setup(digits)
    task = ClassificationTask(digits.mean, digits.std, augment=AugmentConfig(translate=1, rotate=10),
                              label_smoothing=0.1, mixup_alpha=0.4, cutmix_alpha=1.0)
    result = fit(net, task, train, test, TrainConfig(epochs=3, lr=3e-3))
    assert math.isfinite(result.history[-1]["train_loss"]) and result.history[-1]["val_accuracy"] > 0.5


def test_weight_average_is_what_the_run_returns(digits):
    net, task, train, test = setup(digits)
    events = []
    result = fit(net, task, train, test, TrainConfig(epochs=3, lr=3e-3, ema_decay=0.9, keep_best=False),
                 callback=events.append)
    from core.engine import evaluate
    last_val = [e for e in events if e.kind == "epoch"][-1].val["accuracy"]
    assert evaluate(net, task, test)["accuracy"] == pytest.approx(last_val)  # validated weights == final ones
    assert result.history[-1]["val_accuracy"] > 0.8


def test_cross_validation_folds_partition_the_training_set():
    from core.classifier.crossval import cross_validate
    from core.data import load_dataset
    from core.classifier import ClassifierRecipe

    spec = ClassifierRecipe(dataset="digits", model="mlp", config=TrainConfig(epochs=2, lr=3e-3, keep_best=True,
                                                                        early_stopping=1))
    events = []
    cv = cross_validate(spec, 4, events.append)
    folds = [e for e in events if e.kind == "fold"]
    assert [f.fold for f in folds] == [1, 2, 3, 4] and cv["completed"] == 4
    assert sum(r["n"] for r in cv["folds"]) == len(load_dataset("digits").train_x)  # every image held out once
    assert cv["mean"] == pytest.approx(np.mean([r["accuracy"] for r in cv["folds"]]))
    assert cv["std"] > 0 and 0.7 < cv["mean"] <= 1
    steps = [e.step for e in events if e.kind == "step"]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)  # numbered on across folds
    with pytest.raises(ValueError):
        cross_validate(spec, 1)


def test_classification_report_agrees_with_scikit_learn():
    """CNN Studio's one hand-written metric (accuracy, per-class accuracy, confusion) against the reference."""
    from sklearn.metrics import accuracy_score, confusion_matrix, recall_score

    from core.classifier.evaluate import classification_report

    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(0, 5, 500))
    logits = torch.from_numpy(rng.normal(size=(500, 5))) + 2 * torch.nn.functional.one_hot(labels, 5)
    report = classification_report(logits, labels, list("abcde"))
    pred = logits.argmax(1).numpy()
    assert report["accuracy"] == pytest.approx(accuracy_score(labels.numpy(), pred))
    assert report["confusion"] == confusion_matrix(labels.numpy(), pred, labels=range(5)).tolist()
    recall = recall_score(labels.numpy(), pred, average=None, labels=range(5))
    assert list(report["per_class"].values()) == pytest.approx(recall.round(4).tolist())


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "constant"])
def test_normalisation_layers_can_learn_faster_with_the_same_decay(digits, schedule):
    from core.engine.optim import make_optimizer, param_groups, set_lr

    net, task, train, _ = setup(digits, model="fast_cnn", val=False)
    groups = param_groups(net, lr=0.1, weight_decay=1e-3, norm_lr_scale=64)
    norm = {id(p) for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters()}
    assert {id(p) for p in groups[1]["params"]} == norm and not norm & {id(p) for p in groups[0]["params"]}
    optimizer = make_optimizer(groups, name="sgd", lr=0.1, weight_decay=1e-3, momentum=0.9)
    assert optimizer.param_groups[1]["lr"] * optimizer.param_groups[1]["weight_decay"] == pytest.approx(1e-4)
    set_lr(optimizer, 0.01)  # the page's new learning rate keeps the ratio
    assert optimizer.param_groups[1]["lr"] == pytest.approx(0.64)
    events = []
    result = fit(net, task, train, None, TrainConfig(epochs=2, lr=0.02, optimizer="sgd", schedule=schedule,
                                                     norm_lr_scale=4), callback=events.append)
    assert result.reason == "completed" and all(math.isfinite(e.loss) for e in events if e.kind == "step")


def test_bf16_autocast_trains_on_cpu(digits):
    net, task, train, test = setup(digits, model="fast_cnn")
    result = fit(net, task, train, test, TrainConfig(epochs=3, lr=3e-3, schedule="onecycle", precision="bf16"))
    assert result.reason == "completed" and result.history[-1]["val_accuracy"] > 0.8
