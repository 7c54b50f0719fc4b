"""Autoencoder maths: reconstruction metrics (MSE; PSNR and SSIM from scikit-image), the probe classifiers, and
the latent-space operations the explorer page uses (encode, decode, maps, walks, interpolation, samples, noise).

Training lives in `core.latent.recipe`; nothing here trains.
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core import paths


# --- metrics ----------------------------------------------------------------------------------------------

def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of (B, C, H, W) tensors in [0, 1], by scikit-image (Wang et al. 2004: Gaussian window of
    sigma 1.5, K1 0.01, K2 0.03, population covariances, the mean over the valid window positions and over
    channels). Images under 11 pixels a side get a narrower Gaussian that fits them."""
    from skimage.metrics import structural_similarity

    side = min(x.shape[-2:])
    sigma = 1.5 if side >= 11 else max((side - 1) // 2 - 0.5, 0.5) / 3.5
    xs, ys = x.detach().double().cpu().numpy(), y.detach().double().cpu().numpy()
    return torch.tensor([structural_similarity(a, b, data_range=1.0, channel_axis=0, gaussian_weights=True,
                                               sigma=sigma, use_sample_covariance=False) for a, b in zip(xs, ys)])


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of (B, C, H, W) tensors in [0, 1], by scikit-image; identical images count as
    100 dB (not infinity), so averages stay finite."""
    import warnings

    from skimage.metrics import peak_signal_noise_ratio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # identical images: division by zero -> inf
        values = [peak_signal_noise_ratio(a, b, data_range=1.0)
                  for a, b in zip(x.detach().double().cpu().numpy(), y.detach().double().cpu().numpy())]
    return torch.tensor(values).clamp(max=100.0)


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
    return {"mse": float(per_image.mean()), "psnr": float(psnr(target, recon).mean()),
            "ssim": float(ssim(target, recon).mean())}


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
    images: np.ndarray  # (N, H, W) uint8: the encoded images (first channel), for showing beside their codes
    note: str = ""  # where the images come from, when a reader should know (e.g. a shipped sample)

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


MAP_SIZE = 2000  # test images on the Latent space page's map


def latent_map(model: nn.Module, x_uint8: torch.Tensor, labels: torch.Tensor, n: int = MAP_SIZE, seed: int = 0,
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
                     ((z - mean) @ vt[:2].T).astype(np.float32), x_uint8[idx][:, 0].numpy().copy())


LAYOUTS = paths.SHIPPED_CHECKPOINTS / "layouts"  # the shipped autoencoders' t-SNE maps, made by `python -m core layouts`


def layout_key(weights: Path, images: np.ndarray, seed: int = 0) -> str:
    """What a t-SNE layout of a map depends on: the checkpoint's weights file and the map's images (bytes that are
    the same on every machine, unlike the codes' last bits), the seed and the method's version."""
    digest = hashlib.sha1(Path(weights).read_bytes())
    digest.update(np.ascontiguousarray(images).tobytes())
    digest.update(f"{images.shape}|{seed}|tsne-v2".encode())
    return digest.hexdigest()[:24]


def tsne_layout(z: np.ndarray, key: str | None = None, seed: int = 0) -> np.ndarray:
    """A 2-d t-SNE layout of the codes (perplexity 30, 500 iterations on their first 30 principal components), read
    from the shipped layouts or the user cache when `key` names one, else computed (tens of seconds for 2,000
    codes on two cores) and stored in the user cache, so each map is computed once per machine."""
    stored = [folder / f"{key}.npy" for folder in (LAYOUTS, paths.cache_dir("layouts"))] if key else []
    for path in stored:
        try:
            layout = np.load(path, allow_pickle=False)
            if layout.shape == (len(z), 2):
                return layout
        except (OSError, ValueError):
            continue
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    reduced = PCA(min(30, *z.shape), random_state=seed).fit_transform(z) if z.shape[1] > 30 else z
    layout = TSNE(2, init="pca", perplexity=min(30, len(z) - 1), max_iter=500, random_state=seed,
                  n_jobs=2).fit_transform(reduced).astype(np.float32)
    if stored:
        paths.replace_atomically(stored[-1], lambda tmp: np.save(tmp, layout))
    return layout


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


def image_mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error of two uint8 images on the 0-1 pixel scale (the scale the test MSE uses)."""
    return float(((a.astype(np.float32) / 255 - b.astype(np.float32) / 255) ** 2).mean())


def reconstruction_rows(model: nn.Module, originals: list[np.ndarray], inputs: list[np.ndarray] | None = None):
    """(reconstructions, |error| images, MSE per image) of uint8 (H, W) images: each reconstructed from its
    input (the original itself, or a noisy copy: the autoencoder as a denoiser) and compared to the original."""
    batch = torch.from_numpy(np.stack(inputs if inputs is not None else originals))[:, None]
    recons = decode(model, encode_all(model, batch))
    errors = [np.abs(o.astype(int) - r.astype(int)).astype(np.uint8) for o, r in zip(originals, recons)]
    return recons, errors, [image_mse(o, r) for o, r in zip(originals, recons)]
