"""Named training recipes for the trainer page: the seeds' settings and the project's own, for every model kind.

Owns one table of recipes: classifiers (`TrainSpec`), autoencoders, the composer's two models and the
captioner. The seed recipes follow the seed projects' published settings (their
networks, optimizers, schedules, early stopping and augmentation); data sets not on this machine fail
at start with the data layer's message naming the files to put in the data directory.
"""
from __future__ import annotations

import copy
import dataclasses

from core.captions.recipe import CaptionerRecipe
from core.composer.recipes import CRNNRecipe, PairRecipe
from core.data import AugmentConfig
from core.engine import TrainConfig
from core.latent.recipe import AutoencoderRecipe
from core.trainer.classify import TrainSpec
from core.trainer.fast import RECIPES


def from_recipe(dataset: str, recipe: dict, **settings) -> TrainSpec:
    """A recipe dict (model, model_options, config, augment, label_smoothing) as a spec, with `settings` on top."""
    return TrainSpec(dataset=dataset, model=recipe["model"], model_options=dict(recipe.get("model_options", {})),
                     config=dataclasses.replace(recipe["config"]),
                     augment=dataclasses.replace(recipe.get("augment", AugmentConfig())),
                     label_smoothing=recipe.get("label_smoothing", 0.0), **settings)


def fast(name: str) -> TrainSpec:
    """A speed recipe of `core.trainer.fast` (the CLI's `--recipe name`) as a Trainer spec."""
    return from_recipe(*RECIPES[name])


PRESETS: dict[str, object] = {
    "Quick demo (digits)": TrainSpec(
        dataset="digits", model="fast_cnn", val_split=0.1,
        config=TrainConfig(epochs=15, batch_size=64, optimizer="adam", lr=3e-3, schedule="onecycle")),
    "Fast MNIST (the benchmark recipe)": fast("fast_mnist"),
    "Fast MNIST, 99.5 % in 20 s (bfloat16)": fast("fast_mnist_bf16"),
    "Fast Fashion-MNIST, 93 % in 3 min (bfloat16)": fast("fast_fashion"),
    "Fast CIFAR-10, 90 % in 15 min (bfloat16)": fast("fast_cifar10"),
    # seed 003's own small nets, with the figures it reports in the name, so a run shows its claim beside ours
    "Seed 003 MNIST: one conv layer of 8 kernels, 5-fold (reported 97.4 %)": TrainSpec(
        dataset="mnist", model="seed003_cnn", folds=5,
        config=TrainConfig(epochs=5, batch_size=64, optimizer="adam", lr=1e-3)),
    "Seed 003 CIFAR-10: 6 conv layers, BatchNorm, dropout (reported 86.49 %)": TrainSpec(
        dataset="cifar10", model="seed001_cnn", val_split=0.1, augment=AugmentConfig(translate=4, hflip=True),
        config=TrainConfig(epochs=50, batch_size=64, optimizer="adam", lr=1e-3, schedule="plateau",
                           plateau_patience=3, plateau_factor=0.5, early_stopping=8, keep_best=True)),
    "Seed 004 CNN (MNIST)": TrainSpec(
        dataset="mnist", model="seed004_cnn", val_split=0.1,
        config=TrainConfig(epochs=5, batch_size=64, optimizer="adam", lr=1e-3)),
    "Seed 004 MLP (MNIST)": TrainSpec(
        dataset="mnist", model="mlp", val_split=0.1,
        config=TrainConfig(epochs=5, batch_size=64, optimizer="adam", lr=1e-3)),
    "Seed 001 MNIST": TrainSpec(
        dataset="mnist", model="seed001_cnn", val_split=0.1, augment=AugmentConfig(translate=2, rotate=10, scale=0.1),
        config=TrainConfig(epochs=20, batch_size=128, optimizer="adam", lr=1e-3, schedule="plateau",
                           plateau_patience=2, plateau_factor=0.5, early_stopping=4, keep_best=True)),
    "Seed 001 CIFAR-10": TrainSpec(
        dataset="cifar10", model="seed001_cnn", val_split=0.1, augment=AugmentConfig(translate=4, hflip=True),
        config=TrainConfig(epochs=40, batch_size=128, optimizer="adam", lr=1e-3, schedule="plateau",
                           plateau_patience=3, plateau_factor=0.5, early_stopping=6, keep_best=True)),
    "Seed 003 CIFAR-100 (cosine with warm-up)": TrainSpec(
        dataset="cifar100", model="resnet_small", val_split=0.1, augment=AugmentConfig(translate=4, hflip=True),
        label_smoothing=0.1,
        config=TrainConfig(epochs=30, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=5e-4,
                           schedule="cosine", warmup_epochs=2)),
    # Transfer learning: the ImageNet-pretrained EfficientNet-Lite0 reads CIFAR-10 resized to 160 px; its frozen
    # part runs once per image and is cached (core.trainer.transfer), so epochs take seconds and a second run starts at once.
    "Transfer: pretrained features + linear head (CIFAR-10)": TrainSpec(
        dataset="cifar10", model="efficientnet_lite0", model_options={"resolution": 160}, val_split=0.1,
        config=TrainConfig(epochs=30, batch_size=256, optimizer="adam", lr=1e-3, weight_decay=1e-4,
                           schedule="cosine")),
    "Transfer: fine-tune the last 2 blocks (CIFAR-10)": TrainSpec(
        dataset="cifar10", model="efficientnet_lite0", model_options={"resolution": 160, "fine_tune": 2},
        val_split=0.1, config=TrainConfig(epochs=3, batch_size=128, optimizer="adam", lr=1e-3, schedule="onecycle")),
}


# The other model kinds, each with the settings its shipped checkpoint was made with, and quick versions that
# train in seconds on small data (the bundled digits, a few thousand composed images) to watch a kind learn.
PRESETS.update({
    "Quick autoencoder (digits)": AutoencoderRecipe(dataset="digits", epochs=12, latent_dim=16, widths=(16, 32, 64),
                                                    batch_size=64, lr=3e-3),
    "Autoencoder (Fashion-MNIST)": AutoencoderRecipe(epochs=6),
    "VAE (Fashion-MNIST)": AutoencoderRecipe(model="conv_vae", epochs=6, kl_weight=0.05),
    "Two digits and their positions: multi-task CNN (Multi-MNIST)": PairRecipe(epochs=5),
    "Quick two-digit CNN (4,000 pairs)": PairRecipe(epochs=3, n_train=4000, channels=(16, 32, 64), hidden=64,
                                                    eval_n=1000),
    "Digit strings: CRNN + CTC (Multi-MNIST)": CRNNRecipe(epochs=6, n_train=40_000),
    "Captions: attention captioner (scenes)": CaptionerRecipe(epochs=10),
})


def preset(name: str):
    """A fresh copy of a preset (callers may change it); for a group, its first run's spec."""
    return copy.deepcopy(PRESETS[name] if name in PRESETS else GROUPS[name][0])


# Recipes that train several runs one after the other and end on their comparison (seed 004's question:
# how much does a CNN beat an MLP, in accuracy and time, and which digits/clothes does each confuse?).
GROUPS: dict[str, list[TrainSpec]] = {
    f"Seed 004 CNN vs MLP ({label})": [dataclasses.replace(PRESETS[f"Seed 004 {m} (MNIST)"], dataset=dataset)
                                       for m in ("CNN", "MLP")]
    for dataset, label in (("mnist", "MNIST"), ("fashion_mnist", "Fashion-MNIST"))
}


def group(name: str, epochs: int | None = None) -> list[TrainSpec]:
    """Fresh copies of a group's specs, optionally all with another number of epochs."""
    return [dataclasses.replace(s, config=dataclasses.replace(s.config, epochs=epochs or s.config.epochs),
                                augment=dataclasses.replace(s.augment)) for s in GROUPS[name]]
