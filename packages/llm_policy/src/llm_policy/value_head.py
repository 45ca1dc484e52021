"""Heads on the prompt's hidden state: the critic's value and the NPAE action head.

Both are small fp32 MLPs. The input is first layer-normalised: hidden states of pretrained models
can carry a few huge outlier features, and the heads should train the same way on any model.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ActionHead", "MLPHead", "ValueHead"]


class MLPHead(nn.Module):
    """LayerNorm -> Linear(d, h) -> ReLU -> Linear(h, h) -> ReLU -> Linear(h, out).

    Orthogonal initialisation (gain sqrt 2 for hidden layers, `output_gain` for the last one),
    zero biases, as in CleanRL's PPO.
    """

    def __init__(
        self, in_features: int, hidden: int, out_features: int, *, output_gain: float = 1.0
    ):
        super().__init__()
        if hidden < 1:
            raise ValueError(f"head hidden size must be positive, got {hidden}")
        self.norm = nn.LayerNorm(in_features)
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, out_features),
        )
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        for i, layer in enumerate(linears):
            gain = output_gain if i == len(linears) - 1 else 2**0.5
            nn.init.orthogonal_(layer.weight, gain=gain)
            nn.init.zeros_(layer.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features (B, d) in any dtype -> (B, out) fp32 (also inside a caller's autocast)."""
        with torch.autocast(device_type=features.device.type, enabled=False):
            return self.net(self.norm(features.float()))


class ValueHead(MLPHead):
    """State value from the prompt's hidden state: (B, d) -> (B,) fp32."""

    def __init__(self, in_features: int, hidden: int = 1024):
        super().__init__(in_features, hidden, 1, output_gain=1.0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return super().forward(features).squeeze(-1)


class ActionHead(MLPHead):
    """The paper's NPAE baseline: an MLP from the prompt's hidden state to |A| logits.
    (B, d) -> (B, num_actions) fp32; the small output gain starts it near uniform."""

    def __init__(self, in_features: int, num_actions: int, hidden: int = 1024):
        if num_actions < 1:
            raise ValueError(f"num_actions must be positive, got {num_actions}")
        super().__init__(in_features, hidden, num_actions, output_gain=0.01)
