"""Templates and the prompted model on tiny random BERT and RoBERTa encoders."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest
import torch

from infoprompt.config import ConfigError, RunConfig
from infoprompt.data import Example
from infoprompt.errors import DataError
from infoprompt.loop import make_optimizer
from infoprompt.model import PromptModel, load_backbone
from infoprompt.session import Split, collate, make_template, plain_cache
from infoprompt.tasks import TASKS, Template, fit_lengths, group_sizes

CPU = SimpleNamespace(device="cpu", autocast=contextlib.nullcontext)  # an Accelerator's interface
TEXTS = ["a gem of a film", "the worst film this year , boring and long", "warm"]


@pytest.fixture(params=["tiny_bert", "tiny_roberta"])
def backbone(request):
    return request.getfixturevalue(request.param)


def build(model_dir, method="infoprompt", task="sst2", **kw):
    config = RunConfig(task=task, data_dir=".", out=".", model=model_dir, method=method, **kw)
    tokenizer, encoder = load_backbone(model_dir)
    torch.manual_seed(0)
    return config, tokenizer, PromptModel(config, TASKS[task], tokenizer, encoder)


def batch_of(config, tokenizer, model, texts, labels=None):
    """Collated batch (with P', Z' from the prompt-free pass) for ``texts``."""
    template = make_template(config, TASKS[config.task], tokenizer)
    examples = [Example(t, label=i % 2) for i, t in enumerate(texts)]
    split = Split([template.encode(e) for e in examples], labels or [e.label for e in examples])
    if model.generates_prompts:
        pad = tokenizer.pad_token_id
        cache = plain_cache(model, CPU, split, config.eval_batch_size, pad)
        split = Split(split.encoded, split.labels, cache)
    return collate(split, list(range(len(texts))), tokenizer.pad_token_id, "cpu")


# --- templates ----------------------------------------------------------------------------------


def test_prompts_are_spread_evenly_over_the_groups():
    assert group_sizes(4, 3) == [2, 1, 1]
    assert group_sizes(1, 3) == [1, 0, 0]
    assert group_sizes(5, 2) == [3, 2]


def test_truncation_shortens_the_longest_part_first():
    assert fit_lengths([10, 3], 8) == [5, 3]
    assert fit_lengths([4, 4], 5) == [2, 3]
    assert fit_lengths([2, 3], 10) == [2, 3]


def test_template_places_prompts_mask_and_text(backbone):
    _, tokenizer, _ = build(backbone)
    enc = Template(TASKS["sst2"].template, tokenizer, 4, 64).encode(Example("a gem of a film"))
    assert len(enc.prompt_pos) == 4
    assert all(enc.ids[i] == tokenizer.pad_token_id for i in enc.prompt_pos)
    assert enc.ids[enc.mask_pos] == tokenizer.mask_token_id
    assert enc.plain_ids == tuple(t for i, t in enumerate(enc.ids) if i not in enc.prompt_pos)
    assert enc.plain_ids[enc.plain_mask_pos] == tokenizer.mask_token_id
    assert enc.ids[0] == tokenizer.cls_token_id and enc.ids[-1] == tokenizer.sep_token_id
    text = tokenizer.decode([t for t in enc.plain_ids[1:-1]]).lower()
    assert "gem of a film" in text and "it was" in text
    # groups "<P> <A> <P> It was <MASK> . <P>" get 2, 1, 1 slots: two before the text
    assert enc.prompt_pos[:2] == (1, 2) and enc.prompt_pos[3] == len(enc.ids) - 2


def test_only_the_text_is_truncated(tiny_bert):
    _, tokenizer, _ = build(tiny_bert)
    template = Template(TASKS["rte"].template, tokenizer, 4, 24)
    enc = template.encode(Example("word " * 40, "short one", 0))
    assert len(enc.ids) == 24 and len(enc.prompt_pos) == 4
    assert enc.ids[enc.mask_pos] == tokenizer.mask_token_id
    assert "short one" in tokenizer.decode(enc.plain_ids)


def test_entity_slots_take_the_span_text(tiny_bert):
    _, tokenizer, _ = build(tiny_bert)
    template = Template(TASKS["semeval"].template, tokenizer, 2, 64)
    enc = template.encode(Example("the cup holds tea", spans=((4, 7), (14, 17))))
    words = tokenizer.decode(enc.plain_ids[1:-1]).split()
    assert words[-3:] == ["cup", tokenizer.mask_token, "tea"]


def test_template_errors_name_the_problem(tiny_bert):
    _, tokenizer, _ = build(tiny_bert)
    with pytest.raises(DataError, match="needs.*<B>.*text_b"):
        Template(TASKS["rte"].template, tokenizer, 4, 64).encode(Example("only one sentence"))
    with pytest.raises(ConfigError, match="max_len=8 leaves no room"):
        Template(TASKS["sst2"].template, tokenizer, 4, 8)


# --- the prompted model -------------------------------------------------------------------------


def test_each_example_receives_its_own_prompts(backbone):
    """Fails if a batch shares one example's prompts (the public code's bug)."""
    config, tokenizer, model = build(backbone)
    batch = batch_of(config, tokenizer, model, TEXTS)
    seen = {}
    forward = model.encoder.forward

    def spy(*args, **kw):
        seen.update(kw)
        return forward(*args, **kw)

    model.encoder.forward = spy
    with torch.no_grad():
        z = model.encode(
            batch["input_ids"],
            batch["attention_mask"],
            batch["mask_pos"],
            prompts := model.make_prompts(3, batch["pooled"]),
            batch["prompt_pos"],
        )
    embeds = seen["inputs_embeds"]  # (B, T, D)
    for b in range(3):
        assert torch.equal(embeds[b, batch["prompt_pos"][b]], prompts[b])
    assert not torch.allclose(prompts[0], prompts[1])
    model.encoder.forward = forward
    for b in range(3):  # each row equals the same example run alone
        alone = {k: v[b : b + 1] for k, v in batch.items() if k != "labels"}
        t = int(alone["attention_mask"].sum())
        alone["input_ids"], alone["attention_mask"] = (
            alone["input_ids"][:, :t],
            alone["attention_mask"][:, :t],
        )
        with torch.no_grad():
            logits = model(**alone)["logits"]
        assert torch.allclose(logits[0], model.head(z[b]), atol=1e-5)


def test_gradients_reach_only_trainable_parameters(backbone):
    config, tokenizer, model = build(backbone)
    with torch.no_grad():  # non-zero bilinear weights, so that the MI losses reach the prompts
        model.rep_mi.W2.normal_()
        model.head_mi.W1.normal_()
    model.train(True)
    assert not model.encoder.training  # the frozen encoder stays in eval mode
    out = model(**batch_of(config, tokenizer, model, TEXTS))
    out["loss"].backward()
    assert set(out) >= {"pred", "rep", "head"}
    for name, p in model.encoder.named_parameters():
        assert not p.requires_grad and p.grad is None, name
    trainable = model.trainable()
    assert trainable and not any(n.startswith("encoder.") for n in trainable)
    for name, p in trainable.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("method", ["infoprompt", "warp", "lora"])
def test_encoder_weights_unchanged_after_training_steps(tiny_bert, method):
    config, tokenizer, model = build(tiny_bert, method=method, lr=1e-2)
    before = {k: v.clone() for k, v in model.encoder.state_dict().items() if "lora_" not in k}
    trainable_before = {k: v.detach().clone() for k, v in model.trainable().items()}
    batch = batch_of(config, tokenizer, model, TEXTS)
    optimizer, scheduler = make_optimizer(model, config, total_steps=3)
    model.train(True)
    for _ in range(3):
        model(**batch)["loss"].backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    after = model.encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    changed = [k for k, v in model.trainable().items() if not torch.equal(v, trainable_before[k])]
    assert "head.weight" in changed and len(changed) >= 2
    if method == "lora":
        assert all("lora_" in k or k.startswith("head.") for k in model.trainable())


def test_finetune_trains_the_encoder(tiny_bert):
    _, _, model = build(tiny_bert, method="finetune")
    assert any(n.startswith("encoder.") for n in model.trainable())
    model.train(True)
    assert model.encoder.training


def test_head_rows_start_at_the_label_word_embeddings(backbone):
    _, tokenizer, model = build(backbone)
    emb = model.embed.weight
    for c, word in enumerate(TASKS["sst2"].label_words):
        ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
        if len(ids) == 1:
            assert torch.equal(model.head.weight[c], emb[ids[0]])
    assert torch.all(model.head.bias == 0)


def test_warp_prompts_start_at_vocabulary_embeddings(tiny_bert):
    _, tokenizer, model = build(tiny_bert, method="warp")
    emb = model.embed.weight
    for row in model.prompts.prompts:
        match = (emb == row).all(-1).nonzero().flatten().tolist()
        assert match and match[0] not in tokenizer.all_special_ids


def test_generated_prompts_start_on_the_embedding_scale(tiny_bert):
    config, tokenizer, model = build(tiny_bert)
    batch = batch_of(config, tokenizer, model, TEXTS)
    target = model.embed.weight.std().item()
    model.prompts.calibrate_(batch["pooled"], target)
    assert model.prompts(batch["pooled"]).std().item() == pytest.approx(target, rel=1e-4)
