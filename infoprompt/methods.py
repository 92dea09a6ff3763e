"""The methods the trainer knows: one ``Method`` object each, owning its defaults and builders.

A method says what it trains and how its input looks, and builds those parts itself:

- ``prompts``: ``"generated"`` (InfoPrompt's p_i = W_up_i W_down_i P', prompts in the template's
  slots), ``"idpg"`` (IDPG's generator, Wu et al. 2022: a bottleneck MLP with a nonlinearity, all
  prompts prepended to the input), ``"static"`` (WARP's free vectors in the template's slots) or
  ``None`` (the template without prompt slots). ``build_prompts`` makes the module,
  ``template_text`` and ``n_prompts`` the layout.
- ``encoder``: what of the encoder is trained: ``"frozen"``, ``"all"`` (fine-tuning), ``"lora"``
  (PEFT LoRA on the attention query/value projections) or ``"adapter"`` (bottleneck adapters after
  the last linear layer of every transformer block, as the InfoPrompt paper describes);
  ``wrap_encoder`` applies it.
- ``probe``: ``"pooled"`` or ``"mask"`` for the frozen-feature floors: a linear head on P' (the
  mean-pooled prompt-free pass) or on Z' (its mask state); no prompted pass at all
  (``probe_features``).
- ``beta``, ``gamma``: the default weights of NCE_rep and NCE_head (``None``: the method has no such
  loss, and the fields are errors); ``free_weights``: whether the user may change them.
- ``fields``: the configuration fields the method reads beyond the shared ones (``reads``), with
  their defaults in ``FIELD_DEFAULTS``; giving any other method-specific field is an error.
- ``lr``: the default learning rate, with its source in ``lr_source``; ``--lr-grid`` chooses one
  on the validation split instead.

The string values above are compared here only: the rest of the package asks a ``Method``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

INFONCE_FIELDS = ("theta", "n_negatives")
METHOD_FIELDS = (
    "n_prompts",
    "bottleneck",
    "beta",
    "gamma",
    "n_negatives",
    "theta",
    "lora_r",
    "lora_alpha",
    "critic_lr",
)
"""Every method-specific configuration field (``None`` in a config where it does not apply)."""

FIELD_DEFAULTS: dict[str, Any] = {
    "n_prompts": 4,  # paper section 4.1: n_p in {1, 4}
    "bottleneck": 64,  # paper: W_down_i is 64 x D
    "n_negatives": 32,  # paper: K = 32 candidates
    "theta": "expected",  # losses.theta_of: the head's rows weighted by the predicted distribution
    "lora_r": 8,  # Hu et al. 2021 on GLUE
    "critic_lr": None,  # the critics train at the prompts' rate, as in the paper
}
"""Defaults of the method-specific fields; ``beta``/``gamma`` come from the method,
``lora_alpha`` is 2 r."""


class PromptSettings(Protocol):
    """The configuration fields the builders read (``RunConfig`` has them)."""

    @property
    def n_prompts(self) -> int | None: ...
    @property
    def bottleneck(self) -> int | None: ...
    @property
    def lora_r(self) -> int | None: ...
    @property
    def lora_alpha(self) -> int | None: ...
    @property
    def beta(self) -> float | None: ...
    @property
    def gamma(self) -> float | None: ...
    @property
    def n_negatives(self) -> int | None: ...


@dataclass(frozen=True)
class Method:
    name: str
    row: str  # row name in reports
    prompts: str | None
    encoder: str = "frozen"
    probe: str | None = None
    beta: float | None = None
    gamma: float | None = None
    free_weights: bool = False
    rep_negatives: str = "plain"
    fields: tuple[str, ...] = ()
    lr: float = 1e-3
    lr_source: str = "paper section 4.1 (AdamW, lr 1e-3)"

    @property
    def has_infonce(self) -> bool:
        return self.beta is not None

    @property
    def trains_encoder(self) -> bool:
        return self.encoder != "frozen"

    @property
    def generates_prompts(self) -> bool:
        """Whether the prompts are a function of P' (InfoPrompt's and IDPG's generators)."""
        return self.prompts in ("generated", "idpg")

    @property
    def uses_cache(self) -> bool:
        """Whether the run needs P' and Z' of the prompt-free pass (computed once per example)."""
        return self.generates_prompts or self.probe is not None

    def reads(self) -> tuple[str, ...]:
        """The method-specific fields this method reads (the others must stay None)."""
        return self.fields + (("beta", "gamma", "critic_lr") if self.has_infonce else ())

    def defaults(self, lora_r: int | None) -> dict[str, Any]:
        """The default of every field of ``reads()`` (``lora_alpha`` from the given rank)."""
        values = FIELD_DEFAULTS | {
            "beta": self.beta,
            "gamma": self.gamma,
            "lora_alpha": 2 * (lora_r or FIELD_DEFAULTS["lora_r"]),
        }
        return {name: values[name] for name in self.reads()}

    def label(self, beta: float | None, gamma: float | None) -> str:
        """The method's row name in reports; InfoPrompt with other weights says them."""
        if not self.free_weights or (beta, gamma) == (self.beta, self.gamma):
            return self.name
        return f"{self.name} (β={beta:g}, γ={gamma:g})"

    def loss_weights(self, c: PromptSettings) -> tuple[float, float]:
        """(β, γ) as the loss uses them: the config's, or 0 for a method without InfoNCE."""
        if not self.has_infonce:
            return 0.0, 0.0
        assert c.beta is not None and c.gamma is not None  # filled by RunConfig
        return float(c.beta), float(c.gamma)

    def negatives(self, c: PromptSettings) -> int:
        """K − 1, the negatives per InfoNCE term (0 for a method without InfoNCE)."""
        return c.n_negatives - 1 if self.has_infonce and c.n_negatives else 0

    def n_prompts(self, c: PromptSettings) -> int:
        """Prompt slots the template leaves: n_p, or 0 for a method without prompts."""
        return (c.n_prompts or 0) if self.prompts else 0

    def template_text(self, template: str) -> str:
        """The task's template as this method lays it out: IDPG puts one prompt group before the
        input and removes the template's other groups."""
        if self.prompts == "idpg":
            return "<P> " + re.sub(r"\s*<P>\s*", " ", template).strip()
        return template

    def wrap_encoder(self, encoder: nn.Module, c: PromptSettings) -> nn.Module:
        """The encoder as this method trains it: gradient to all weights (``all``), adapters or
        LoRA added, or frozen. The pooler never trains (nothing reads it; a trainable unused
        parameter would break DDP)."""
        from infoprompt.adapters import add_adapters, with_lora

        encoder.requires_grad_(self.encoder == "all")
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler.requires_grad_(False)
        if self.encoder == "adapter":
            assert c.bottleneck is not None
            add_adapters(encoder, c.bottleneck)
        if self.encoder == "lora":
            assert c.lora_r is not None and c.lora_alpha is not None
            return with_lora(encoder, c.lora_r, c.lora_alpha)
        return encoder

    def build_prompts(
        self, c: PromptSettings, embeddings: torch.Tensor, special_ids: list[int]
    ) -> nn.Module | None:
        """The prompt module (``infoprompt.prompts``), or None for a method without prompts."""
        from infoprompt.prompts import IdpgGenerator, PromptGenerator, StaticPrompts

        dim = embeddings.shape[1]
        if self.prompts is None:
            return None
        assert c.n_prompts is not None
        if self.prompts == "static":
            return StaticPrompts(embeddings, c.n_prompts, special_ids)
        assert c.bottleneck is not None
        kind = PromptGenerator if self.prompts == "generated" else IdpgGenerator
        return kind(c.n_prompts, dim, c.bottleneck)

    def probe_features(
        self, pooled: torch.Tensor | None, z_plain: torch.Tensor | None
    ) -> torch.Tensor | None:
        """A probe's input, P' or Z' of the prompt-free pass (B, D); None for the other methods."""
        if self.probe is None:
            return None
        return pooled if self.probe == "pooled" else z_plain


_GEN = ("n_prompts", "bottleneck")


def _infoprompt(
    name: str, row: str, beta: float, gamma: float, free: bool = False, rep_negatives: str = "plain"
) -> Method:
    return Method(
        name,
        row,
        "generated",
        beta=beta,
        gamma=gamma,
        free_weights=free,
        rep_negatives=rep_negatives,
        fields=_GEN + INFONCE_FIELDS,
    )


_PROBE_LR = "a linear probe on fixed features takes a larger step than prompts"

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        _infoprompt("infoprompt", "InfoPrompt (β = 0.1, γ = 0.05)", 0.1, 0.05, free=True),
        _infoprompt("gamma0", "InfoPrompt γ = 0 (no head loss)", 0.1, 0.0),
        _infoprompt("beta0", "InfoPrompt β = 0 (no representation loss)", 0.0, 0.05),
        _infoprompt("beta0gamma0", "InfoPrompt β = γ = 0 (generator, L_pred only)", 0.0, 0.0),
        _infoprompt(
            "infoprompt-pneg",
            "InfoPrompt, NCE_rep negatives = other examples' prompts",
            0.1,
            0.05,
            rep_negatives="prompts",
        ),
        Method("idpg", "IDPG (bottleneck MLP generator, prompts prepended)", "idpg", fields=_GEN),
        Method("warp", "WARP (static prompts)", "static", fields=("n_prompts",)),
        Method(
            "probe-pooled",
            "probe: linear head on frozen P' (pooled)",
            None,
            probe="pooled",
            lr=1e-2,
            lr_source=_PROBE_LR,
        ),
        Method(
            "probe-mask",
            "probe: linear head on frozen Z' (mask state)",
            None,
            probe="mask",
            lr=1e-2,
            lr_source=_PROBE_LR,
        ),
        Method(
            "adapter",
            "Adapter (bottleneck adapters in every block)",
            None,
            encoder="adapter",
            fields=("bottleneck",),
            lr=1e-4,
            lr_source="Houlsby et al. 2019 search 3e-5 to 3e-3; 1e-4 is their common pick",
        ),
        Method(
            "lora",
            "LoRA (r = 8, query/value)",
            None,
            encoder="lora",
            fields=("lora_r", "lora_alpha"),
            lr=5e-4,
            lr_source="LoRA's GLUE recipes use 4e-4 to 5e-4 (Hu et al. 2021, table 9)",
        ),
        Method(
            "finetune",
            "fine-tuning (all weights)",
            None,
            encoder="all",
            lr=2e-5,
            lr_source="usual full fine-tuning rate for BERT-size encoders (LM-BFF uses 1e-5)",
        ),
    )
}


def method_named(name: str) -> Method | None:
    """The registered method ``name``, or None for an unknown name (the caller says so)."""
    return METHODS.get(name)
