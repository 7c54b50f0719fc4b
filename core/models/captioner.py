"""Show, Attend and Tell: a CNN encoder producing a grid of features and an LSTM decoder with soft attention.

Owns `captioner` (kind "captioner"). The encoder is a small CNN trained from scratch (a 64x64 scene ->
an 8 x 8 grid of feature vectors, plus a learned embedding of each grid position so that where the
decoder attends is part of what it reads). The decoder is an LSTM cell that at every step attends over
the grid (additive attention, with the paper's gate on the context), and predicts the next word from
its state, the context and the previous word. `forward` runs teacher forcing; `encode` and `step`
serve greedy and beam decoding (in `core.captions.captioning`).
"""
from __future__ import annotations

import torch
from torch import nn

from core.models.classifiers import conv_bn
from core.models.registry import register_model


class Captioner(nn.Module):
    def __init__(self, *, encoder: nn.Module, grid: int, feature_dim: int, vocab_size: int, embed: int,
                 hidden: int, attention: int, dropout: float):
        super().__init__()
        self.encoder = encoder
        self.position = nn.Parameter(torch.zeros(1, grid * grid, feature_dim))
        self.embed = nn.Embedding(vocab_size, embed)
        self.init_h = nn.Linear(feature_dim, hidden)
        self.init_c = nn.Linear(feature_dim, hidden)
        self.att_feat = nn.Linear(feature_dim, attention)
        self.att_hidden = nn.Linear(hidden, attention)
        self.att_score = nn.Linear(attention, 1)
        self.gate = nn.Linear(hidden, feature_dim)
        self.lstm = nn.LSTMCell(embed + feature_dim, hidden)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden + feature_dim + embed, vocab_size)
        self.grid = grid
        nn.init.normal_(self.position, std=0.1)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """images (B, 3, H, W) normalised -> grid features (B, P, D) and the initial LSTM state."""
        f = self.encoder(images)  # (B, D, g, g)
        feats = f.flatten(2).transpose(1, 2) + self.position
        mean = feats.mean(1)
        return feats, (torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean)))

    def step(self, feats: torch.Tensor, keys: torch.Tensor, tokens: torch.Tensor, state):
        """One decoding step: previous tokens (B,) -> next-word logits (B, V), attention (B, P), new state."""
        h, c = state
        scores = self.att_score(torch.tanh(keys + self.att_hidden(h)[:, None])).squeeze(2)
        alpha = scores.softmax(1)
        context = torch.sigmoid(self.gate(h)) * (alpha[:, :, None] * feats).sum(1)
        emb = self.embed(tokens)
        h, c = self.lstm(torch.cat([emb, context], 1), (h, c))
        logits = self.out(self.drop(torch.cat([h, context, emb], 1)))
        return logits, alpha, (h, c)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: tokens (B, L) start with <start>; returns logits (B, L, V) for the next word at
        each position and the attention maps (B, L, P)."""
        feats, state = self.encode(images)
        keys = self.att_feat(feats)
        logits, alphas = [], []
        for t in range(tokens.shape[1]):
            out, alpha, state = self.step(feats, keys, tokens[:, t], state)
            logits.append(out)
            alphas.append(alpha)
        return torch.stack(logits, 1), torch.stack(alphas, 1)


@register_model("captioner", "Show-Attend-Tell: small CNN -> 8x8 feature grid -> LSTM with soft attention",
                kind="captioner")
def captioner(*, in_channels: int = 3, image_size: int = 64, vocab_size: int = 64, channels=(32, 64, 128, 128),
              embed: int = 64, hidden: int = 256, attention: int = 128, dropout: float = 0.2):
    c1, c2, c3, c4 = channels
    encoder = nn.Sequential(
        *conv_bn(in_channels, c1), nn.MaxPool2d(2),  # 32 x 32
        *conv_bn(c1, c2), nn.MaxPool2d(2),  # 16 x 16
        *conv_bn(c2, c3), nn.MaxPool2d(2),  # 8 x 8: one 2 x 2 cell of the scene is 4 x 4 grid positions
        *conv_bn(c3, c4), *conv_bn(c4, c4))
    grid = image_size // 8
    return Captioner(encoder=encoder, grid=grid, feature_dim=c4, vocab_size=vocab_size, embed=embed, hidden=hidden,
                     attention=attention, dropout=dropout)
