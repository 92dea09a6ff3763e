"""The generic "tsv" task (TsvFormat, load_split("tsv", ...)) and one-line errors for bad files."""

from __future__ import annotations

from collections import Counter

import pytest

from infoprompt.data import Example
from infoprompt.errors import DataError
from infoprompt.readers import TASK_NAMES, load_split
from infoprompt.sampling import draw
from infoprompt.tasks import TASKS
from infoprompt.tsv import TsvFormat

QUESTIONS = {
    "ABBR": ["What does NASA stand for ?", "What is the abbreviation of kilogram ?"],
    "DESC": ["Why is the sky blue ?", "How does a magnet work ?"],
    "ENTY": ["What is the largest animal ?", "Which instrument has 88 keys ?"],
    "HUM": ["Who wrote Hamlet ?", "Who painted the Mona Lisa ?"],
    "LOC": ["Where is Mount Kilimanjaro ?", "What city is the Eiffel Tower in ?"],
    "NUM": ["How far is Denver from Aspen ?", "When did World War II end ?"],
}


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def question_dir(tmp_path, copies=5):
    """A six-class question-type task: train.tsv (copies × 2 per class), dev.tsv (2 per class)."""
    rows = [
        f"{q} #{k}\t{label}" for label, qs in QUESTIONS.items() for q in qs for k in range(copies)
    ]
    write(tmp_path / "train.tsv", "question\tlabel\n" + "\n".join(rows) + "\n")
    dev = [f"{q}\t{label}" for label, qs in reversed(QUESTIONS.items()) for q in qs]
    write(tmp_path / "dev.tsv", "question\tlabel\n" + "\n".join(dev) + "\n")
    return tmp_path


QUESTION = TsvFormat(text_columns=("question",))


def test_six_class_single_sentence_task(tmp_path):
    spec, train = load_split("tsv", question_dir(tmp_path), "train", tsv=QUESTION)
    assert spec.name == "tsv" and spec.labels == ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
    assert spec.template == "<P> <A> <P> <MASK> <P>" and not spec.pair
    assert spec.metrics == ("accuracy", "macro_f1") and spec.main_metric == "accuracy"
    assert spec.label_words is None
    assert len(train) == 60 and train[0] == Example("What does NASA stand for ? #0", label=0)
    dev_spec, dev = load_split("tsv", tmp_path, "dev", tsv=QUESTION)
    assert dev_spec == spec and dev[0] == Example("How far is Denver from Aspen ?", label=5)
    assert load_split("tsv", tmp_path, "dev", labels=spec.labels, tsv=QUESTION) == (spec, dev)


def test_six_class_task_draws_balanced(tmp_path):
    spec, examples = load_split("tsv", question_dir(tmp_path), "train", tsv=QUESTION)
    train, val = draw(examples, 26, 26, seed=1, n_labels=6, label_names=spec.labels)
    for drawn in (train, val):
        assert sorted(Counter(e.label for e in drawn).values()) == [4, 4, 4, 4, 5, 5]
    assert not set(train) & set(val)
    with pytest.raises(DataError, match=r"class 5 \('NUM'\) has 8 example\(s\) but needs 9"):
        draw(examples[:-2], 30, 24, seed=1, n_labels=6, label_names=spec.labels)


def test_pair_task_with_label_words_and_extra_columns(tmp_path):
    header = "id\tpremise\thypothesis\tgold\n"
    write(
        tmp_path / "train.tsv",
        header + "1\tA dog ran.\tAn animal ran.\tyes\n2\tIt rained.\tIt was dry.\tno\n",
    )
    write(tmp_path / "dev.tsv", header + "7\tA cat sat.\tA cat stood.\tno\n")
    fmt = TsvFormat(("premise", "hypothesis"), "gold", label_words=("No", "Yes"))
    spec, train = load_split("tsv", tmp_path, "train", tsv=fmt)
    assert spec.pair and spec.template == "<P> <A> <P> <MASK> , <P> <B> <P>"
    assert spec.labels == ("no", "yes") and spec.label_words == ("No", "Yes")
    assert train == [
        Example("A dog ran.", "An animal ran.", 1),
        Example("It rained.", "It was dry.", 0),
    ]
    assert load_split("tsv", tmp_path, "dev", tsv=fmt)[1] == [
        Example("A cat sat.", "A cat stood.", 0)
    ]


def test_format_accepts_lists_and_comma_strings_and_a_template(tmp_path):
    fmt = TsvFormat("premise, hypothesis", "gold", label_words=["No", "Yes"])
    assert fmt.text_columns == ("premise", "hypothesis") and fmt.label_words == ("No", "Yes")
    question_dir(tmp_path)
    custom = TsvFormat(["question"], template="<P> <A> ? <P> It is about <MASK> . <P>")
    assert load_split("tsv", tmp_path, "train", tsv=custom)[0].template == custom.template


def test_tsv_is_a_task_name_but_not_in_tasks():
    assert "tsv" in TASK_NAMES and "tsv" not in TASKS


# --- errors, each naming file and line ---------------------------------------------------------


def test_missing_column_lists_the_header(tmp_path):
    question_dir(tmp_path)
    with pytest.raises(
        DataError,
        match=r"train\.tsv, line 1: no column 'sentence' in the header; "
        r"its columns: question, label\..*text_columns=",
    ):
        load_split("tsv", tmp_path, "train")
    with pytest.raises(DataError, match=r"no column 'kind'.*--label-column"):
        load_split("tsv", tmp_path, "train", tsv=TsvFormat(("question",), "kind"))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", r"train\.tsv: empty file; expected a header row naming the columns \(question, label"),
        ("\n\n", r"train\.tsv: empty file"),
        ("question\tlabel\n", r"train\.tsv: only a header \(line 1\), no examples"),
        (
            "question\tlabel\nWho ?\tHUM\nWhere ?\tLOC\textra\n",
            r"train\.tsv, line 3: expected 2 tab-separated fields .*, got 3",
        ),
        ("question\tlabel\nWho ?\n", r"train\.tsv, line 2: expected 2 tab-separated fields"),
        ("question\tlabel\nWho ?\t \n", r"train\.tsv, line 2: empty label \(column 'label'\)"),
        ("question\tlabel\tlabel\nWho ?\tHUM\tHUM\n", r"line 1: the header names .*'label'"),
        ("question\tlabel\nWho ?\tHUM\nWho else ?\tHUM\n", "at least two distinct strings"),
    ],
)
def test_bad_train_file(tmp_path, text, problem):
    write(tmp_path / "train.tsv", text)
    write(tmp_path / "dev.tsv", "question\tlabel\nWho ?\tHUM\n")
    with pytest.raises(DataError, match=problem) as err:
        load_split("tsv", tmp_path, "train", tsv=QUESTION)
    assert str(tmp_path / "train.tsv") in str(err.value)


def test_binary_file_is_one_line_error(tmp_path):
    (tmp_path / "train.tsv").write_bytes(b"question\tlabel\nWho ?\tHUM\n\x1f\x8b\x08\x00\xff\n")
    with pytest.raises(DataError, match=r"train\.tsv, line 3: not UTF-8 text \(byte 0x8b") as err:
        load_split("tsv", tmp_path, "train", tsv=QUESTION)
    assert "\n" not in str(err.value) and err.value.__suppress_context__


def test_dev_label_unseen_in_train(tmp_path):
    question_dir(tmp_path)
    write(tmp_path / "dev.tsv", "question\tlabel\nWho ?\tHUM\nWhat colour ?\tCOLOR\n")
    pattern = (
        r"dev\.tsv, line 3: label 'COLOR' does not occur in train\.tsv; the train labels: "
        r"ABBR, DESC, ENTY, HUM, LOC, NUM\."
    )
    with pytest.raises(DataError, match=pattern):
        load_split("tsv", tmp_path, "dev", tsv=QUESTION)
    labels = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
    with pytest.raises(DataError, match=pattern):
        load_split("tsv", tmp_path, "dev", labels=labels, tsv=QUESTION)


def test_dev_without_train_needs_labels(tmp_path):
    write(tmp_path / "dev.tsv", "question\tlabel\nWho ?\tHUM\n")
    with pytest.raises(DataError, match=r"train\.tsv, which does not exist.*labels="):
        load_split("tsv", tmp_path, "dev", tsv=QUESTION)


def test_label_words_must_match_the_sorted_labels(tmp_path):
    question_dir(tmp_path)
    fmt = TsvFormat(("question",), label_words=("abbreviation", "description"))
    with pytest.raises(
        DataError,
        match=r"2 label words .* for 6 labels; .*sorted label order: "
        r"ABBR, DESC, ENTY, HUM, LOC, NUM",
    ):
        load_split("tsv", tmp_path, "train", tsv=fmt)


@pytest.mark.parametrize(
    ("fmt", "problem"),
    [
        (dict(text_columns=("question",), template="<P> <A> <P>"), "exactly one <MASK>"),
        (
            dict(text_columns=("question",), template="<A> <MASK> <B>"),
            r"<B> must appear.*second text",
        ),
        (dict(text_columns=("question",), template="<E1> <A> <MASK>"), "no spans"),
    ],
)
def test_bad_template(tmp_path, fmt, problem):
    question_dir(tmp_path)
    with pytest.raises(DataError, match=problem):
        load_split("tsv", tmp_path, "train", tsv=TsvFormat(**fmt))


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        (dict(text_columns=()), "1 column .* or 2"),
        (dict(text_columns=("a", "b", "c")), "got 3"),
        (dict(text_columns=("label",)), "distinct"),
    ],
)
def test_bad_format(kwargs, problem):
    with pytest.raises(DataError, match=problem):
        TsvFormat(**kwargs)


def test_tsv_format_only_for_the_tsv_task(tmp_path):
    with pytest.raises(DataError, match="applies only to task 'tsv'"):
        load_split("sst2", tmp_path, "train", tsv=QUESTION)


# --- the fixed tasks: header-only and binary files are one-line errors too ---------------------


def test_glue_header_only_file(tmp_path):
    write(tmp_path / "train.tsv", "sentence\tlabel\n")
    with pytest.raises(
        DataError, match=r"train\.tsv: no examples \(the file is empty or holds only"
    ):
        load_split("sst2", tmp_path, "train")


def test_glue_binary_file(tmp_path):
    (tmp_path / "dev.tsv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    write(tmp_path / "out_of_domain_dev.tsv", "clc95\t1\t\tSomebody left.\n")
    with pytest.raises(
        DataError, match=r"dev\.tsv, line 1: not UTF-8 text \(byte 0x89 at offset 0"
    ):
        load_split("cola", tmp_path, "dev")


def test_jsonl_header_only_is_empty(tmp_path):
    write(tmp_path / "train.jsonl", '{"text": "Ann met Bob", "span": [0, 3], "label": "PER"}\n')
    write(tmp_path / "dev.jsonl", "\n")
    with pytest.raises(DataError, match=r"dev\.jsonl: no examples"):
        load_split("entity", tmp_path, "dev")
