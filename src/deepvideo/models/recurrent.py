"""Recurrent video models: CNN features + LSTM (LRCN), ConvLSTM and GRU-RCN.

* LRCN (Donahue et al., "Long-term Recurrent Convolutional Networks for Visual
  Recognition and Description", CVPR 2015): a 2D CNN encodes every frame, an LSTM reads
  the sequence of frame features and predicts a class at every time step; the clip's
  prediction is the average of the per-step predictions (as in the paper), or the last
  step's.  Memory is saved by freezing the CNN, or by extracting the frame features once
  and training only the LSTM head on them (``lstm_head``, ``LRCN.forward_features``).
* Skip-LSTM (Campos et al., "Skip RNN: Learning to Skip State Updates in Recurrent
  Neural Networks", ICLR 2018), an option of the LSTM head: after each step the network
  decides how many of the next frames to skip; a skipped step copies the previous state
  and output.  With ``u~_1 = 1`` and ``round`` trained by the straight-through estimator::

      u_t = round(u~_t)
      s_t = u_t · LSTM(s_{t-1}, x_t) + (1 - u_t) · s_{t-1}
      Δu~_t = σ(W_p c_t + b_p)
      u~_{t+1} = u_t · Δu~_t + (1 - u_t) · (u~_t + min(Δu~_t, 1 - u~_t))

  A budget loss ``λ · Σ_t u_t`` (from ``LSTMHead.step_outputs``) makes skipping pay.
* ConvLSTM (Shi et al., "Convolutional LSTM Network: A Machine Learning Approach for
  Precipitation Nowcasting", NeurIPS 2015): the LSTM's matrix products become
  convolutions, so inputs, cell and hidden states are all 3D tensors ``(C, H, W)`` and the
  recurrence keeps the spatial layout.  With ``*`` a convolution and ``∘`` the Hadamard
  product (eq. 3 of the paper)::

      i_t = σ(W_xi * x_t + W_hi * h_{t-1} + W_ci ∘ c_{t-1} + b_i)
      f_t = σ(W_xf * x_t + W_hf * h_{t-1} + W_cf ∘ c_{t-1} + b_f)
      c_t = f_t ∘ c_{t-1} + i_t ∘ tanh(W_xc * x_t + W_hc * h_{t-1} + b_c)
      o_t = σ(W_xo * x_t + W_ho * h_{t-1} + W_co ∘ c_t + b_o)
      h_t = o_t ∘ tanh(c_t)

  The state-to-state kernel must be larger than 1 to capture motion (the paper's finding).
* GRU-RCN (Ballas et al., "Delving Deeper into Convolutional Networks for Learning Video
  Representations", ICLR 2016): convolutional GRUs, one on the feature maps of every
  stage of a per-frame CNN, so that both local (early maps) and abstract (late maps)
  patterns are followed in time::

      z_t = σ(W_z * x_t + U_z * h_{t-1})
      r_t = σ(W_r * x_t + U_r * h_{t-1})
      h~_t = tanh(W * x_t + U * (r_t ∘ h_{t-1}))
      h_t = (1 - z_t) ∘ h_{t-1} + z_t ∘ h~_t
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn as nn
import torchvision

from deepvideo.models.frame import frame_features, small_cnn2d
from deepvideo.models.heads import as_sequence
from deepvideo.models.registry import register_model
from deepvideo.models.weights import load_weights

_WIDTHS = (32, 64, 128, 256)


# --- LRCN -------------------------------------------------------------------------------


class SkipLSTM(nn.Module):
    """One-layer Skip-LSTM over ``(B, T, input_size)``.

    Returns the per-step hidden states ``(B, T, hidden_size)`` (copied on skipped steps)
    and the update gates ``u_t`` ``(B, T)`` (1 = state updated, 0 = step skipped).
    The parameters of ``cell`` are named like ``nn.LSTM``'s layer 0 without the suffix.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(input_size, hidden_size)
        self.update_prob = nn.Linear(hidden_size, 1)  # W_p, b_p on the cell state

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = c = x.new_zeros(x.shape[0], self.cell.hidden_size)
        u_tilde = x.new_ones(x.shape[0], 1)
        outputs, updates = [], []
        for step in x.unbind(dim=1):
            u = u_tilde + (u_tilde.round() - u_tilde).detach()  # straight-through round
            h_new, c_new = self.cell(step, (h, c))
            h = u * h_new + (1 - u) * h
            c = u * c_new + (1 - u) * c
            delta = torch.sigmoid(self.update_prob(c))
            u_tilde = u * delta + (1 - u) * (u_tilde + torch.minimum(delta, 1 - u_tilde))
            outputs.append(h)
            updates.append(u)
        return torch.stack(outputs, dim=1), torch.cat(updates, dim=1)


class LSTMHead(nn.Module):
    """LSTM (or Skip-LSTM) over a feature sequence, a linear classifier at every step.

    Input ``(B, T, feature_dim)``; ``frame_logits`` gives ``(B, T, num_classes)``;
    ``forward`` gives clip logits ``(B, num_classes)``: the mean over steps
    (``clip_output="mean"``, LRCN's choice) or the last step (``"last"``).
    ``step_outputs`` also returns the update gates ``(B, T)`` (all ones without ``skip``)
    for a Skip-RNN budget loss.
    """

    def __init__(self, feature_dim: int, num_classes: int, hidden_size: int = 256,
                 num_layers: int = 1, dropout: float = 0.0, clip_output: str = "mean",
                 skip: bool = False) -> None:
        super().__init__()
        if clip_output not in ("mean", "last"):
            raise ValueError(f"option clip_output must be 'mean' or 'last', got {clip_output!r}")
        if skip and num_layers != 1:
            raise ValueError(f"option skip=True supports num_layers=1 only, got {num_layers}")
        self.clip_output = clip_output
        self.skip = skip
        self.lstm = (SkipLSTM(feature_dim, hidden_size) if skip else
                     nn.LSTM(feature_dim, hidden_size, num_layers, batch_first=True,
                             dropout=dropout if num_layers > 1 else 0.0))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden_size, num_classes)

    def step_outputs(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, feature_dim)`` (or a feature clip ``(B, feature_dim, T, 1, 1)``) ->
        ``(logits (B, T, num_classes), updates (B, T))``."""
        features = as_sequence(features)
        if self.skip:
            hidden, updates = self.lstm(features)
        else:
            hidden, updates = self.lstm(features)[0], features.new_ones(features.shape[:2])
        return self.fc(self.dropout(hidden)), updates

    def frame_logits(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, T, feature_dim) -> (B, T, num_classes)``."""
        return self.step_outputs(features)[0]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.frame_logits(features)
        return logits.mean(dim=1) if self.clip_output == "mean" else logits[:, -1]


class LRCN(nn.Module):
    """2D CNN per frame, then an :class:`LSTMHead`.

    Input ``(B, C, T, H, W)``; ``forward`` gives clip logits ``(B, num_classes)``,
    ``frame_logits`` per-step logits ``(B, T, num_classes)``, ``features`` the CNN's frame
    features ``(B, T, D)`` and ``forward_features`` classifies such pre-extracted features.
    With ``freeze_cnn`` the CNN gets no gradient and stays in eval mode (BatchNorm
    statistics frozen) even when the model trains.
    """

    def __init__(self, cnn: nn.Module, head: LSTMHead, freeze_cnn: bool = False) -> None:
        super().__init__()
        self.cnn = cnn
        self.head = head
        self.freeze_cnn = freeze_cnn
        if freeze_cnn:
            self.cnn.requires_grad_(False)
            self.cnn.eval()

    def train(self, mode: bool = True) -> LRCN:
        super().train(mode)
        if self.freeze_cnn:
            self.cnn.eval()
        return self

    def features(self, video: torch.Tensor) -> torch.Tensor:
        """Frame features ``(B, T, D)`` of a ``(B, C, T, H, W)`` batch."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_cnn):
            return frame_features(self.cnn, video)

    def forward_features(self, features: torch.Tensor) -> torch.Tensor:
        """Clip logits ``(B, num_classes)`` from pre-extracted features ``(B, T, D)``."""
        return self.head(features)

    def frame_logits(self, video: torch.Tensor) -> torch.Tensor:
        """Per-step logits ``(B, T, num_classes)``."""
        return self.head.frame_logits(self.features(video))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(video))


def frame_cnn(backbone: str = "small", widths: tuple[int, ...] = _WIDTHS,
              weights: str | os.PathLike | None = None) -> tuple[nn.Module, int]:
    """A 2D frame encoder ``(N, 3, H, W) -> (N, D)`` and its ``D``.

    ``"small"``: :func:`small_cnn2d` with ``widths``; ``"resnet18"``: torchvision's
    ResNet-18 without its classifier (D = 512).  ``weights``: a local state_dict file for
    that network (for ResNet-18, torchvision's ImageNet checkpoint, ``fc`` included).
    """
    if backbone == "small":
        cnn, dim = small_cnn2d(tuple(widths)), widths[-1]
    elif backbone == "resnet18":
        cnn, dim = torchvision.models.resnet18(), 512
    else:
        raise ValueError(f"option backbone must be 'small' or 'resnet18', got {backbone!r}")
    if weights is not None:
        load_weights(cnn, weights)
    if backbone == "resnet18":
        cnn.fc = nn.Identity()
    return cnn, dim


# --- ConvLSTM ---------------------------------------------------------------------------


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step with peephole connections (Shi et al. 2015, eq. 3).

    ``input_conv`` holds ``W_x{i,f,c,o}`` and the biases ``b_{i,f,c,o}`` (output channels
    in gate order i, f, c, o); ``state_conv`` holds ``W_h{i,f,c,o}`` with kernel
    ``state_kernel_size``.  The peepholes ``w_ci, w_cf, w_co`` multiply the cell elementwise:
    with ``peephole_size=None`` they are per-channel ``(C_h, 1, 1)`` and broadcast over
    positions, so any input size works; with ``peephole_size=(H, W)`` they are full
    ``(C_h, H, W)`` maps as in the paper and the input must have that size.  Peepholes
    start at zero.  ``forward(x (B, C_in, H, W), state=(h, c) or None) -> (h, c)``, each
    ``(B, C_h, H, W)``; a missing state is zeros.
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3,
                 state_kernel_size: int = 3, peephole_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        for name, k in (("kernel_size", kernel_size), ("state_kernel_size", state_kernel_size)):
            if k < 1 or k % 2 == 0:
                raise ValueError(f"ConvLSTM option {name} must be odd (same padding), got {k}")
        self.hidden_channels = hidden_channels
        self.input_conv = nn.Conv2d(in_channels, 4 * hidden_channels, kernel_size,
                                    padding=kernel_size // 2)
        self.state_conv = nn.Conv2d(hidden_channels, 4 * hidden_channels, state_kernel_size,
                                    padding=state_kernel_size // 2, bias=False)
        shape = (hidden_channels, 1, 1) if peephole_size is None else (hidden_channels, *peephole_size)
        self.w_ci = nn.Parameter(torch.zeros(shape))
        self.w_cf = nn.Parameter(torch.zeros(shape))
        self.w_co = nn.Parameter(torch.zeros(shape))

    def forward(self, x: torch.Tensor,
                state: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_channels, *x.shape[2:])
            state = (zeros, zeros)
        h, c = state
        if self.w_ci.shape[1:] != (1, 1) and self.w_ci.shape[1:] != x.shape[2:]:
            raise ValueError(f"ConvLSTM peephole_size is {tuple(self.w_ci.shape[1:])} but the input "
                             f"is {tuple(x.shape[2:])}")
        xi, xf, xc, xo = (self.input_conv(x) + self.state_conv(h)).chunk(4, dim=1)
        i = torch.sigmoid(xi + self.w_ci * c)
        f = torch.sigmoid(xf + self.w_cf * c)
        c = f * c + i * torch.tanh(xc)
        o = torch.sigmoid(xo + self.w_co * c)
        return o * torch.tanh(c), c


class ConvLSTM(nn.Module):
    """Stacked ConvLSTM cells run over a sequence; layer ``l+1`` reads layer ``l``'s ``h``.

    ``forward(x (B, C, T, H, W), states=None)`` returns the last layer's hidden states
    ``(B, hidden_channels[-1], T, H, W)`` and the final ``(h, c)`` of every layer.
    """

    def __init__(self, in_channels: int, hidden_channels: Sequence[int], kernel_size: int = 3,
                 state_kernel_size: int = 3, peephole_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.cells = nn.ModuleList()
        for hidden in hidden_channels:
            self.cells.append(ConvLSTMCell(in_channels, hidden, kernel_size, state_kernel_size,
                                           peephole_size))
            in_channels = hidden

    def forward(self, x: torch.Tensor, states: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None
                ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        sequence = list(x.unbind(dim=2))
        last_states = []
        for layer, cell in enumerate(self.cells):
            state = None if states is None else states[layer]
            outputs = []
            for step in sequence:
                state = cell(step, state)
                outputs.append(state[0])
            sequence = outputs
            last_states.append(state)
        return torch.stack(sequence, dim=2), last_states


class ConvLSTMClassifier(nn.Module):
    """Per-frame conv stem, stacked ConvLSTM, classifier on the last hidden state.

    The stem is :func:`small_cnn2d` without its global pooling (``len(stem_widths) - 1``
    halvings of H and W); the last layer's final ``h_T`` is average-pooled over space and
    classified.  Input ``(B, C, T, H, W)``; logits ``(B, num_classes)``.
    """

    def __init__(self, num_classes: int, stem_widths: tuple[int, ...] = (32, 64, 128),
                 hidden_channels: tuple[int, ...] = (64, 64), kernel_size: int = 3,
                 state_kernel_size: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.stem = small_cnn2d(stem_widths)[:-2]  # drop AdaptiveAvgPool2d + Flatten: keep maps
        self.convlstm = ConvLSTM(stem_widths[-1], hidden_channels, kernel_size, state_kernel_size)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden_channels[-1], num_classes)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        maps = frame_features(self.stem, video).transpose(1, 2)  # (B, C', T, H', W')
        h_last = self.convlstm(maps)[1][-1][0]
        return self.fc(self.dropout(h_last.mean(dim=(2, 3))))


# --- GRU-RCN ----------------------------------------------------------------------------


class ConvGRUCell(nn.Module):
    """One GRU-RCN step (Ballas et al. 2016, eq. 3); biases live in ``input_conv``.

    ``input_conv`` holds ``W_z, W_r, W`` (output channels in that order), ``gate_conv``
    ``U_z, U_r`` and ``candidate_conv`` ``U``, all with ``kernel_size`` (odd).
    ``forward(x (B, C_in, H, W), h (B, C_h, H, W) or None) -> h``; a missing state is zeros.
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"GRU-RCN option kernel_size must be odd (same padding), got {kernel_size}")
        self.hidden_channels = hidden_channels
        pad = kernel_size // 2
        self.input_conv = nn.Conv2d(in_channels, 3 * hidden_channels, kernel_size, padding=pad)
        self.gate_conv = nn.Conv2d(hidden_channels, 2 * hidden_channels, kernel_size, padding=pad,
                                   bias=False)
        self.candidate_conv = nn.Conv2d(hidden_channels, hidden_channels, kernel_size, padding=pad,
                                        bias=False)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_channels, *x.shape[2:])
        xz, xr, xh = self.input_conv(x).chunk(3, dim=1)
        hz, hr = self.gate_conv(h).chunk(2, dim=1)
        z = torch.sigmoid(xz + hz)
        r = torch.sigmoid(xr + hr)
        candidate = torch.tanh(xh + self.candidate_conv(r * h))
        return (1 - z) * h + z * candidate


class GRURCN(nn.Module):
    """Per-frame :func:`small_cnn2d` whose every stage feeds its own ConvGRU.

    The maps after each stage's ReLU (before pooling) are the GRU inputs.  Each level's
    final hidden state is average-pooled over space and classified by its own linear
    layer; the clip logits are the mean of the levels' logits (the paper averages the
    levels' predictions).  Input ``(B, C, T, H, W)``; logits ``(B, num_classes)``.
    """

    def __init__(self, num_classes: int, widths: tuple[int, ...] = _WIDTHS,
                 hidden_channels: tuple[int, ...] = _WIDTHS, kernel_size: int = 3,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if len(hidden_channels) != len(widths):
            raise ValueError(f"gru_rcn options widths and hidden_channels must have the same "
                             f"length, got {len(widths)} and {len(hidden_channels)}")
        self.cnn = small_cnn2d(widths)[:-2]  # drop AdaptiveAvgPool2d + Flatten: keep maps
        self.grus = nn.ModuleList(ConvGRUCell(w, h, kernel_size) for w, h in zip(widths, hidden_channels))
        self.dropout = nn.Dropout(dropout)
        self.fcs = nn.ModuleList(nn.Linear(h, num_classes) for h in hidden_channels)

    def stage_maps(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """Maps of every CNN stage (after its ReLU): ``(N, 3, H, W) -> [(N, C_l, H_l, W_l)]``."""
        maps = []
        for layer in self.cnn:
            frames = layer(frames)
            if isinstance(layer, nn.ReLU):
                maps.append(frames)
        return maps

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        b, c, t, height, width = video.shape
        maps = self.stage_maps(video.transpose(1, 2).reshape(b * t, c, height, width))
        logits = []
        for level, gru, fc in zip(maps, self.grus, self.fcs):
            steps = level.view(b, t, *level.shape[1:]).unbind(dim=1)
            h = None
            for x in steps:
                h = gru(x, h)
            logits.append(fc(self.dropout(h.mean(dim=(2, 3)))))
        return torch.stack(logits).mean(dim=0)


# --- registered builders ----------------------------------------------------------------


@register_model
def lrcn(num_classes: int = 400, backbone: str = "small", widths: tuple[int, ...] = _WIDTHS,
         backbone_weights: str | None = None, hidden_size: int = 256, num_layers: int = 1,
         dropout: float = 0.0, freeze_cnn: bool = False, clip_output: str = "mean",
         skip: bool = False) -> LRCN:
    """LRCN (Donahue 2015): 2D CNN per frame + LSTM (or Skip-LSTM), step logits averaged. Input (B, 3, T, H, W)."""
    cnn, dim = frame_cnn(backbone, tuple(widths), backbone_weights)
    head = LSTMHead(dim, num_classes, hidden_size, num_layers, dropout, clip_output, skip)
    return LRCN(cnn, head, freeze_cnn)


@register_model
def lstm_head(num_classes: int = 400, feature_dim: int = 512, hidden_size: int = 256,
              num_layers: int = 1, dropout: float = 0.0, clip_output: str = "mean",
              skip: bool = False) -> LSTMHead:
    """LRCN's LSTM (or Skip-LSTM) head alone, on pre-extracted frame features. Input (B, T, feature_dim)."""
    return LSTMHead(feature_dim, num_classes, hidden_size, num_layers, dropout, clip_output, skip)


@register_model
def convlstm(num_classes: int = 400, stem_widths: tuple[int, ...] = (32, 64, 128),
             hidden_channels: tuple[int, ...] = (64, 64), kernel_size: int = 3,
             state_kernel_size: int = 3, dropout: float = 0.0) -> ConvLSTMClassifier:
    """ConvLSTM (Shi 2015): conv stem per frame, stacked peephole ConvLSTM, last h classified. Input (B, 3, T, H, W)."""
    return ConvLSTMClassifier(num_classes, tuple(stem_widths), tuple(hidden_channels), kernel_size,
                              state_kernel_size, dropout)


@register_model
def gru_rcn(num_classes: int = 400, widths: tuple[int, ...] = _WIDTHS,
            hidden_channels: tuple[int, ...] = _WIDTHS, kernel_size: int = 3,
            dropout: float = 0.0) -> GRURCN:
    """GRU-RCN (Ballas 2016): a ConvGRU on every stage of a per-frame 2D CNN, levels averaged. Input (B, 3, T, H, W)."""
    return GRURCN(num_classes, tuple(widths), tuple(hidden_channels), kernel_size, dropout)
