"""The autoencoder recipe (conv AE or VAE on any image data set) and the latent-probe table, with their CLI.

    python -m core train-autoencoder --model conv_vae --dataset fashion_mnist --epochs 6 --kl-weight 0.05 --out DIR
    python -m core probe checkpoints/fashion_ae checkpoints/fashion_vae   # writes the table into the cards

Owns the autoencoder kind: `AutoencoderRecipe` (settings, data -> model -> task, test MSE / PSNR / SSIM with MSE
as the headline, sample reconstructions after every epoch for the live view, its Trainer presets) and the
`probe` verb (`run_probe`: seed 000's claim, measured).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch

from core.data import AugmentConfig, load_dataset
from core.engine import Event, RunControl, TensorLoader, TrainConfig
from core.engine.checkpoint import DatasetInfo, ModelCard, load_checkpoint, spec_of, update_card
from core.engine.recipe import Prepared, Recipe, register_presets, register_recipe
from core.data.base import dataset_shape
from core.engine.settings import WIDTHS, check_dataset, check_memory
from core.engine.verbs import register_verb
from core.errors import SettingsError
from core.latent.autoencode import as_float, encode_all, probe, reconstruct, reconstruction_report
from core.latent.task import ReconstructionTask
from core.models import build_model, count_parameters, evaluating
from core.models.registry import TRAINING_BUDGET, training_bytes
from core.viz import image_grid


@register_recipe
@dataclass
class AutoencoderRecipe(Recipe):
    kind: ClassVar[str] = "autoencoder"
    verb: ClassVar[str] = "train-autoencoder"
    task: ClassVar[str] = "reconstruction"
    title: ClassVar[str] = "Autoencoder or VAE"
    pages: ClassVar[str] = "Latent space"
    opens: ClassVar[tuple] = (("pages/latent.py", "latent_model", "Explore its latent space"),)
    headlines: ClassVar[list] = [(("test_mse",), "test MSE (pixels in [0, 1])", False)]
    sections: ClassVar[dict] = {"probe": dict}  # the latent-probe table (`python -m core probe`)
    live: ClassVar[tuple] = ("mse", "reconstruction MSE", False)
    limits: ClassVar[dict] = {**TrainConfig.limits, "latent_dim": (1, 4096), "kl_weight": (0, 1e6), "widths": WIDTHS,
                              "max_train": (0, 10_000_000), "noise": (0, 10), "translate": (0, 64)}
    choices: ClassVar[dict] = {"model": ("conv_ae", "conv_vae")}
    hidden: ClassVar[tuple] = ("model", "dataset", "data_dir")
    always: ClassVar[tuple] = ("dataset",)
    legacy: ClassVar[dict] = {"python -m core.autoencode train ": "python -m core train-autoencoder ",
                              "python -m core.autoencode probe ": "python -m core probe "}
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

    def check(self) -> None:
        """The data set's name and the memory the run would need, before any work."""
        check_dataset(self.dataset)
        channels, side, _ = dataset_shape(self.dataset) or (3, 64, 10)
        try:
            needed = training_bytes(self.model, in_channels=channels, image_size=side, latent_dim=self.latent_dim,
                                    widths=list(self.widths), batch_size=self.batch_size)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{self.model} with widths {list(self.widths)}: {exc}") from None
        check_memory(needed, f"{self.model} with widths {list(self.widths)} and batches of {self.batch_size}",
                     TRAINING_BUDGET, "Use a smaller batch, fewer widths or a smaller code.")

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, optimizer="adamw",
                           weight_decay=1e-4, schedule="onecycle", seed=self.seed, channels_last=True,
                           keep_best=False)

    @classmethod
    def evaluate_checkpoint(cls, model, card, data_dir, n=0, tta=False) -> tuple[dict, bool]:
        if tta:
            raise SettingsError("--tta is for classifiers of photos; an autoencoder has nothing to average.")
        data = load_dataset(card.dataset.name, data_dir)
        metrics = {f"test_{k}": v for k, v in reconstruction_report(model, data.test_x).items()}
        return {**metrics, "test_n": len(data.test_x)}, True

    def prepare(self, emit: Callable[[Event], None], control: RunControl) -> Prepared:
        ds = load_dataset(self.dataset, self.data_dir or None)
        train_x = ds.train_x[:self.max_train] if self.max_train else ds.train_x
        model = build_model(self.model, in_channels=ds.channels, image_size=ds.image_size, latent_dim=self.latent_dim,
                            widths=list(self.widths), seed=self.seed)
        task = ReconstructionTask(kl_weight=self.kl_weight, noise=self.noise, augment=AugmentConfig(translate=self.translate))
        config = self.train_config()
        held = ds.test_x[torch.randperm(len(ds.test_x), generator=torch.Generator().manual_seed(0))[:2000]]
        card = ModelCard(task=self.task, model=spec_of(model), params=count_parameters(model),
                         dataset=DatasetInfo(name=ds.name, class_names=ds.class_names, channels=ds.channels,
                                             image_size=ds.image_size, train_size=len(train_x),
                                             test_size=len(ds.test_x), mean=[0.0] * ds.channels,
                                             std=[1.0] * ds.channels))
        shown = ds.test_x[:8]

        def evaluate(m) -> dict:
            return {f"test_{k}": round(v, 6) for k, v in reconstruction_report(m, ds.test_x).items()}

        def monitor(m):
            """Eight test images over their reconstructions, and the MSE on 2,000 test images."""
            with evaluating(m):
                recon = (reconstruct(m, shown).clamp(0, 1) * 255).round().byte().numpy()
                pictures = image_grid(np.concatenate([shown.numpy(), recon]), cols=len(shown))
                mse = float((reconstruct(m, held) - as_float(held)).pow(2).mean())
            return {"test_mse_2000": mse}, pictures, "top: test images; bottom: their reconstructions now"

        return Prepared(model, task, TensorLoader(train_x, batch_size=self.batch_size, seed=self.seed),
                        TensorLoader(held, batch_size=500, shuffle=False), config, card, evaluate, monitor)


register_presets(AutoencoderRecipe.kind, {  # the shipped checkpoints' settings, and a quick one on small data
    "Quick autoencoder (digits)": AutoencoderRecipe(dataset="digits", epochs=12, latent_dim=16, widths=(16, 32, 64),
                                                    batch_size=64, lr=3e-3),
    "Autoencoder (Fashion-MNIST)": AutoencoderRecipe(epochs=6),
    "VAE (Fashion-MNIST)": AutoencoderRecipe(model="conv_vae", epochs=6, kl_weight=0.05)})


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


def _layouts_arguments(parser) -> None:
    parser.add_argument("folders", nargs="+", help="autoencoder checkpoints (the shipped ones: checkpoints/fashion_*)")
    parser.add_argument("--data-dir", help="data directory (default: $CNN_STUDIO_DATA or the cache)")


@register_verb("layouts", "store the t-SNE layouts of autoencoders' latent maps (with and without the data set) "
               "in checkpoints/layouts, so the Latent space page shows them at once", _layouts_arguments)
def layouts_verb(args) -> None:
    from core.data.samples import load_sample
    from core.engine.checkpoint import WEIGHTS
    from core.latent.autoencode import LAYOUTS, latent_map, layout_key, tsne_layout

    LAYOUTS.mkdir(parents=True, exist_ok=True)
    for folder in args.folders:
        model, card = load_checkpoint(folder)
        for data in (load_dataset(card.dataset.name, args.data_dir), load_sample(card.dataset.name)):
            found = latent_map(model, data.test_x, data.test_y)  # the map the page draws
            key = layout_key(Path(folder) / WEIGHTS, found.images)
            np.save(LAYOUTS / f"{key}.npy", tsne_layout(found.z))
            print(f"{folder} ({'sample' if data.sample else 'whole test set'}): {LAYOUTS / key}.npy")


def _probe_arguments(parser) -> None:
    parser.add_argument("folders", nargs="+", help="autoencoder checkpoints of one data set")
    parser.add_argument("--data-dir", help="data directory (default: $CNN_STUDIO_DATA or the cache)")


@register_verb("probe", "the latent-probe table of autoencoder checkpoints (written into their cards)",
               _probe_arguments)
def probe_verb(args) -> None:
    run_probe(args.folders, args.data_dir)
