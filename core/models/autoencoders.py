"""Convolutional autoencoder and VAE of the same shape (seed 000's Fashion-MNIST bottleneck model).

Both split into `encode(x) -> z` and `decode(z) -> x_hat` with pixels in [0, 1]; `forward` is the
deterministic round trip (the VAE encodes to its posterior mean), so hooks and pages treat them alike.
The VAE adds `posterior(x) -> (mu, logvar)` for the reparameterised training loss in `core.engine.tasks`.
"""
from __future__ import annotations

import torch
from torch import nn

from core.models.registry import register_model


def _encoder(in_channels: int, widths: tuple[int, ...]) -> nn.Sequential:
    layers, c = [], in_channels
    for i, w in enumerate(widths):
        stride = 1 if i == 0 else 2
        layers += [nn.Conv2d(c, w, 3, stride, 1, bias=False), nn.BatchNorm2d(w), nn.LeakyReLU(0.1, inplace=True)]
        c = w
    return nn.Sequential(*layers)


def _decoder(out_channels: int, widths: tuple[int, ...]) -> nn.Sequential:
    layers = []
    rev = list(reversed(widths))
    for i, (w_in, w_out) in enumerate(zip(rev[:-1], rev[1:])):
        layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out),
                   nn.LeakyReLU(0.1, inplace=True)]
    layers += [nn.Conv2d(rev[-1], out_channels, 3, 1, 1), nn.Sigmoid()]
    return nn.Sequential(*layers)


class ConvAutoencoder(nn.Module):
    """conv encoder (stride-2 downsampling) -> linear bottleneck -> linear -> transpose-conv decoder."""

    def __init__(self, in_channels: int = 1, image_size: int = 28, latent_dim: int = 64,
                 widths: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        widths = tuple(widths)
        self.latent_dim, self.in_channels, self.image_size = latent_dim, in_channels, image_size
        down = 2 ** (len(widths) - 1)
        if image_size % down:
            raise ValueError(f"image_size {image_size} must be divisible by {down} for {len(widths)} conv stages")
        self.grid = (widths[-1], image_size // down, image_size // down)
        flat = widths[-1] * self.grid[1] * self.grid[2]
        self.features = _encoder(in_channels, widths)
        self.to_latent = nn.Linear(flat, self.latent_outputs(latent_dim))
        self.from_latent = nn.Sequential(nn.Linear(latent_dim, flat), nn.LeakyReLU(0.1, inplace=True))
        self.decoder = _decoder(in_channels, widths)

    def latent_outputs(self, latent_dim: int) -> int:
        return latent_dim

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_latent(self.features(x).flatten(1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.from_latent(z).view(-1, *self.grid))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class ConvVAE(ConvAutoencoder):
    """The same network with a Gaussian posterior: the bottleneck outputs a mean and a log-variance."""

    def latent_outputs(self, latent_dim: int) -> int:
        return 2 * latent_dim

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        stats = self.to_latent(self.features(x).flatten(1))
        mu, logvar = stats.chunk(2, dim=1)
        return mu, logvar.clamp(-12, 8)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode n draws from the N(0, I) prior."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device)
        return self.decode(z)


@register_model("conv_ae", "Convolutional autoencoder: conv encoder, 64-d bottleneck, transpose-conv decoder",
                kind="autoencoder")
def conv_ae(*, in_channels: int, image_size: int, latent_dim: int = 64, widths=(32, 64, 128)) -> nn.Module:
    return ConvAutoencoder(in_channels, image_size, latent_dim, tuple(widths))


@register_model("conv_vae", "Convolutional VAE of the same shape (reparameterised, KL-weighted)", kind="autoencoder")
def conv_vae(*, in_channels: int, image_size: int, latent_dim: int = 64, widths=(32, 64, 128)) -> nn.Module:
    return ConvVAE(in_channels, image_size, latent_dim, tuple(widths))
