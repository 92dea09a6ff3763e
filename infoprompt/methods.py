"""The methods the trainer knows: one registry entry each, read by config, model, report and runner.

A method says what it trains and how its input looks:

- ``prompts``: ``"generated"`` (InfoPrompt's p_i = W_up_i W_down_i P', prompts in the template's
  slots), ``"idpg"`` (IDPG's generator, Wu et al. 2022: a bottleneck MLP with a nonlinearity, all
  prompts prepended to the input), ``"static"`` (WARP's free vectors in the template's slots) or
  ``None`` (the template without prompt slots).
- ``encoder``: what of the encoder is trained: ``"frozen"``, ``"all"`` (fine-tuning), ``"lora"``
  (PEFT LoRA on the attention query/value projections) or ``"adapter"`` (bottleneck adapters after
  the last linear layer of every transformer block, as the InfoPrompt paper describes).
- ``probe``: ``"pooled"`` or ``"mask"`` for the frozen-feature floors: a linear head on P' (the
  mean-pooled prompt-free pass) or on Z' (its mask state); no prompted pass at all.
- ``beta``, ``gamma``: the default weights of NCE_rep and NCE_head (``None``: the method has no such
  loss, and the fields are errors); ``free_weights``: whether the user may change them.
- ``fields``: the configuration fields the method reads beyond the shared ones; giving any other
  method-specific field is an error (``config.METHOD_FIELDS``).
- ``lr``: the default learning rate, with its source in ``lr_source``; ``--lr-grid`` chooses one
  on the validation split instead.
"""

from __future__ import annotations

from dataclasses import dataclass

INFONCE_FIELDS = ("theta", "n_negatives")


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
    def uses_cache(self) -> bool:
        """Whether the run needs P' and Z' of the prompt-free pass (computed once per example)."""
        return self.prompts in ("generated", "idpg") or self.probe is not None


_GEN = ("n_prompts", "bottleneck")


def _infoprompt(name, row, beta, gamma, free=False, rep_negatives="plain") -> Method:
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
            lr_source="a linear probe on fixed features takes a larger step than prompts",
        ),
        Method(
            "probe-mask",
            "probe: linear head on frozen Z' (mask state)",
            None,
            probe="mask",
            lr=1e-2,
            lr_source="a linear probe on fixed features takes a larger step than prompts",
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
