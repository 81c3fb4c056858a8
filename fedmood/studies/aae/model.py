"""Networks of the anonymisation study: the autoencoder (AAE) and the window classifiers.

All take windows of shape (batch, channels, width) (MotionSense: 2 magnitude channels x 128
samples, z-scored). The AAE encodes a window to a small latent (2 x 32) with strided 1-D
convolutions and decodes it back to (2 x 128); the classifiers (the three regularisers EncReg,
DecReg, ActReg during training, and the fresh evaluation classifiers) are one small CNN class.
"""

from __future__ import annotations

import torch
from torch import nn

from fedmood.classification import CosineHead


def _conv(c_in: int, c_out: int, k: int = 5) -> nn.Conv1d:
    return nn.Conv1d(c_in, c_out, k, padding=k // 2)


def _conv_pool(channels: int, hidden: int) -> list[nn.Module]:
    """Two blocks of convolution, ReLU and 2x max-pooling: (B, channels, w) -> (B, hidden, w / 4)."""
    return [_conv(channels, hidden), nn.ReLU(), nn.MaxPool1d(2), _conv(hidden, hidden), nn.ReLU(), nn.MaxPool1d(2)]


class Encoder(nn.Module):
    """(B, channels, width) -> latent (B, latent_channels, width / 4)."""

    def __init__(self, channels: int = 2, hidden: int = 64, latent_channels: int = 2) -> None:
        super().__init__()
        # the last convolution is linear: the latent is a signal, not a code
        self.net = nn.Sequential(*_conv_pool(channels, hidden), _conv(hidden, latent_channels, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """Latent (B, latent_channels, width / 4) -> (B, channels, width)."""

    def __init__(self, channels: int = 2, hidden: int = 64, latent_channels: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Upsample(scale_factor=2),
            _conv(latent_channels, hidden),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            _conv(hidden, hidden),
            nn.ReLU(),
            _conv(hidden, channels),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Autoencoder(nn.Module):
    """The anonymiser: ``forward`` returns (latent, reconstruction)."""

    def __init__(self, channels: int = 2, hidden: int = 64, latent_channels: int = 2) -> None:
        super().__init__()
        self.encoder = Encoder(channels, hidden, latent_channels)
        self.decoder = Decoder(channels, hidden, latent_channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        return z, self.decoder(z)

    @torch.no_grad()
    def transform(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """The anonymised windows of ``x`` (evaluation mode, in chunks)."""
        self.eval()
        return torch.cat([self(x[s : s + batch_size])[1] for s in range(0, len(x), batch_size)])


class WindowCNN(nn.Module):
    """A small 1-D CNN classifier of windows (activity or identity; on raw, transformed or latent windows).

    ``cosine``: the last layer is a :class:`fedmood.classification.CosineHead` (class embeddings, for
    identity heads trained federatedly with FedAwS, one user per device) instead of a linear layer.
    """

    def __init__(
        self, channels: int, width: int, n_classes: int, hidden: int = 32, dropout: float = 0.3, cosine: bool = False
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(*_conv_pool(channels, hidden))
        last = CosineHead(64, n_classes) if cosine else nn.Linear(64, n_classes)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(hidden * (width // 4), 64), nn.ReLU(), last
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class PaperCNN(nn.Module):
    """The evaluation estimator of Malekzadeh et al. (IoTDI 2019): a window as a one-channel image of
    (channels x width), four convolutions of 64, 64, 32 and 32 filters with 2 x 5 kernels (the first
    spans both channels; the later ones, on one row, are 1 x 5), each with batch norm and ReLU,
    2x max-pooling along time after the second and the fourth, then dense layers of 256 and 64 with
    dropout (batch norm on the convolutions only: a batch of one window still trains).
    """

    def __init__(self, channels: int, width: int, n_classes: int, dropout: float = 0.5) -> None:
        super().__init__()

        def block(c_in: int, c_out: int, rows: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, (rows, 5), padding=(0, 2)), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.features = nn.Sequential(
            *block(1, 64, channels), *block(64, 64, 1), nn.MaxPool2d((1, 2)),
            *block(64, 32, 1), *block(32, 32, 1), nn.MaxPool2d((1, 2)),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * (width // 4), 256), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(256, 64), nn.ReLU(), nn.Dropout(dropout), nn.Linear(64, n_classes),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x[:, None]))
