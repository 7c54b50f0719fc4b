"""Autoencoders end to end: training through the common engine, reconstruction metrics (MSE, PSNR, SSIM),
the latent-probe table (seed 000's claim, measured), and the latent-space maths the explorer page uses.

CLI:
    python -m core.latent.autoencode train --model conv_ae --dataset fashion_mnist --epochs 8 --out checkpoints/fashion_ae
    python -m core.latent.autoencode probe checkpoints/fashion_ae checkpoints/fashion_vae   # writes the table into the cards
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.engine.checkpoint import DatasetInfo, ModelCard, invoking_command, load_checkpoint, save_checkpoint, spec_of, update_card
from core.data import AugmentConfig, load_dataset
from core.engine import EpochEvent, TensorLoader, TrainConfig, fit
from core.models import build_model, count_parameters
from core.latent.task import ReconstructionTask


# --- metrics ----------------------------------------------------------------------------------------------

def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    g = torch.exp(-((torch.arange(size) - size // 2) ** 2).float() / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03) of (B, C, H, W)
    tensors in [0, 1], averaged over channels and the valid window positions."""
    c = x.shape[1]
    side = min(11, *x.shape[-2:])
    side -= 1 - side % 2  # odd; images smaller than 11 pixels get a smaller window
    w = _gaussian_window(side).to(x).repeat(c, 1, 1, 1)
    mu_x, mu_y = F.conv2d(x, w, groups=c), F.conv2d(y, w, groups=c)
    var_x = F.conv2d(x * x, w, groups=c) - mu_x**2
    var_y = F.conv2d(y * y, w, groups=c) - mu_y**2
    cov = F.conv2d(x * y, w, groups=c) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(1)


def psnr(mse_per_image: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10(1.0 / mse_per_image.clamp_min(1e-10))


def as_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255.0


@torch.inference_mode()
def reconstruct(model: nn.Module, x_uint8: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    return torch.cat([model(as_float(x_uint8[i:i + batch_size])) for i in range(0, len(x_uint8), batch_size)])


@torch.inference_mode()
def reconstruction_report(model: nn.Module, x_uint8: torch.Tensor) -> dict[str, float]:
    """Mean per-pixel MSE, mean per-image PSNR (dB) and mean SSIM on pixels in [0, 1]."""
    model.eval()
    target = as_float(x_uint8)
    recon = reconstruct(model, x_uint8)
    per_image = (recon - target).pow(2).flatten(1).mean(1)
    return {"mse": float(per_image.mean()), "psnr": float(psnr(per_image).mean()), "ssim": float(ssim(recon, target).mean())}


@torch.inference_mode()
def encode_all(model: nn.Module, x_uint8: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    model.eval()
    return torch.cat([model.encode(as_float(x_uint8[i:i + batch_size]))
                      for i in range(0, len(x_uint8), batch_size)]).numpy()


# --- the probe table -------------------------------------------------------------------------------------

def probe(features: dict[str, tuple[np.ndarray, np.ndarray]], y_train: np.ndarray, y_test: np.ndarray,
          k: int = 5) -> list[dict]:
    """Test accuracy of a logistic-regression probe and a k-NN on each named (train, test) feature set.

    Features are standardised on the training set (both probes are sensitive to scale).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    rows = []
    for name, (train, test) in features.items():
        scaler = StandardScaler().fit(train)
        tr, te = scaler.transform(train), scaler.transform(test)
        start = time.perf_counter()
        logreg = LogisticRegression(max_iter=300, C=1.0).fit(tr, y_train)
        knn = KNeighborsClassifier(k).fit(tr, y_train)
        rows.append({"features": name, "dims": int(train.shape[1]),
                     "logistic_regression": float((logreg.predict(te) == y_test).mean()),
                     "knn": float((knn.predict(te) == y_test).mean()),
                     "seconds": round(time.perf_counter() - start, 1)})
    return rows


# --- latent-space maths for the explorer -----------------------------------------------------------------

def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation (falls back to linear for nearly parallel vectors)."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cos = float(np.dot(a, b) / max(na * nb, 1e-12))
    omega = math.acos(min(1.0, max(-1.0, cos)))
    if omega < 1e-4:
        return (1 - t) * a + t * b
    return (math.sin((1 - t) * omega) * a + math.sin(t * omega) * b) / math.sin(omega)


def interpolate(a: np.ndarray, b: np.ndarray, steps: int, spherical: bool = False) -> np.ndarray:
    ts = np.linspace(0, 1, steps)
    return np.stack([slerp(a, b, t) if spherical else (1 - t) * a + t * b for t in ts]).astype(np.float32)


@torch.inference_mode()
def decode(model: nn.Module, z: np.ndarray) -> np.ndarray:
    """Latent codes (N, D) -> uint8 images (N, H, W) for one channel or (N, H, W, 3)."""
    out = model.decode(torch.as_tensor(np.atleast_2d(z), dtype=torch.float32)).clamp(0, 1)
    img = (out * 255).round().to(torch.uint8).numpy()
    return img[:, 0] if img.shape[1] == 1 else img.transpose(0, 2, 3, 1)


@dataclass
class LatentMap:
    """Latent codes of a set of images with a PCA of them: the map's 2-d layout and the slider directions."""
    indices: np.ndarray  # which images of the source set
    labels: np.ndarray
    z: np.ndarray  # (N, D)
    mean: np.ndarray  # (D,)
    components: np.ndarray  # (K, D) unit principal directions, largest variance first
    stds: np.ndarray  # (K,) spread of the codes along each direction
    xy: np.ndarray  # (N, 2) the codes in the first two principal directions

    def project(self, z: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(z) - self.mean) @ self.components[:2].T

    def walk(self, z0: np.ndarray, steps: list[float]) -> np.ndarray:
        """z0 moved by steps[i] standard deviations along principal direction i."""
        z = np.array(z0, dtype=np.float32, copy=True)
        for i, s in enumerate(steps):
            z += s * self.stds[i] * self.components[i]
        return z

    def nearest(self, z: np.ndarray, k: int = 8) -> np.ndarray:
        """Positions (into this map) of the k codes closest to z (Euclidean)."""
        d = ((self.z - np.asarray(z)[None]) ** 2).sum(1)
        return np.argsort(d)[:k]


def latent_map(model: nn.Module, x_uint8: torch.Tensor, labels: torch.Tensor, n: int = 2000, seed: int = 0,
               directions: int = 8) -> LatentMap:
    """Encode n images drawn evenly at random (seeded) and fit the PCA of their codes."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(x_uint8), size=min(n, len(x_uint8)), replace=False))
    z = encode_all(model, x_uint8[idx])
    mean = z.mean(0)
    _, sv, vt = np.linalg.svd(z - mean, full_matrices=False)
    k = min(directions, vt.shape[0])
    stds = sv[:k] / math.sqrt(max(len(z) - 1, 1))
    return LatentMap(idx, labels[idx].numpy(), z, mean, vt[:k].astype(np.float32), stds.astype(np.float32),
                     ((z - mean) @ vt[:2].T).astype(np.float32))


def tsne_layout(z: np.ndarray, seed: int = 0) -> np.ndarray:
    from sklearn.manifold import TSNE

    return TSNE(2, init="pca", perplexity=30, random_state=seed).fit_transform(z).astype(np.float32)


def strip(images: list[np.ndarray] | np.ndarray, pad: int = 2) -> np.ndarray:
    """Equal-sized uint8 images (H, W) side by side on a white background."""
    images = [np.asarray(i) for i in images]
    h, w = images[0].shape[:2]
    out = np.full((h, len(images) * (w + pad) - pad) + images[0].shape[2:], 255, np.uint8)
    for i, img in enumerate(images):
        out[:, i * (w + pad):i * (w + pad) + w] = img
    return out


def encode_image(model: nn.Module, image: np.ndarray) -> np.ndarray:
    """One uint8 image (H, W) or (C, H, W) -> its code (D,)."""
    x = torch.from_numpy(np.array(image, dtype=np.uint8))  # a copy: cached images stay read-only
    return encode_all(model, x.view(1, -1, *x.shape[-2:]))[0]


@torch.inference_mode()
def sample_images(model: nn.Module, n: int, seed: int = 0) -> np.ndarray:
    """n images decoded from the VAE's N(0, I) prior, as uint8."""
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed))
    return decode(model, z.numpy())


def add_noise(x_uint8: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
    """Gaussian pixel noise of standard deviation `strength` (on the [0, 1] scale), clipped, as uint8."""
    rng = np.random.default_rng(seed)
    noisy = x_uint8.astype(np.float32) / 255 + strength * rng.standard_normal(x_uint8.shape).astype(np.float32)
    return (np.clip(noisy, 0, 1) * 255).round().astype(np.uint8)


# --- training ------------------------------------------------------------------------------------------

def train_autoencoder(model_name: str, dataset: str, out: str | Path, *, epochs: int = 8, latent_dim: int = 64,
                      kl_weight: float = 0.0, lr: float = 2e-3, batch_size: int = 128, seed: int = 0,
                      max_train: int = 0, data_dir: str | None = None, widths=(32, 64, 128),
                      noise: float = 0.0, translate: int = 0, log=print) -> ModelCard:
    """Train through the common engine, measure on the test set, save checkpoint + card; returns the card."""
    ds = load_dataset(dataset, data_dir)
    train_x = ds.train_x[:max_train] if max_train else ds.train_x
    model = build_model(model_name, in_channels=ds.channels, image_size=ds.image_size, latent_dim=latent_dim,
                        widths=list(widths), seed=seed)
    task = ReconstructionTask(kl_weight=kl_weight, noise=noise, augment=AugmentConfig(translate=translate))
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer="adamw", weight_decay=1e-4,
                         schedule="onecycle", seed=seed, channels_last=True, keep_best=False)
    loader = TensorLoader(train_x, batch_size=batch_size, seed=seed)

    def report(event):
        if isinstance(event, EpochEvent):
            log(f"epoch {event.epoch}: train loss {event.train['loss']:.5f} mse {event.train['mse']:.5f} "
                f"({event.seconds:.0f} s)")

    started = time.perf_counter()
    result = fit(model, task, loader, None, config, callback=report)
    metrics = reconstruction_report(model, ds.test_x)
    card = ModelCard(
        task="reconstruction", model=spec_of(model),
        dataset=DatasetInfo(name=ds.name, class_names=ds.class_names, channels=ds.channels, image_size=ds.image_size,
                            train_size=len(train_x), test_size=len(ds.test_x), mean=[0.0] * ds.channels,
                            std=[1.0] * ds.channels),
        metrics={f"test_{k}": round(v, 6) for k, v in metrics.items()},
        training={"epochs": result.epochs, "stop_reason": result.reason, "kl_weight": kl_weight,
                  "input_noise": noise, "translate": translate, "train_seconds": round(result.train_seconds, 1),
                  "wall_seconds": round(time.perf_counter() - started, 1),
                  "config": {"lr": lr, "batch_size": batch_size, "optimizer": "adamw", "schedule": "onecycle",
                             "seed": seed},
                  "history": result.history},
        params=count_parameters(model), command=invoking_command("core.latent.autoencode"))
    save_checkpoint(out, model, card)
    return card


def run_probe(folders: list[str], data_dir: str | None = None, log=print) -> list[dict]:
    """The probe table on the autoencoders' data set (full train and test sets); stored in each card."""
    models = [load_checkpoint(f) for f in folders]
    ds = load_dataset(models[0][1]["dataset"]["name"], data_dir)
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
                                   "command": "python -m core.latent.autoencode probe " + " ".join(folders)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.latent.autoencode", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train an autoencoder and save a checkpoint with its card")
    t.add_argument("--model", choices=["conv_ae", "conv_vae"], default="conv_ae")
    t.add_argument("--dataset", default="fashion_mnist")
    t.add_argument("--epochs", type=int, default=8)
    t.add_argument("--latent-dim", type=int, default=64)
    t.add_argument("--kl-weight", type=float, default=0.0)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--widths", default="32,64,128")
    t.add_argument("--max-train", type=int, default=0, help="use only the first N training images")
    t.add_argument("--noise", type=float, default=0.0, help="denoising: Gaussian input noise (0-1 pixel scale)")
    t.add_argument("--translate", type=int, default=0, help="augmentation: random shifts of up to N pixels")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--data-dir")
    t.add_argument("--out", required=True)
    p = sub.add_parser("probe", help="logistic-regression and k-NN accuracy on pixels, PCA-64 and the latents")
    p.add_argument("folders", nargs="+")
    p.add_argument("--data-dir")
    args = parser.parse_args(argv)
    from core.data import DataError

    try:
        if args.command == "train":
            card = train_autoencoder(args.model, args.dataset, args.out, epochs=args.epochs, latent_dim=args.latent_dim,
                                     kl_weight=args.kl_weight, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                                     max_train=args.max_train, data_dir=args.data_dir, noise=args.noise,
                                     translate=args.translate,
                                     widths=tuple(int(w) for w in args.widths.split(",")))
            m = card.metrics
            print(f"test MSE {m['test_mse']:.5f}  PSNR {m['test_psnr']:.2f} dB  SSIM {m['test_ssim']:.4f} -> {args.out}")
        else:
            run_probe(args.folders, args.data_dir)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
