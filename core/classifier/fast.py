"""The project's speed recipes: the settings behind `python -m core train --recipe NAME`, the Trainer's "Fast ..."
presets and the rows of `bench/train_speed.py`. Each is a dict of a registry model, its options, a `TrainConfig`,
the augmentation and the label smoothing (`core.classifier.recipe.from_recipe` makes it a classifier recipe), so the
CLI, the presets and the benchmark train exactly the same run.
"""
from __future__ import annotations

from core.data import AugmentConfig
from core.engine import TrainConfig

# The benchmark's speed recipe: fast_cnn, Nesterov SGD with a one-cycle schedule over 3 epochs, 1-pixel shifts.
FAST_MNIST_RECIPE = {
    "model": "fast_cnn",
    "config": TrainConfig(epochs=3, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4,
                          schedule="onecycle"),
    "augment": AugmentConfig(translate=1),
}

# Both MNIST speed targets with one recipe: fast_cnn twice as wide, bfloat16, batch 256, label smoothing 0.1, 2-pixel
# shifts, 4 epochs (99.0 % after ~5 s and 99.5 % after ~16 s of training on 2 cores; bench/train_speed.py).
FAST_MNIST_BF16_RECIPE = {
    "model": "fast_cnn", "model_options": {"widths": [48, 96, 192]},
    "config": TrainConfig(epochs=4, batch_size=256, optimizer="sgd", lr=0.2, momentum=0.9, weight_decay=5e-4,
                          schedule="onecycle", precision="bf16"),
    "augment": AugmentConfig(translate=2),
    "label_smoothing": 0.1,
}


# CIFAR-10 from scratch on a CPU: the airbench94 network and its training (SGD with Nesterov momentum 0.85 at the
# mean-loss equivalent of its learning rate and decay, BatchNorm shifts 64x faster, label smoothing 0.2, flips and
# 2-pixel shifts, bfloat16), with one-cycle steps; about 50 s an epoch on 2 cores with AMX (the shipped
# checkpoints/cifar10_fast_cifar: 900 s, 89.7 % test accuracy, 90.6 % with flips).
FAST_CIFAR_RECIPE = {
    "model": "fast_cifar",
    "config": TrainConfig(epochs=18, batch_size=512, optimizer="sgd", lr=0.75, momentum=0.85, weight_decay=0.00133,
                          norm_lr_scale=64.0, schedule="onecycle", precision="bf16"),
    "augment": AugmentConfig(translate=2, hflip=True),
    "label_smoothing": 0.2,
}
# Fashion-MNIST: the same network, narrower, on 28x28 grey clothes (mirrored clothes keep their labels).
FAST_FASHION_RECIPE = {
    "model": "fast_cifar", "model_options": {"widths": [32, 96, 96]},
    "config": TrainConfig(epochs=12, batch_size=256, optimizer="sgd", lr=0.375, momentum=0.85, weight_decay=0.00133,
                          norm_lr_scale=64.0, schedule="onecycle", precision="bf16"),
    "augment": AugmentConfig(translate=2, hflip=True),
    "label_smoothing": 0.2,
}
RECIPES = {"fast_mnist": ("mnist", FAST_MNIST_RECIPE), "fast_mnist_bf16": ("mnist", FAST_MNIST_BF16_RECIPE),
           "fast_cifar10": ("cifar10", FAST_CIFAR_RECIPE), "fast_fashion": ("fashion_mnist", FAST_FASHION_RECIPE)}
