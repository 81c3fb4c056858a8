"""Networks of the anonymisation study: the autoencoder (AAE) and the window classifiers.

All take windows of shape (batch, channels, width) (MotionSense: 2 magnitude channels x 128
samples, z-scored). The AAE encodes a window to a small latent (2 x 32) with strided 1-D
convolutions and decodes it back to (2 x 128); the classifiers (the three regularisers EncReg,
DecReg, ActReg during training, and the fresh evaluation classifiers) are one small CNN class.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

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


class PaperEncoder(nn.Module):
    """The encoder of the paper's anonymiser (``msda_anon_model``): a window as a one-channel image of
    (channels x width); 1 x 3 convolutions of ``hidden`` filters (each sensor row with the same
    kernels, never mixed), SELU and batch norm, 2x pooling along time after the second and the
    third; a linear 1 x 3 convolution to one filter and batch norm: latent (B, channels, width / 4)."""

    def __init__(self, hidden: int = 100) -> None:
        super().__init__()

        def block(c_in: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, hidden, (1, 3), padding=(0, 1)), nn.SELU(), _bn2d(hidden)]

        self.net = nn.Sequential(
            *block(1), *block(hidden), nn.MaxPool2d((1, 2)), *block(hidden), nn.MaxPool2d((1, 2)), *block(hidden),
            nn.Conv2d(hidden, 1, (1, 3), padding=(0, 1)), _bn2d(1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[:, None])[:, 0]


class PaperDecoder(nn.Module):
    """The decoder of the paper's anonymiser: 1 x 3 transposed convolutions of ``hidden`` filters
    (strides 1, 2, 2, 1 along time), SELU and batch norm, then a linear 1 x 3 convolution to one filter."""

    def __init__(self, hidden: int = 100) -> None:
        super().__init__()

        def block(c_in: int, stride: int) -> list[nn.Module]:
            up = nn.ConvTranspose2d(c_in, hidden, (1, 3), (1, stride), (0, 1), output_padding=(0, stride - 1))
            return [up, nn.SELU(), _bn2d(hidden)]

        self.net = nn.Sequential(
            *block(1, 1), *block(hidden, 2), *block(hidden, 2), *block(hidden, 1),
            nn.Conv2d(hidden, 1, (1, 3), padding=(0, 1)),
        )  # fmt: skip

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, None])[:, 0]


def _bn2d(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)  # Keras's settings, as the paper's models


class Autoencoder(nn.Module):
    """The anonymiser: ``forward`` returns (latent, reconstruction).

    ``arch="small"``: :class:`Encoder`/:class:`Decoder` (1-D convolutions mixing both channels, ReLU);
    ``arch="paper"``: :class:`PaperEncoder`/:class:`PaperDecoder` (the paper's layout: per-row 1 x 3
    kernels, SELU, batch norm). Both map (B, 2, width) to a (B, 2, width / 4) latent and back.
    """

    def __init__(self, channels: int = 2, hidden: int = 64, latent_channels: int = 2, arch: str = "small") -> None:
        super().__init__()
        if arch == "small":
            self.encoder: nn.Module = Encoder(channels, hidden, latent_channels)
            self.decoder: nn.Module = Decoder(channels, hidden, latent_channels)
        elif arch == "paper":
            if latent_channels != channels:
                raise ValueError("arch 'paper' keeps one latent row per channel (latent_channels = channels)")
            self.encoder, self.decoder = PaperEncoder(hidden), PaperDecoder(hidden)
        else:
            raise ValueError(f"aae arch {arch!r} is not 'small' or 'paper'")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)
        return z, self.decoder(z)

    def kernel_l2(self) -> torch.Tensor:
        """Sum of the squared kernels of the hidden convolutions (the paper penalises them, L2 1e-3; the
        last convolution of the encoder and of the decoder are not penalised, as in the paper)."""
        total = torch.zeros(())
        for part in (self.encoder, self.decoder):
            convs = [m for m in part.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d))]
            total = total + sum((m.weight**2).sum() for m in convs[:-1])
        return total

    @torch.no_grad()
    def transform(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """The anonymised windows of ``x`` (evaluation mode, in chunks)."""
        self.eval()
        return torch.cat([self(x[s : s + batch_size])[1] for s in range(0, len(x), batch_size)])


#: The last layers a :class:`WindowCNN` can end in.
HEADS = ("linear", "cosine", "lda")


class WindowCNN(nn.Module):
    """A small 1-D CNN classifier of windows (activity or identity; on raw, transformed or latent windows).

    ``head``: ``"linear"`` (dropout, a dense layer of 64, the class layer); ``"cosine"``: the last
    layer is a :class:`fedmood.classification.CosineHead` (class embeddings, for identity heads
    trained federatedly with FedAwS, one user per device); ``"lda"``: the class layer sits directly
    on the flattened convolutional features (:meth:`embed`), which are never trained (a seeded
    random trunk), and is fitted as a linear discriminant from statistics the devices send
    (:mod:`strategies.fedlda`).
    """

    def __init__(
        self, channels: int, width: int, n_classes: int, hidden: int = 32, dropout: float = 0.3, head: str = "linear"
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"WindowCNN: head {head!r} is not one of {', '.join(HEADS)}")
        self.kind = head
        self.features = nn.Sequential(*_conv_pool(channels, hidden))
        if head == "lda":
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(hidden * (width // 4), n_classes))
            self.features.requires_grad_(False)
            return
        last = CosineHead(64, n_classes) if head == "cosine" else nn.Linear(64, n_classes)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(hidden * (width // 4), 64), nn.ReLU(), last
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The flattened convolutional features (what an ``"lda"`` head's class layer sees)."""
        return torch.flatten(self.features(x), 1)

    @torch.no_grad()
    def embed_all(self, x: torch.Tensor | np.ndarray, batch_size: int = 4096) -> torch.Tensor:
        """:meth:`embed` of every window, in batches, in evaluation mode (float32)."""
        self.eval()
        x = torch.as_tensor(np.asarray(x, np.float32)) if isinstance(x, np.ndarray) else x
        return torch.cat([self.embed(x[s : s + batch_size]) for s in range(0, len(x), batch_size)])


class _BatchNorm1d(nn.BatchNorm1d):
    """Batch norm of dense features that also trains on a batch of one row (normalised by the running
    statistics, which it leaves as they are: one row has no batch variance)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


class PaperCNN(nn.Module):
    """The evaluation estimator of Malekzadeh et al. (IoTDI 2019), as in the authors' Table 2 code: a
    window as a one-channel image of (channels x width); four blocks of a 2 x 5 convolution ("same"
    padding, so every block sees both sensor rows) of 64, 64, 32 and 32 filters, ReLU, batch norm,
    2x max-pooling along time and dropout 0.25; then dense layers of 256 and 64 (ReLU, batch norm,
    dropout 0.5) and the output layer. Batch-norm settings are Keras's (momentum 0.99, eps 1e-3).
    :meth:`kernel_l2` is the sum of squared kernels that the paper penalises (L2 1e-3 on every
    hidden layer's kernel: ``ClassifierConfig.l2``).
    """

    def __init__(self, channels: int, width: int, n_classes: int) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [
                nn.ZeroPad2d((2, 2, 0, 1)),  # Keras's "same" for a 2 x 5 kernel: the extra row below
                nn.Conv2d(c_in, c_out, (2, 5)),
                nn.ReLU(),
                nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.01),
                nn.MaxPool2d((1, 2)),
                nn.Dropout(0.25),
            ]

        self.features = nn.Sequential(*block(1, 64), *block(64, 64), *block(64, 32), *block(32, 32))

        def dense(n_in: int, n_out: int) -> list[nn.Module]:
            return [nn.Linear(n_in, n_out), nn.ReLU(), _BatchNorm1d(n_out, eps=1e-3, momentum=0.01), nn.Dropout(0.5)]

        pooled = width // 2 // 2 // 2 // 2
        self.head = nn.Sequential(
            nn.Flatten(), *dense(32 * channels * pooled, 256), *dense(256, 64), nn.Linear(64, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x[:, None]))

    def kernel_l2(self) -> torch.Tensor:
        """Sum of the squared kernels of every convolution and hidden dense layer (not the output layer)."""
        hidden = [m for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear))][:-1]
        return sum((m.weight**2).sum() for m in hidden)
