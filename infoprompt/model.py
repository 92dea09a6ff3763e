"""The prompted classifier: a frozen (or partly trained) encoder, prompts, a head and the MI losses.

Conventions: B examples, T tokens, D hidden size, n_p prompts, C classes. What is built for a
method is read from its registry entry (``infoprompt.methods.Method``).

- Encoder Φ: any Hugging Face encoder with a mask token (``AutoModel``), kept in eval mode and
  without gradient to its weights, except for ``finetune`` (all weights), ``lora`` (PEFT LoRA
  adapters) and ``adapter`` (``Adapter`` after the last linear layer of every transformer block).
- Prompts enter through ``inputs_embeds``: the template leaves n_p slots (pad ids) and the model
  writes row b's prompt vectors into row b's slots (``torch.scatter``), so every example gets its
  own prompts.
- ``PromptGenerator`` (infoprompt and its ablations): p_i = W_up_i W_down_i P' (paper section 3),
  with P' the mean-pooled last hidden state of the prompt-free pass Φ(X) (B, D).
- ``IdpgGenerator`` (idpg, Wu et al. 2022): prompts = W_u tanh(W_d P' + b_d) + b_u, one bottleneck
  MLP for all n_p prompts, which the template puts before the input (``methods``).
- ``StaticPrompts`` (warp): n_p free vectors initialised from vocabulary embeddings.
- Z: last hidden state at the mask position of the prompted pass (B, D); head h_θ: linear, C
  classes, rows initialised from the label words' input embeddings where the tokenizer has a
  single token for the word (WARP's initialisation, without an MLM head).
- Probes (probe-pooled, probe-mask): the same head on the cached P' or Z' of the prompt-free pass;
  no prompted pass, the frozen-feature floor.
- L = L_pred + β NCE_rep + γ NCE_head (``infoprompt.losses``).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from infoprompt.config import ConfigError, RunConfig
from infoprompt.data import TaskSpec
from infoprompt.losses import HeadMI, RepresentationMI, sample_context, theta_of
from infoprompt.methods import METHODS

CRITIC_PREFIXES = ("rep_mi.", "head_mi.")
LORA_TARGETS = ("query", "value", "q_lin", "v_lin", "query_proj", "value_proj", "q_proj", "v_proj")


def offline() -> bool:
    """Whether Hugging Face downloads are off (``HF_HUB_OFFLINE``; the command line's default)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def unavailable(name: str, reason: str = "") -> ConfigError:
    """The one-line error for a model that cannot be loaded, saying how to get it."""
    if offline() and not os.path.isdir(os.path.expanduser(name)):
        why = ("it is neither a local folder nor in the Hugging Face cache, and downloads are off "
               "(HF_HUB_OFFLINE=1, the command line's default); set HF_HUB_OFFLINE=0 to "
               "download it")  # fmt: skip
    else:
        why = " ".join(reason.split()) or "not found"
    return ConfigError(
        f"could not load model {name!r}: {why}. Or pass a local folder saved with "
        "save_pretrained (with its tokenizer)"
    )


def load_backbone(name: str):
    """(tokenizer, encoder) from a hub name or local folder, with a one-line error if unavailable
    (offline: naming ``HF_HUB_OFFLINE``)."""
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        encoder = AutoModel.from_pretrained(name)
    except (OSError, ValueError) as e:
        raise unavailable(name, str(e)) from e
    if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
        raise ConfigError(f"model {name!r}: its tokenizer needs a mask token and a pad token")
    return tokenizer, encoder


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of hidden (B, T, D) over the positions where attention_mask (B, T) is 1 → (B, D)."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


class PromptGenerator(nn.Module):
    """p_i = W_up_i W_down_i P' for i = 1..n_p; W_down_i (r, D), W_up_i (D, r), r = 64.

    Initialisation: W_down ~ N(0, 1/D), so W_down P' keeps P''s scale; W_up ~ N(0, 1/r), then
    ``calibrate_`` rescales W_up so that the prompts of the training examples have the standard
    deviation of the vocabulary embeddings (prompts start on the embeddings' scale).
    """

    def __init__(self, n_prompts: int, dim: int, bottleneck: int):
        super().__init__()
        self.W_down = nn.Parameter(torch.randn(n_prompts, bottleneck, dim) / dim**0.5)
        self.W_up = nn.Parameter(torch.randn(n_prompts, dim, bottleneck) / bottleneck**0.5)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """P' (B, D) → prompts (B, n_p, D)."""
        h = torch.einsum("nrd,bd->bnr", self.W_down, pooled.float())  # (B, n_p, r)
        return torch.einsum("ndr,bnr->bnd", self.W_up, h)  # (B, n_p, D)

    @torch.no_grad()
    def calibrate_(self, pooled: torch.Tensor, target_std: float) -> None:
        """Scale W_up so that std(prompts of ``pooled`` (N, D)) = target_std."""
        self.W_up.mul_(target_std / self(pooled).std().clamp(min=1e-12))


class StaticPrompts(nn.Module):
    """WARP's prompts: n_p vectors (n_p, D), initialised from random vocabulary embeddings."""

    def __init__(self, embeddings: torch.Tensor, n_prompts: int, skip: list[int]):
        super().__init__()
        allowed = torch.ones(embeddings.shape[0], dtype=torch.bool)
        allowed[skip] = False
        rows = torch.multinomial(allowed.float(), n_prompts, replacement=False)
        self.prompts = nn.Parameter(embeddings[rows].detach().float().clone())  # (n_p, D)

    def forward(self, batch_size: int) -> torch.Tensor:
        """The same n_p vectors for every row → (B, n_p, D)."""
        return self.prompts.unsqueeze(0).expand(batch_size, -1, -1)


class IdpgGenerator(nn.Module):
    """IDPG's generator: prompts = W_u tanh(W_d P' + b_d) + b_u, W_d (r, D), W_u (n_p D, r).

    ``calibrate_`` scales the output layer so that the prompts of the training examples start with
    the standard deviation of the vocabulary embeddings, as for ``PromptGenerator``.
    """

    def __init__(self, n_prompts: int, dim: int, bottleneck: int):
        super().__init__()
        self.n_prompts, self.dim = n_prompts, dim
        self.down = nn.Linear(dim, bottleneck)
        self.up = nn.Linear(bottleneck, n_prompts * dim)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """P' (B, D) → prompts (B, n_p, D)."""
        h = torch.tanh(self.down(pooled.float()))  # (B, r)
        return self.up(h).view(-1, self.n_prompts, self.dim)

    @torch.no_grad()
    def calibrate_(self, pooled: torch.Tensor, target_std: float) -> None:
        scale = target_std / self(pooled).std().clamp(min=1e-12)
        self.up.weight.mul_(scale)
        self.up.bias.mul_(scale)


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


def label_word_rows(tokenizer, embeddings: torch.Tensor, words, n_classes: int) -> torch.Tensor:
    """Head weight (C, D): each label word's input embedding if it is one known token, else N(0, s).

    s = the standard deviation of the embeddings, so random rows sit on the same scale.
    """
    std = embeddings.std().item()
    rows = torch.randn(n_classes, embeddings.shape[1]) * std  # (C, D)
    for c, word in enumerate(words or ()):
        ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
        if len(ids) == 1 and ids[0] != tokenizer.unk_token_id:
            rows[c] = embeddings[ids[0]].detach().float()
    return rows


class PromptModel(nn.Module):
    """Encoder + prompts + head (+ MI losses); ``forward``: logits and, given labels, losses."""

    def __init__(self, config: RunConfig, spec: TaskSpec, tokenizer, encoder: nn.Module):
        super().__init__()
        self.method = m = METHODS[config.method]
        self.theta = config.theta
        self.beta, self.gamma = config.beta or 0.0, config.gamma or 0.0
        embeddings = encoder.get_input_embeddings().weight  # (V, D)
        dim = embeddings.shape[1]
        encoder.requires_grad_(m.encoder == "all")
        if getattr(encoder, "pooler", None) is not None:  # unused (Z and P' read hidden states);
            encoder.pooler.requires_grad_(False)  # trainable, it would break DDP (no gradient)
        if m.encoder == "adapter":
            add_adapters(encoder, config.bottleneck)
        self.encoder = _with_lora(encoder, config) if m.encoder == "lora" else encoder
        self.embed = encoder.get_input_embeddings()
        self.prompts = _prompts(config, embeddings, tokenizer)
        self.head = nn.Linear(dim, len(spec.labels))
        with torch.no_grad():
            self.head.weight.copy_(
                label_word_rows(tokenizer, embeddings, spec.label_words, len(spec.labels))
            )
            self.head.bias.zero_()
        k_neg = (config.n_negatives or 2) - 1
        self.rep_mi = RepresentationMI(dim, k_neg, m.rep_negatives) if self.beta > 0 else None
        self.head_mi = HeadMI(dim) if self.gamma > 0 else None
        self.n_negatives = k_neg
        self.register_buffer(
            "special_ids", torch.tensor(tokenizer.all_special_ids), persistent=False
        )
        self.train(False)

    @property
    def generates_prompts(self) -> bool:
        return self.method.prompts in ("generated", "idpg")

    def train(self, mode: bool = True):
        """Train mode for the trainable parts; a frozen encoder stays in eval mode (no dropout)."""
        super().train(mode)
        self.encoder.train(mode and self.method.trains_encoder)
        return self

    def trainable(self) -> dict[str, torch.Tensor]:
        """Name → parameter for every parameter that receives gradient (what checkpoints hold)."""
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    def critics(self) -> dict[str, torch.Tensor]:
        """The MI terms' own parameters (W1; W2, f_μ, f_σ): name → parameter."""
        return {n: p for n, p in self.trainable().items() if n.startswith(CRITIC_PREFIXES)}

    def generator(self) -> list[torch.Tensor]:
        """The prompt generator's (or static prompts') parameters; [] without prompts."""
        return [] if self.prompts is None else list(self.prompts.parameters())

    @torch.no_grad()
    def plain_pass(self, input_ids, attention_mask, mask_pos):
        """The prompt-free pass Φ(X): P' = mean-pooled last hidden state and Z' = mask state."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        z = hidden[torch.arange(len(mask_pos), device=hidden.device), mask_pos]  # (B, D)
        return masked_mean(hidden, attention_mask).float(), z.float()

    def encode(self, input_ids, attention_mask, mask_pos, prompts=None, prompt_pos=None):
        """Z (B, D): the mask state, with prompts (B, n_p, D) written at prompt_pos (B, n_p)."""
        if prompts is None:
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        else:
            embeds = self.embed(input_ids)  # (B, T, D)
            index = prompt_pos.unsqueeze(-1).expand(-1, -1, embeds.shape[-1])  # (B, n_p, D)
            embeds = embeds.scatter(1, index, prompts.to(embeds.dtype))  # row b gets its own
            out = self.encoder(inputs_embeds=embeds, attention_mask=attention_mask)
        hidden = out.last_hidden_state  # (B, T, D)
        return hidden[torch.arange(len(mask_pos), device=hidden.device), mask_pos]

    def make_prompts(self, batch_size: int, pooled: torch.Tensor | None):
        """(B, n_p, D) prompts for this batch, or None for methods without prompts."""
        if self.prompts is None:
            return None
        return self.prompts(pooled if self.generates_prompts else batch_size)

    def forward(
        self,
        input_ids,  # (B, T)
        attention_mask,  # (B, T)
        mask_pos,  # (B,)
        prompt_pos=None,  # (B, n_p)
        pooled=None,  # (B, D) P' from the cache
        z_plain=None,  # (B, D) Z' from the cache
        labels=None,  # (B,)
        shuffle_prompts: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Logits (B, C); given labels, the loss and its parts. ``shuffle_prompts``: the MI terms
        see another example's P (rolled by one in the batch), the critics' control."""
        if self.method.probe is not None:
            logits = self.head(pooled if self.method.probe == "pooled" else z_plain).float()
            prompts = z = None
        else:
            prompts = self.make_prompts(len(input_ids), pooled)
            z = self.encode(input_ids, attention_mask, mask_pos, prompts, prompt_pos)  # (B, D)
            logits = self.head(z).float()  # (B, C)
        if labels is None:
            return {"logits": logits}
        parts = {"pred": F.cross_entropy(logits, labels)}
        if self.rep_mi is not None or self.head_mi is not None:
            p = prompts.float().mean(1)  # (B, D): P = mean of the example's prompt vectors
            if shuffle_prompts:
                p = p.roll(1, 0)
        if self.rep_mi is not None:
            parts["rep"] = self.rep_mi(p, z, z_plain)
        if self.head_mi is not None:
            parts["head"] = self.head_mi(p, self._theta(logits, labels), self._negatives(input_ids))
        weights = {"pred": 1.0, "rep": self.beta, "head": self.gamma}
        terms = {k: weights[k] * v for k, v in parts.items()}  # each term as it enters the loss
        loss = sum(terms.values())
        return {
            "logits": logits,
            "loss": loss,
            "terms": terms,
            **{k: v.detach() for k, v in parts.items()},
        }

    def _theta(self, logits, labels):
        return theta_of(self.theta, self.head.weight, logits, labels)  # (B, D)

    def _negatives(self, input_ids):
        """K − 1 negative prompts P_k: input embeddings of tokens drawn from each example's own
        text (B, K − 1, D)."""
        context = ~torch.isin(input_ids, self.special_ids)  # (B, T): no special, pad or mask
        pos = sample_context(context, self.n_negatives)  # (B, K − 1)
        return self.embed(input_ids.gather(1, pos)).detach().float()


def _prompts(config: RunConfig, embeddings: torch.Tensor, tokenizer):
    kind, dim = METHODS[config.method].prompts, embeddings.shape[1]
    if kind == "generated":
        return PromptGenerator(config.n_prompts, dim, config.bottleneck)
    if kind == "idpg":
        return IdpgGenerator(config.n_prompts, dim, config.bottleneck)
    if kind == "static":
        return StaticPrompts(embeddings, config.n_prompts, tokenizer.all_special_ids)
    return None


def _with_lora(encoder: nn.Module, config: RunConfig) -> nn.Module:
    """The encoder with LoRA adapters (PEFT) on its attention query and value projections."""
    from peft import LoraConfig, get_peft_model

    names = {n.rsplit(".", 1)[-1] for n, m in encoder.named_modules() if isinstance(m, nn.Linear)}
    targets = sorted(names & set(LORA_TARGETS))
    if not targets:
        raise ConfigError(
            f"lora: no attention projection named one of {LORA_TARGETS} in {type(encoder).__name__}"
        )
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, target_modules=targets)
    return get_peft_model(encoder, lora)
