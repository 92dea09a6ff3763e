"""Tasks and their templates: labels, verbalizers, metrics, and the one template grammar.

The tasks are those of InfoPrompt (Wu et al. 2023, arXiv 2306.04933): four GLUE sets (SST-2, RTE,
MRPC, CoLA), SemEval-2010 Task 8 relation classification, two generic JSONL tasks ("relation",
"entity") for the paper's ACE2005 relation extraction and entity typing, which the LDC licenses and
a user converts to JSONL (format below), and "tsv", any single-sentence or sentence-pair
classification data set of the user's (format below; not in ``TASKS``: its labels come from data).


Template grammar
----------------
A template is a string of whitespace-separated items, read left to right:

``<P>``
    a prompt slot group. The model spreads its ``n_p`` prompt vectors evenly over the groups, in
    order (WARP, Hambardzumyan et al. 2021, puts prompts before, around and after the mask).
``<A>``, ``<B>``
    the example's ``text_a`` and ``text_b``.
``<MASK>``
    the tokenizer's mask token; the classifier reads the hidden state there.
``<E1>``, ``<E2>``
    the text of ``Example.spans[0]`` and ``Example.spans[1]`` (entity mentions in ``text_a``).
anything else
    literal text, e.g. ``It was`` or ``?``.

The default templates are WARP-style with the wording of LM-BFF (Gao et al. 2021): SST-2
``"S1 It was <mask> ."``, CoLA ``"S1 This is <mask> ."``, MRPC ``"S1 <mask> , S2"``, RTE
``"S1 ? <mask> , S2"``, with prompt groups placed around the mask and between the sentences.
Relation tasks ask for the relation between the two mentions (``<E1> <MASK> <E2>``) and entity
typing for the type of the mention (``<E1> is a <MASK> .``). ``TASKS`` holds data only; override a
template with ``dataclasses.replace(TASKS["rte"], template="<P> <A> <P> <B> <P> <MASK> <P>")``.


Labels
------
Label id = index in ``TaskSpec.labels``. SST-2: 0 = negative, 1 = positive (words terrible/great).
CoLA: 0 = unacceptable, 1 = acceptable (incorrect/correct). MRPC: 0 = not paraphrase,
1 = paraphrase (No/Yes). RTE: 0 = entailment, 1 = not_entailment (Yes/No; LM-BFF's words).
SemEval: the 18 directed relations ``"Type(e1,e2)"``/``"Type(e2,e1)"`` then ``"Other"`` (19 ids).
Relation / entity / tsv: the labels of the train file, sorted (or the ``labels`` argument).

Encoding
--------
A template such as ``"<P> <A> <P> It was <MASK> . <P>"`` becomes, for one example, the token ids
``[CLS] p p A… p It was [MASK] . p [SEP]`` (n_p = 4 over G = 3 groups: 2, 1, 1; group i gets
n_p // G + (i < n_p % G) slots), the positions of the n_p prompt slots (their ids are the pad id;
the model writes the prompt vectors there through ``inputs_embeds``) and the mask position. The
same text without the ``<P>`` groups is the prompt-free input Φ(X) of the prompt generator. Only
the text parts (``<A>``, ``<B>``, ``<E1>``, ``<E2>``) are truncated to fit ``max_len``, longest
part first; the prompts, the literals, the mask and the special tokens are always kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from infoprompt.data import Example
from infoprompt.errors import ConfigError, DataError
from infoprompt.metrics import METRICS

TEMPLATE_SLOTS = ("<P>", "<A>", "<B>", "<MASK>", "<E1>", "<E2>")
TEXT_SLOTS = ("<A>", "<B>", "<E1>", "<E2>")


def template_problems(template: str, pair: bool) -> list[str]:
    """What is wrong with ``template`` under the grammar above ([] if nothing)."""
    items = template.split()
    problems = []
    if items.count("<MASK>") != 1:
        problems.append("it needs exactly one <MASK>")
    typos = [t for t in items if re.fullmatch(r"<\w+>", t) and t not in TEMPLATE_SLOTS]
    if typos:
        problems.append(f"unknown slots {typos} (slots: {' '.join(TEMPLATE_SLOTS)})")
    if "<A>" not in items:
        problems.append("it needs <A>")
    if ("<B>" in items) != pair:
        problems.append("<B> must appear if and only if the task is a pair task")
    return problems


@dataclass(frozen=True)
class TaskSpec:
    """A task: its labels, verbalizer, template (grammar in the module docstring) and metrics."""

    name: str
    labels: tuple[str, ...]
    label_words: tuple[str, ...] | None
    template: str
    metrics: tuple[str, ...]
    main_metric: str
    pair: bool

    def __post_init__(self) -> None:
        problems = template_problems(self.template, self.pair)
        if self.label_words is not None and len(self.label_words) != len(self.labels):
            problems.append(f"{len(self.label_words)} label words for {len(self.labels)} labels")
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            problems.append(f"unknown metrics {unknown} (known: {sorted(METRICS)})")
        if self.main_metric not in self.metrics:
            problems.append(f"main_metric {self.main_metric!r} is not in metrics {self.metrics}")
        if problems:
            raise ValueError(
                f"task {self.name!r}, template {self.template!r}: " + "; ".join(problems)
            )


SEMEVAL_RELATIONS = (
    "Cause-Effect",
    "Component-Whole",
    "Content-Container",
    "Entity-Destination",
    "Entity-Origin",
    "Instrument-Agency",
    "Member-Collection",
    "Message-Topic",
    "Product-Producer",
)
SEMEVAL_LABELS = tuple(
    f"{r}({a},{b})" for r in SEMEVAL_RELATIONS for a, b in (("e1", "e2"), ("e2", "e1"))
) + ("Other",)

_RELATION_TEMPLATE = "<P> <A> <P> <E1> <MASK> <E2> <P>"

TASKS: dict[str, TaskSpec] = {
    "sst2": TaskSpec(
        "sst2",
        ("negative", "positive"),
        ("terrible", "great"),
        "<P> <A> <P> It was <MASK> . <P>",
        ("accuracy",),
        "accuracy",
        pair=False,
    ),
    "rte": TaskSpec(
        "rte",
        ("entailment", "not_entailment"),
        ("Yes", "No"),
        "<P> <A> ? <P> <MASK> , <P> <B> <P>",
        ("accuracy",),
        "accuracy",
        pair=True,
    ),
    "mrpc": TaskSpec(
        "mrpc",
        ("not_paraphrase", "paraphrase"),
        ("No", "Yes"),
        "<P> <A> <P> <MASK> , <P> <B> <P>",
        ("accuracy", "f1"),
        "accuracy",
        pair=True,
    ),
    "cola": TaskSpec(
        "cola",
        ("unacceptable", "acceptable"),
        ("incorrect", "correct"),
        "<P> <A> <P> This is <MASK> . <P>",
        ("mcc", "accuracy"),
        "mcc",
        pair=False,
    ),
    "semeval": TaskSpec(
        "semeval",
        SEMEVAL_LABELS,
        None,
        _RELATION_TEMPLATE,
        ("semeval_macro_f1", "accuracy"),
        "semeval_macro_f1",
        pair=False,
    ),
    "relation": TaskSpec(
        "relation",
        (),
        None,
        _RELATION_TEMPLATE,
        ("macro_f1", "accuracy"),
        "macro_f1",
        pair=False,
    ),
    "entity": TaskSpec(
        "entity",
        (),
        None,
        "<P> <A> <P> <E1> is a <MASK> . <P>",
        ("accuracy", "macro_f1"),
        "accuracy",
        pair=False,
    ),
}


@dataclass(frozen=True)
class Encoded:
    """One example as token ids: the prompted sequence and the prompt-free one."""

    ids: tuple[int, ...]  # (T,) prompted; prompt slots hold the pad id
    prompt_pos: tuple[int, ...]  # (n_p,) where prompt vector j goes, in order
    mask_pos: int
    plain_ids: tuple[int, ...]  # (T - n_p,) the same text without the prompt slots
    plain_mask_pos: int
    truncated: bool = False  # a text part was cut to fit max_len


def group_sizes(n_prompts: int, n_groups: int) -> list[int]:
    """Prompt slots per ``<P>`` group, in order: n_p // G + (i < n_p % G)."""
    return [n_prompts // n_groups + (i < n_prompts % n_groups) for i in range(n_groups)]


def fit_lengths(lengths: list[int], budget: int) -> list[int]:
    """Longest-first truncation: shorten the longest part by one token until sum <= budget."""
    lengths = list(lengths)
    while sum(lengths) > budget:
        longest = max(range(len(lengths)), key=lengths.__getitem__)
        lengths[longest] -= 1
    return lengths


class Template:
    """A parsed template bound to a tokenizer, n_p and max_len; ``encode`` turns examples into ids.

    ``n_prompts = 0`` gives sequences without prompt slots (fine-tuning, LoRA).
    """

    def __init__(self, template: str, tokenizer: Any, n_prompts: int, max_len: int):
        if tokenizer.mask_token_id is None:
            raise ConfigError(
                f"tokenizer {type(tokenizer).__name__} has no mask token; "
                "use a masked-language-model encoder (BERT, RoBERTa, MiniLM, ...)"
            )
        self.tokenizer = tokenizer
        self.n_prompts = n_prompts
        self.max_len = max_len
        self.items = self._parse(template.split(), n_prompts)
        self.bos = _first_id(tokenizer, "cls_token_id", "bos_token_id")
        self.eos = _first_id(tokenizer, "sep_token_id", "eos_token_id")
        fixed = 2 + n_prompts + sum(len(v) for k, v in self.items if k == "lit") + 1
        self.budget = max_len - fixed
        if self.budget < len({k for k, _ in self.items if k in TEXT_SLOTS}):
            raise ConfigError(
                f"max_len={max_len} leaves no room for the text: the template {template!r} with "
                f"{n_prompts} prompts needs {fixed} tokens; raise max_len"
            )

    def _parse(self, words: list[str], n_prompts: int) -> list[tuple[str, Any]]:
        """Items ("<P>", n slots), ("<MASK>", None), (text slot, None) or ("lit", token ids)."""
        sizes = iter(group_sizes(n_prompts, max(words.count("<P>"), 1)))
        items: list[tuple[str, Any]] = []
        for w in words:
            if w == "<P>":
                items.append(("<P>", next(sizes)))
            elif w == "<MASK>" or w in TEXT_SLOTS:
                items.append((w, None))
            elif items and items[-1][0] == "lit_words":
                items[-1] = ("lit_words", f"{items[-1][1]} {w}")
            else:
                items.append(("lit_words", w))
        return [
            ("lit", self._tokens(v, first=i == 0)) if k == "lit_words" else (k, v)
            for i, (k, v) in enumerate(items)
        ]

    def _tokens(self, text: str, first: bool) -> list[int]:
        """Token ids of a piece; a leading space inside the sequence (BPE tokenizers mark it)."""
        piece = text if first else " " + text
        return self.tokenizer(piece, add_special_tokens=False)["input_ids"]

    def _texts(self, ex: Example) -> dict[str, str]:
        """The text of each slot of ``ex`` that the template uses."""
        texts = {"<A>": ex.text_a}
        if ex.text_b is not None:
            texts["<B>"] = ex.text_b
        for slot, span in zip(("<E1>", "<E2>"), ex.spans, strict=False):
            texts[slot] = ex.text_a[span[0] : span[1]]
        missing = [k for k, _ in self.items if k in TEXT_SLOTS and k not in texts]
        if missing:
            raise DataError(
                f"the template needs {missing} but the example has no "
                f"{'text_b' if '<B>' in missing else 'entity span'}: {ex}"
            )
        return texts

    def encode(self, ex: Example) -> Encoded:
        """Token ids, prompt positions and mask position of ``ex`` (texts truncated to fit)."""
        texts = self._texts(ex)
        slots = [i for i, (k, _) in enumerate(self.items) if k in TEXT_SLOTS]
        tokens = {i: self._tokens(texts[self.items[i][0]], first=i == 0) for i in slots}
        full = [len(tokens[i]) for i in slots]
        kept = fit_lengths(full, self.budget)
        tokens.update({i: tokens[i][:n] for i, n in zip(slots, kept, strict=True)})
        ids, plain, prompt_pos = [self.bos], [self.bos], list[int]()
        mask_pos = plain_mask_pos = -1
        for i, (kind, value) in enumerate(self.items):
            if kind == "<P>":
                prompt_pos += range(len(ids), len(ids) + value)
                ids += [self.tokenizer.pad_token_id] * value
                continue
            if kind == "<MASK>":
                mask_pos, plain_mask_pos = len(ids), len(plain)
                piece = [self.tokenizer.mask_token_id]
            else:
                piece = value if kind == "lit" else tokens[i]
            ids += piece
            plain += piece
        ids.append(self.eos)
        plain.append(self.eos)
        cut = kept != full
        return Encoded(tuple(ids), tuple(prompt_pos), mask_pos, tuple(plain), plain_mask_pos, cut)


def _first_id(tokenizer: Any, *names: str) -> int:
    """The first of the tokenizer's special ids ``names`` that it defines."""
    for name in names:
        value = getattr(tokenizer, name, None)
        if value is not None:
            return value
    raise ConfigError(f"tokenizer {type(tokenizer).__name__} defines none of {names}")
