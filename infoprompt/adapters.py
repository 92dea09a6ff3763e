"""What a method trains inside the encoder: bottleneck adapters (Houlsby et al. 2019), LoRA.

LoRA comes from PEFT (``peft.get_peft_model``); the adapter is this module's ``Adapter``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from infoprompt.errors import ConfigError

LORA_TARGETS = ("query", "value", "q_lin", "v_lin", "query_proj", "value_proj", "q_proj", "v_proj")


class Adapter(nn.Module):
    """A bottleneck adapter after a linear layer: y = h + W_u relu(W_d h), h = linear(x).

    W_u starts at zero, so the adapted encoder starts as the frozen one (Houlsby et al. 2019).
    """

    def __init__(self, linear: nn.Linear, bottleneck: int):
        super().__init__()
        self.linear = linear
        self.down = nn.Linear(linear.out_features, bottleneck)
        self.up = nn.Linear(bottleneck, linear.out_features)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear(x)
        return h + self.up(F.relu(self.down(h)))


def add_adapters(encoder: nn.Module, bottleneck: int) -> int:
    """Wrap the last ``nn.Linear`` of every transformer block (the items of the encoder's
    ``ModuleList`` of layers) in an ``Adapter``; returns the number of blocks adapted."""
    lists = [m for m in encoder.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise ConfigError(f"adapter: no list of transformer blocks in {type(encoder).__name__}")
    blocks = max(lists, key=len)
    for block in blocks:
        name = [n for n, m in block.named_modules() if isinstance(m, nn.Linear)][-1]
        parent_name, _, attr = name.rpartition(".")
        parent = block.get_submodule(parent_name) if parent_name else block
        setattr(parent, attr, Adapter(getattr(parent, attr), bottleneck))
    return len(blocks)


def with_lora(encoder: nn.Module, r: int, alpha: int) -> nn.Module:
    """The encoder with LoRA adapters (PEFT) on its attention query and value projections."""
    from peft import LoraConfig, get_peft_model

    names = {n.rsplit(".", 1)[-1] for n, m in encoder.named_modules() if isinstance(m, nn.Linear)}
    targets = sorted(names & set(LORA_TARGETS))
    if not targets:
        raise ConfigError(
            f"lora: no attention projection named one of {LORA_TARGETS} in {type(encoder).__name__}"
        )
    lora = LoraConfig(r=r, lora_alpha=alpha, target_modules=targets)
    return get_peft_model(encoder, lora)
