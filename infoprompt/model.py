"""The prompted classifier: a frozen (or partly trained) encoder, prompts, a head and the MI losses.

Conventions: B examples, T tokens, D hidden size, n_p prompts, C classes. The method object
(``infoprompt.methods.Method``) builds what it trains: the prompt module (``infoprompt.prompts``)
and the encoder's trained parts (``infoprompt.adapters``).

- Encoder Φ: any Hugging Face encoder with a mask token (``AutoModel``), kept in eval mode and
  without gradient to its weights, except for ``finetune`` (all weights), ``lora`` (PEFT LoRA
  adapters) and ``adapter`` (``adapters.Adapter`` after the last linear layer of every transformer
  block).
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

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from infoprompt.backbone import load_backbone
from infoprompt.config import RunConfig
from infoprompt.losses import HeadMI, RepresentationMI, sample_context, theta_of
from infoprompt.tasks import TaskSpec

__all__ = ["PromptModel", "label_word_rows", "load_backbone", "masked_mean"]  # load_backbone:
# notebooks/04 imports it from here

CRITIC_PREFIXES = ("rep_mi.", "head_mi.")


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of hidden (B, T, D) over the positions where attention_mask (B, T) is 1 → (B, D)."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


def label_word_rows(
    tokenizer: Any, embeddings: Tensor, words: Sequence[str] | None, n_classes: int
) -> Tensor:
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

    special_ids: torch.Tensor  # (S,) the tokenizer's special ids, never negatives
    embed: nn.Embedding  # the encoder's input embeddings (V, D)

    def __init__(self, config: RunConfig, spec: TaskSpec, tokenizer: Any, encoder: Any):
        super().__init__()
        self.method = m = config.method_spec
        self.theta = config.theta
        self.beta, self.gamma = config.loss_weights
        embeddings = encoder.get_input_embeddings().weight  # (V, D)
        dim = embeddings.shape[1]
        self.encoder = m.wrap_encoder(encoder, config)
        self.embed = encoder.get_input_embeddings()
        self.prompts = m.build_prompts(config, embeddings, tokenizer.all_special_ids)
        self.head = nn.Linear(dim, len(spec.labels))
        with torch.no_grad():
            self.head.weight.copy_(
                label_word_rows(tokenizer, embeddings, spec.label_words, len(spec.labels))
            )
            self.head.bias.zero_()
        k_neg = m.negatives(config)
        self.rep_mi = RepresentationMI(dim, k_neg, m.rep_negatives) if self.beta > 0 else None
        self.head_mi = HeadMI(dim) if self.gamma > 0 else None
        self.n_negatives = k_neg
        self.register_buffer(
            "special_ids", torch.tensor(tokenizer.all_special_ids), persistent=False
        )
        self.train(False)

    @property
    def generates_prompts(self) -> bool:
        return self.method.generates_prompts

    def train(self, mode: bool = True) -> PromptModel:
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
    def plain_pass(
        self, input_ids: Tensor, attention_mask: Tensor, mask_pos: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The prompt-free pass Φ(X): P' = mean-pooled last hidden state and Z' = mask state."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        z = hidden[torch.arange(len(mask_pos), device=hidden.device), mask_pos]  # (B, D)
        return masked_mean(hidden, attention_mask).float(), z.float()

    def encode(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        mask_pos: Tensor,
        prompts: Tensor | None = None,
        prompt_pos: Tensor | None = None,
    ) -> Tensor:
        """Z (B, D): the mask state, with prompts (B, n_p, D) written at prompt_pos (B, n_p)."""
        if prompts is None:
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        else:
            assert prompt_pos is not None  # prompts come with their slots
            embeds = self.embed(input_ids)  # (B, T, D)
            index = prompt_pos.unsqueeze(-1).expand(-1, -1, embeds.shape[-1])  # (B, n_p, D)
            embeds = embeds.scatter(1, index, prompts.to(embeds.dtype))  # row b gets its own
            out = self.encoder(inputs_embeds=embeds, attention_mask=attention_mask)
        hidden = out.last_hidden_state  # (B, T, D)
        return hidden[torch.arange(len(mask_pos), device=hidden.device), mask_pos]

    def make_prompts(self, batch_size: int, pooled: Tensor | None) -> Tensor | None:
        """(B, n_p, D) prompts for this batch, or None for methods without prompts."""
        if self.prompts is None:
            return None
        return self.prompts(pooled if self.generates_prompts else batch_size)

    def forward(
        self,
        input_ids: Tensor,  # (B, T)
        attention_mask: Tensor,  # (B, T)
        mask_pos: Tensor,  # (B,)
        prompt_pos: Tensor | None = None,  # (B, n_p)
        pooled: Tensor | None = None,  # (B, D) P' from the cache
        z_plain: Tensor | None = None,  # (B, D) Z' from the cache
        labels: Tensor | None = None,  # (B,)
        shuffle_prompts: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Logits (B, C); given labels, the loss and its parts. ``shuffle_prompts``: the MI terms
        see another example's P (rolled by one in the batch), the critics' control."""
        features = self.method.probe_features(pooled, z_plain)
        if features is not None:
            logits = self.head(features).float()
            prompts = z = None
        else:
            prompts = self.make_prompts(len(input_ids), pooled)
            z = self.encode(input_ids, attention_mask, mask_pos, prompts, prompt_pos)  # (B, D)
            logits = self.head(z).float()  # (B, C)
        if labels is None:
            return {"logits": logits}
        parts = {"pred": F.cross_entropy(logits, labels)}
        if self.rep_mi is not None or self.head_mi is not None:
            assert prompts is not None  # the MI losses exist for prompt generators only
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

    def _theta(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        assert self.theta is not None  # set for every method with NCE_head
        return theta_of(self.theta, self.head.weight, logits, labels)  # (B, D)

    def _negatives(self, input_ids: Tensor) -> Tensor:
        """K − 1 negative prompts P_k: input embeddings of tokens drawn from each example's own
        text (B, K − 1, D)."""
        context = ~torch.isin(input_ids, self.special_ids)  # (B, T): no special, pad or mask
        pos = sample_context(context, self.n_negatives)  # (B, K − 1)
        return self.embed(input_ids.gather(1, pos)).detach().float()
