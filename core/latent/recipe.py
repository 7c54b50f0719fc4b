"""The autoencoder recipe (conv AE or VAE on any image data set) and the latent-probe table, with their CLI.

    python -m core train-autoencoder --model conv_vae --dataset fashion_mnist --epochs 6 --kl-weight 0.05 --out DIR
    python -m core probe checkpoints/fashion_ae checkpoints/fashion_vae   # writes the table into the cards

Owns `AutoencoderRecipe` (settings, data -> model -> task, test MSE / PSNR / SSIM with MSE as the headline,
sample reconstructions after every epoch for the live view) and `run_probe` (seed 000's claim, measured).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch

from core.data import AugmentConfig, load_dataset
from core.engine import Event, RunControl, TensorLoader, TrainConfig
from core.engine.checkpoint import DatasetInfo, ModelCard, load_checkpoint, spec_of, update_card
from core.engine.recipe import Prepared, recipe_command, register_recipe
from core.latent.autoencode import as_float, encode_all, probe, reconstruct, reconstruction_report
from core.latent.task import ReconstructionTask
from core.models import build_model, count_parameters
from core.progress import add_train_verb, run_cli, train_from_args
from core.viz import image_grid


@register_recipe
@dataclass
class AutoencoderRecipe:
    kind: ClassVar[str] = "autoencoder"
    live: ClassVar[tuple] = ("mse", "reconstruction MSE", False)
    model: str = "conv_ae"  # conv_ae | conv_vae
    dataset: str = "fashion_mnist"  # any registry data set
    epochs: int = 8  # passes over the training images
    latent_dim: int = 64  # size of the code
    kl_weight: float = 0.0  # VAE only: weight of the KL term (per pixel); 0.05 keeps samples and reconstructions
    lr: float = 2e-3  # peak learning rate of the one-cycle schedule (AdamW)
    batch_size: int = 128  # images per step
    widths: tuple = (32, 64, 128)  # channels of the encoder's conv blocks (the decoder mirrors them)
    max_train: int = 0  # use only the first N training images; 0 = all
    noise: float = 0.0  # denoising: Gaussian input noise on the [0, 1] pixel scale
    translate: int = 0  # augmentation: random shifts of up to N pixels
    seed: int = 0  # initial weights, batch order, noise
    data_dir: str = ""  # "" = $CNN_STUDIO_DATA or the user cache

    def command(self, out) -> str:
        return recipe_command(self, "train-autoencoder", out)

    def prepare(self, emit: Callable[[Event], None], control: RunControl) -> Prepared:
        if self.model not in ("conv_ae", "conv_vae"):
            raise ValueError(f"model must be conv_ae or conv_vae, not {self.model!r}")
        ds = load_dataset(self.dataset, self.data_dir or None)
        train_x = ds.train_x[:self.max_train] if self.max_train else ds.train_x
        model = build_model(self.model, in_channels=ds.channels, image_size=ds.image_size, latent_dim=self.latent_dim,
                            widths=list(self.widths), seed=self.seed)
        task = ReconstructionTask(kl_weight=self.kl_weight, noise=self.noise, augment=AugmentConfig(translate=self.translate))
        config = TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, optimizer="adamw",
                             weight_decay=1e-4, schedule="onecycle", seed=self.seed, channels_last=True,
                             keep_best=False)
        held = ds.test_x[torch.randperm(len(ds.test_x), generator=torch.Generator().manual_seed(0))[:2000]]
        card = ModelCard(task="reconstruction", model=spec_of(model), params=count_parameters(model),
                         dataset=DatasetInfo(name=ds.name, class_names=ds.class_names, channels=ds.channels,
                                             image_size=ds.image_size, train_size=len(train_x),
                                             test_size=len(ds.test_x), mean=[0.0] * ds.channels,
                                             std=[1.0] * ds.channels))
        shown = ds.test_x[:8]

        def evaluate(m) -> dict:
            return {f"test_{k}": round(v, 6) for k, v in reconstruction_report(m, ds.test_x).items()}

        def monitor(m):
            """Eight test images over their reconstructions, and the MSE on 2,000 test images."""
            was = m.training
            m.eval()
            recon = (reconstruct(m, shown).clamp(0, 1) * 255).round().byte().numpy()
            pictures = image_grid(np.concatenate([shown.numpy(), recon]), cols=len(shown))
            mse = float((reconstruct(m, held) - as_float(held)).pow(2).mean())
            m.train(was)
            return {"test_mse_2000": mse}, pictures, "top: test images; bottom: their reconstructions now"

        return Prepared(model, task, TensorLoader(train_x, batch_size=self.batch_size, seed=self.seed),
                        TensorLoader(held, batch_size=500, shuffle=False), config, card, evaluate, monitor)


def run_probe(folders: list[str], data_dir: str | None = None, log=print) -> list[dict]:
    """The probe table on the autoencoders' data set (full train and test sets); stored in each card."""
    models = [load_checkpoint(f) for f in folders]
    ds = load_dataset(models[0][1].dataset.name, data_dir)
    y_train, y_test = ds.train_y.numpy(), ds.test_y.numpy()
    raw_train, raw_test = as_float(ds.train_x).flatten(1).numpy(), as_float(ds.test_x).flatten(1).numpy()
    from sklearn.decomposition import PCA

    pca = PCA(64, random_state=0).fit(raw_train)
    features = {"raw pixels": (raw_train, raw_test), "PCA-64": (pca.transform(raw_train), pca.transform(raw_test))}
    for folder, (model, card) in zip(folders, models):
        label = f"{card.model.name} latents ({Path(folder).name})"
        if card.model.name == "conv_vae":
            label = f"conv_vae means ({Path(folder).name})"
        features[label] = (encode_all(model, ds.train_x), encode_all(model, ds.test_x))
    rows = probe(features, y_train, y_test)
    for row in rows:
        log(f"{row['features']:<40} {row['dims']:>4}  logreg {row['logistic_regression']:.4f}  "
            f"{5}-NN {row['knn']:.4f}")
    pca_mse = float(((np.clip(pca.inverse_transform(features['PCA-64'][1]), 0, 1) - raw_test) ** 2).mean())
    for folder in folders:
        update_card(folder, probe={"rows": rows, "pca64_test_mse": round(pca_mse, 6),
                                   "command": "python -m core probe " + " ".join(folders)})
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Autoencoders: train, or the probe table.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_verb(sub, "train", AutoencoderRecipe, "train an autoencoder and save a checkpoint with its card")
    p = sub.add_parser("probe", help="logistic-regression and k-NN accuracy on pixels, PCA-64 and the latents")
    p.add_argument("folders", nargs="+")
    p.add_argument("--data-dir")
    return parser


def _dispatch(args) -> None:
    if args.command == "train":
        m = train_from_args(AutoencoderRecipe, args, f"{args.model} on {args.dataset}").metrics
        print(f"PSNR {m['test_psnr']:.2f} dB, SSIM {m['test_ssim']:.4f}")
    else:
        run_probe(args.folders, args.data_dir)


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), _dispatch, argv)


if __name__ == "__main__":
    sys.exit(main())
