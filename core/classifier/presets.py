"""The Trainer's classifier recipes: the seeds' settings and the project's own, and the groups that train several
models one after the other.

The seed recipes follow the seed projects' published settings (their networks, optimizers, schedules, early
stopping and augmentation); data sets not on this machine fail at start with the data layer's message naming
the files to put in the data directory. Groups end on one screen comparing their runs (seed 004's question:
how much does a CNN beat an MLP, in accuracy and time, and which digits or clothes does each confuse?).
"""
from __future__ import annotations

import dataclasses

from core.classifier.fast import RECIPES
from core.classifier.recipe import ClassifierRecipe, from_recipe
from core.data import AugmentConfig
from core.engine import TrainConfig
from core.engine.recipe import register_presets


def fast(name: str) -> ClassifierRecipe:
    """A speed recipe of `core.classifier.fast` (the CLI's `--recipe name`) as a Trainer preset."""
    return from_recipe(*RECIPES[name])


PRESETS: dict[str, object] = {
    "Quick demo (digits)": ClassifierRecipe(
        dataset="digits", model="fast_cnn", val_split=0.1,
        config=TrainConfig(epochs=15, batch_size=64, optimizer="adam", lr=3e-3, schedule="onecycle")),
    "Fast MNIST (the benchmark recipe)": fast("fast_mnist"),
    "Fast MNIST, 99.5 % in 20 s (bfloat16)": fast("fast_mnist_bf16"),
    "Fast Fashion-MNIST, 93 % in 3 min (bfloat16)": fast("fast_fashion"),
    "Fast CIFAR-10, 90 % in 15 min (bfloat16)": fast("fast_cifar10"),
    # seed 003's own small nets, with the figures it reports in the name, so a run shows its claim beside ours
    "Seed 003 MNIST: one conv layer of 8 kernels, 5-fold (reported 97.4 %)": ClassifierRecipe(
        dataset="mnist", model="seed003_cnn", folds=5,
        config=TrainConfig(epochs=5, batch_size=64, optimizer="adam", lr=1e-3)),
    "Seed 003 CIFAR-10: 6 conv layers, BatchNorm, dropout (reported 86.49 %)": ClassifierRecipe(
        dataset="cifar10", model="seed001_cnn", val_split=0.1, augment=AugmentConfig(translate=4, hflip=True),
        config=TrainConfig(epochs=50, batch_size=64, optimizer="adam", lr=1e-3, schedule="plateau",
                           plateau_patience=3, plateau_factor=0.5, early_stopping=8, keep_best=True)),
    "Seed 004 CNN (MNIST)": ClassifierRecipe(
        dataset="mnist", model="seed004_cnn", val_split=0.1,
        config=TrainConfig(epochs=5, batch_size=64, optimizer="adam", lr=1e-3)),
    "Seed 004 MLP (MNIST)": ClassifierRecipe(
        dataset="mnist", model="mlp", val_split=0.1,
        config=TrainConfig(epochs=5, batch_size=64, optimizer="adam", lr=1e-3)),
    "Seed 001 MNIST": ClassifierRecipe(
        dataset="mnist", model="seed001_cnn", val_split=0.1, augment=AugmentConfig(translate=2, rotate=10, scale=0.1),
        config=TrainConfig(epochs=20, batch_size=128, optimizer="adam", lr=1e-3, schedule="plateau",
                           plateau_patience=2, plateau_factor=0.5, early_stopping=4, keep_best=True)),
    "Seed 001 CIFAR-10": ClassifierRecipe(
        dataset="cifar10", model="seed001_cnn", val_split=0.1, augment=AugmentConfig(translate=4, hflip=True),
        config=TrainConfig(epochs=40, batch_size=128, optimizer="adam", lr=1e-3, schedule="plateau",
                           plateau_patience=3, plateau_factor=0.5, early_stopping=6, keep_best=True)),
    "Seed 003 CIFAR-100 (cosine with warm-up)": ClassifierRecipe(
        dataset="cifar100", model="resnet_small", val_split=0.1, augment=AugmentConfig(translate=4, hflip=True),
        label_smoothing=0.1,
        config=TrainConfig(epochs=30, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=5e-4,
                           schedule="cosine", warmup_epochs=2)),
    # Transfer learning: the ImageNet-pretrained EfficientNet-Lite0 reads CIFAR-10 resized to 160 px; its frozen
    # part runs once per image and is cached (core.classifier.transfer), so epochs take seconds and a second run starts at once.
    "Transfer: pretrained features + linear head (CIFAR-10)": ClassifierRecipe(
        dataset="cifar10", model="efficientnet_lite0", model_options={"resolution": 160}, val_split=0.1,
        config=TrainConfig(epochs=30, batch_size=256, optimizer="adam", lr=1e-3, weight_decay=1e-4,
                           schedule="cosine")),
    "Transfer: fine-tune the last 2 blocks (CIFAR-10)": ClassifierRecipe(
        dataset="cifar10", model="efficientnet_lite0", model_options={"resolution": 160, "fine_tune": 2},
        val_split=0.1, config=TrainConfig(epochs=3, batch_size=128, optimizer="adam", lr=1e-3, schedule="onecycle")),
}


# Groups: several runs one after the other, ending on their comparison.
GROUPS: dict[str, list[ClassifierRecipe]] = {
    f"Seed 004 CNN vs MLP ({label})": [dataclasses.replace(PRESETS[f"Seed 004 {m} (MNIST)"], dataset=dataset)
                                       for m in ("CNN", "MLP")]
    for dataset, label in (("mnist", "MNIST"), ("fashion_mnist", "Fashion-MNIST"))
}
PRESETS.update(GROUPS)
register_presets(ClassifierRecipe.kind, PRESETS)
