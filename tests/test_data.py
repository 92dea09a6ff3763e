"""Readers on tiny fixtures in the real file formats, error messages, and few-shot sampling."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infoprompt.data import Example
from infoprompt.errors import DataError
from infoprompt.readers import load_split
from infoprompt.sampling import draw
from infoprompt.tasks import TASKS


def few_shot(examples, shots, seed, n_labels):
    """The proportional training draw alone (the rule of the former ``few_shot``)."""
    return draw(examples, shots, 0, seed, n_labels, sampling="proportional")[0]


def write(path, text, encoding="utf-8"):
    path.write_text(text, encoding=encoding)
    return path


# --- GLUE readers -------------------------------------------------------------------------------


def test_sst2_reads_header_and_labels(tmp_path):
    write(tmp_path / "train.tsv", "sentence\tlabel\nhide new secretions \t0\na gem\t1\n")
    spec, ex = load_split("sst2", tmp_path, "train")
    assert spec is TASKS["sst2"]
    assert ex == [Example("hide new secretions", label=0), Example("a gem", label=1)]
    assert spec.labels[1] == "positive" and spec.label_words == ("terrible", "great")


def test_rte_reads_pairs_with_named_labels(tmp_path):
    rows = "index\tsentence1\tsentence2\tlabel\n0\tA dog ran.\tAn animal ran.\tentailment\n"
    write(tmp_path / "dev.tsv", rows + "1\tIt rained.\tIt was dry.\tnot_entailment\r\n")
    spec, ex = load_split("rte", tmp_path, "dev")
    assert ex == [
        Example("A dog ran.", "An animal ran.", 0),
        Example("It rained.", "It was dry.", 1),
    ]
    assert spec.labels == ("entailment", "not_entailment") and spec.label_words == ("Yes", "No")


def test_mrpc_header_with_bom(tmp_path):
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    write(tmp_path / "train.tsv", header + "1\t7\t8\tHe left .\tHe went away .\n", "utf-8-sig")
    assert (tmp_path / "train.tsv").read_bytes()[:3] == b"\xef\xbb\xbf"
    spec, ex = load_split("mrpc", tmp_path, "train")
    assert ex == [Example("He left .", "He went away .", 1)]
    assert spec.metrics == ("accuracy", "f1") and spec.label_words[1] == "Yes"


def test_cola_dev_joins_in_domain_and_out_of_domain(tmp_path):
    write(tmp_path / "dev.tsv", "gj04\t1\t\tGood one.\ngj04\t0\t*\tOne good the.\n")
    write(tmp_path / "out_of_domain_dev.tsv", "clc95\t1\t\tSomebody left.\n")
    spec, ex = load_split("cola", tmp_path, "dev")
    assert [e.text_a for e in ex] == ["Good one.", "One good the.", "Somebody left."]
    assert [e.label for e in ex] == [1, 0, 1]
    assert spec.main_metric == "mcc"


# --- SemEval-2010 Task 8 ------------------------------------------------------------------------

SEMEVAL = (
    '1\t"The <e1>child</e1> was put in the <e2>cradle</e2>."\n'
    "Entity-Destination(e1,e2)\n"
    "Comment: a comment\n"
    "\n"
    '2\t"A <e2>cord</e2> tied the <e1>bundle</e1>."\n'
    "Other\n"
    "Comment:\n"
    "\n"
)


def test_semeval_blocks_give_text_without_tags_and_entity_spans(tmp_path):
    write(tmp_path / "TEST_FILE_FULL.TXT", SEMEVAL)
    spec, ex = load_split("semeval", tmp_path, "dev")
    assert ex[0].text_a == "The child was put in the cradle."
    assert [ex[0].text_a[a:b] for a, b in ex[0].spans] == ["child", "cradle"]
    assert ex[1].text_a == "A cord tied the bundle."
    assert [ex[1].text_a[a:b] for a, b in ex[1].spans] == ["bundle", "cord"]
    assert [spec.labels[e.label] for e in ex] == ["Entity-Destination(e1,e2)", "Other"]
    assert len(spec.labels) == 19 and spec.main_metric == "semeval_macro_f1"


def test_semeval_last_block_may_lack_its_blank_line(tmp_path):
    write(tmp_path / "TRAIN_FILE.TXT", SEMEVAL.rstrip("\n"))
    assert len(load_split("semeval", tmp_path, "train")[1]) == 2


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (SEMEVAL.replace("</e2>", "", 1), "line 1: the sentence must contain each of"),
        (SEMEVAL.replace("Other", "Cause-Effect"), "line 6: unknown label 'Cause-Effect'"),
        (
            SEMEVAL.replace("Comment:\n", "Note\n"),
            "line 7: expected 'Comment: ...', the third line .* from line 5",
        ),
        (SEMEVAL.replace('1\t"The', '1 "The'), 'line 1: expected id<TAB>"sentence"'),
        (SEMEVAL[: SEMEVAL.index("Other") + 6], "line 7: expected 'Comment: ...'"),
        (
            SEMEVAL.replace("Comment: a comment\n\n", "Comment: a comment\nx\n"),
            "line 4: expected a b",
        ),
    ],
)
def test_semeval_bad_block_names_line(tmp_path, text, problem):
    path = write(tmp_path / "TRAIN_FILE.TXT", text)
    with pytest.raises(DataError, match=problem) as err:
        load_split("semeval", tmp_path, "train")
    assert str(path) in str(err.value)


# --- JSONL readers ------------------------------------------------------------------------------


def write_jsonl(path, objects):
    return write(path, "".join(json.dumps(o) + "\n" for o in objects))


RELATIONS = [
    {"text": "Ann works for Acme.", "head": [0, 3], "tail": [14, 18], "label": "ORG-AFF"},
    {"text": "Bob is in Rome.", "head": [0, 3], "tail": [10, 14], "label": "GEN-AFF"},
]


def test_relation_jsonl_labels_sorted_from_train(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", RELATIONS)
    write_jsonl(tmp_path / "dev.jsonl", RELATIONS[:1])
    spec, ex = load_split("relation", tmp_path, "dev")
    assert spec.labels == ("GEN-AFF", "ORG-AFF")
    assert ex == [Example("Ann works for Acme.", label=1, spans=((0, 3), (14, 18)))]


def test_entity_jsonl_with_given_labels(tmp_path):
    write_jsonl(
        tmp_path / "train.jsonl", [{"text": "Paris is big.", "span": [0, 5], "label": "GPE"}]
    )
    spec, ex = load_split("entity", tmp_path, "train", labels=["PER", "GPE"])
    assert spec.labels == ("PER", "GPE") and spec.template == TASKS["entity"].template
    assert ex == [Example("Paris is big.", label=1, spans=((0, 5),))]


def test_jsonl_unknown_dev_label(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", RELATIONS)
    write_jsonl(tmp_path / "dev.jsonl", [RELATIONS[0], {**RELATIONS[1], "label": "PART-WHOLE"}])
    with pytest.raises(DataError, match=r"dev\.jsonl, line 2: unknown label 'PART-WHOLE'"):
        load_split("relation", tmp_path, "dev")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"text": "Ann", "head": [0, 3], "label": "X"}', r"missing \['tail'\]"),
        ('{"text": "Ann", "head": [0, 9], "tail": [0, 1], "label": "X"}', "'head' must be"),
        ('{"text": "Ann", "head": [0, 3], "tail": [0, 1], "label": 3}', "must be strings"),
        ("{not json", "not valid JSON"),
    ],
)
def test_jsonl_bad_line_names_line(tmp_path, line, problem):
    write(tmp_path / "train.jsonl", json.dumps(RELATIONS[0]) + "\n" + line + "\n")
    with pytest.raises(DataError, match=rf"train\.jsonl, line 2: .*{problem}"):
        load_split("relation", tmp_path, "train")


def test_jsonl_dev_without_train_or_labels(tmp_path):
    write_jsonl(tmp_path / "dev.jsonl", RELATIONS)
    with pytest.raises(DataError, match=r"train\.jsonl, which does not exist.*labels="):
        load_split("relation", tmp_path, "dev")


# --- errors common to all readers ---------------------------------------------------------------


def test_missing_file_names_path_and_expected_files(tmp_path):
    write(tmp_path / "dev.tsv", "gj04\t1\t\tFine.\n")
    with pytest.raises(DataError) as err:
        load_split("cola", tmp_path, "dev")
    message = str(err.value)
    assert str(tmp_path / "out_of_domain_dev.tsv") in message
    assert "train: train.tsv" in message and "dev: dev.tsv + out_of_domain_dev.tsv" in message


def test_wrong_column_count_names_file_and_line(tmp_path):
    path = write(tmp_path / "train.tsv", "sentence\tlabel\ngood\t1\nbad\tline\t0\n")
    with pytest.raises(DataError, match="expected 2 tab-separated columns, got 3") as err:
        load_split("sst2", tmp_path, "train")
    assert f"{path}, line 3" in str(err.value)


def test_wrong_header(tmp_path):
    write(tmp_path / "train.tsv", "text\tlabel\ngood\t1\n")
    with pytest.raises(DataError, match="line 1: expected the header 'sentence\\\\tlabel'"):
        load_split("sst2", tmp_path, "train")


def test_unknown_label_lists_valid_ones(tmp_path):
    write(tmp_path / "train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tneutral\n")
    with pytest.raises(DataError, match="line 2: unknown label 'neutral'; valid labels: entail"):
        load_split("rte", tmp_path, "train")


def test_unknown_task_lists_valid_tasks(tmp_path):
    with pytest.raises(DataError, match="unknown task 'qnli'; valid tasks: sst2, rte, mrpc, cola"):
        load_split("qnli", tmp_path, "train")


def test_unknown_split_lists_valid_splits(tmp_path):
    with pytest.raises(DataError, match="no split 'test'; valid splits: train, dev"):
        load_split("sst2", tmp_path, "test")


def test_fixed_label_tasks_reject_other_labels(tmp_path):
    write(tmp_path / "train.tsv", "sentence\tlabel\ngood\t1\n")
    with pytest.raises(DataError, match="fixed labels"):
        load_split("sst2", tmp_path, "train", labels=["pos", "neg"])


# --- task specs ---------------------------------------------------------------------------------


def test_template_can_be_overridden_and_is_checked():
    spec = dataclasses.replace(TASKS["rte"], template="<P> <A> <P> <B> <P> <MASK> <P>")
    assert spec.template.split()[-2] == "<MASK>"
    with pytest.raises(ValueError, match="exactly one <MASK>"):
        dataclasses.replace(TASKS["sst2"], template="<P> <A> <P>")
    with pytest.raises(ValueError, match="<B> must appear"):
        dataclasses.replace(TASKS["sst2"], template="<A> <MASK> <B>")
    with pytest.raises(ValueError, match=r"unknown slots \['<mask>'\]"):
        dataclasses.replace(TASKS["sst2"], template="<P> <A> <P> It was <mask> . <MASK>")


# --- few-shot sampling --------------------------------------------------------------------------


def pool(counts):
    return [Example(f"c{c} #{i}", label=c) for c, n in enumerate(counts) for i in range(n)]


def test_few_shot_same_seed_same_examples_whatever_the_global_rng():
    examples = pool([30, 50, 20])
    np.random.seed(0)  # noqa: NPY002 (the legacy global state few_shot must ignore)
    first = few_shot(examples, 16, seed=13, n_labels=3)
    np.random.seed(1)  # noqa: NPY002
    assert few_shot(examples, 16, seed=13, n_labels=3) == first
    assert few_shot(examples, 16, seed=21, n_labels=3) != first


def test_few_shot_proportional_with_every_class():
    drawn = few_shot(pool([900, 99, 1]), 100, seed=0, n_labels=3)
    assert Counter(e.label for e in drawn) == {0: 90, 1: 9, 2: 1}


@settings(derandomize=True, max_examples=60, deadline=None)
@given(st.data())
def test_few_shot_size_classes_and_quota(data):
    counts = data.draw(st.lists(st.integers(1, 40), min_size=1, max_size=6), label="counts")
    shots = data.draw(st.integers(len(counts), sum(counts)), label="shots")
    examples = pool(counts)
    drawn = few_shot(examples, shots, seed=data.draw(st.integers(0, 2**31)), n_labels=len(counts))
    got = Counter(e.label for e in drawn)
    assert len(drawn) == shots and len(set(drawn)) == shots and set(drawn) <= set(examples)
    assert set(got) == set(range(len(counts)))
    quota = shots * np.array(counts) / sum(counts)
    off = np.array([got[c] for c in range(len(counts))]) - quota
    assert np.all(np.abs(off) < (1 if quota.min() >= 1 else len(counts)))


@pytest.mark.parametrize(
    ("counts", "shots", "n_labels", "problem"),
    [
        ([3, 2], 6, 2, "6 shots requested but only 5 examples"),
        ([3, 0, 2], 4, 3, r"class id\(s\) \[1\] have no example"),
        ([3, 3, 3], 2, 3, "2 shots cannot cover 3 classes"),
    ],
)
def test_few_shot_errors(counts, shots, n_labels, problem):
    with pytest.raises(DataError, match=problem):
        few_shot(pool(counts), shots, seed=0, n_labels=n_labels)


# --- draw: balanced / proportional training draws and a disjoint validation draw -----------------


def labels_of(examples):
    return Counter(e.label for e in examples)


def test_draw_balanced_two_classes_32_each_for_train_and_val():
    train, val = draw(pool([500, 70]), 64, 64, seed=0, n_labels=2)
    assert labels_of(train) == {0: 32, 1: 32} and labels_of(val) == {0: 32, 1: 32}
    assert not set(train) & set(val)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_draw_balanced_six_classes_spreads_the_rest_one_per_class(seed):
    train, val = draw(pool([40, 30, 25, 50, 22, 60]), 64, 64, seed=seed, n_labels=6)
    for drawn in (train, val):
        assert sorted(labels_of(drawn).values()) == [10, 10, 11, 11, 11, 11]
    assert not set(train) & set(val) and len(set(train)) == 64 and len(set(val)) == 64


def test_draw_balanced_extra_classes_depend_on_the_seed():
    examples = pool([40] * 6)
    extras = {
        tuple(sorted(c for c, n in labels_of(draw(examples, 64, 0, s, 6)[0]).items() if n == 11))
        for s in range(8)
    }
    assert len(extras) > 1


def test_draw_balanced_gives_the_extras_to_classes_with_room():
    # class 0 has exactly 10 + 10: it must get no extra in either draw, whatever the seed
    for seed in range(20):
        train, val = draw(pool([20, 40, 40, 40, 40, 40]), 64, 64, seed=seed, n_labels=6)
        assert labels_of(train)[0] == 10 and labels_of(val)[0] == 10


def test_draw_is_deterministic_in_the_seed_whatever_the_global_rng():
    examples = pool([30, 50, 20])
    np.random.seed(0)  # noqa: NPY002 (the legacy global state draw must ignore)
    first = draw(examples, 16, 16, seed=13, n_labels=3)
    np.random.seed(1)  # noqa: NPY002
    assert draw(examples, 16, 16, seed=13, n_labels=3) == first
    assert draw(examples, 16, 16, seed=21, n_labels=3) != first


def test_draw_lists_are_shuffled():
    train, val = draw(pool([50, 50]), 40, 40, seed=0, n_labels=2)
    for drawn in (train, val):
        ys = [e.label for e in drawn]
        assert ys != sorted(ys) and ys != sorted(ys, reverse=True)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(st.data())
def test_draw_sizes_and_disjointness(data):
    counts = data.draw(st.lists(st.integers(4, 40), min_size=1, max_size=6), label="counts")
    k = len(counts)
    shots = data.draw(st.integers(k, min(counts) // 2 * k), label="shots")  # room for both
    val_shots = data.draw(st.sampled_from([0, k, shots]), label="val_shots")
    sampling = data.draw(st.sampled_from(["balanced", "proportional"]), label="sampling")
    examples = pool(counts)
    train, val = draw(examples, shots, val_shots, data.draw(st.integers(0, 2**31)), k, sampling)
    assert len(train) == len(set(train)) == shots and len(val) == len(set(val)) == val_shots
    assert not set(train) & set(val) and set(train) | set(val) <= set(examples)
    for drawn, n in ((train, shots), (val, val_shots)):
        if n and sampling == "balanced":
            assert all(n // k <= labels_of(drawn)[c] <= -(-n // k) for c in range(k))
        if n:
            assert set(labels_of(drawn)) == set(range(k))


def test_draw_proportional_validation_from_what_train_left():
    train, val = draw(pool([90, 10]), 20, 20, seed=3, n_labels=2, sampling="proportional")
    assert labels_of(train) == {0: 18, 1: 2} and labels_of(val) == {0: 18, 1: 2}
    assert not set(train) & set(val)


def test_draw_a_class_with_one_example_trains_and_validation_goes_without_it():
    # SemEval's Entity-Destination(e2,e1): one example in the training file
    train, val = draw(pool([60, 40, 1]), 10, 10, seed=0, n_labels=3, sampling="proportional")
    assert labels_of(train) == {0: 5, 1: 4, 2: 1} and labels_of(val) == {0: 6, 1: 4}
    assert not set(train) & set(val)
    with pytest.raises(DataError, match=r"class 2 has 1 example\(s\) but needs 6 \(3 for training"):
        draw(pool([60, 40, 1]), 10, 10, seed=0, n_labels=3)  # balanced: 3 of it to train


def test_draw_shots_zero_trains_on_everything_but_the_validation_draw():
    examples = pool([30, 20, 10])
    train, val = draw(examples, 0, 9, seed=0, n_labels=3)
    assert labels_of(val) == {0: 3, 1: 3, 2: 3}
    assert len(train) == 51 and set(train) | set(val) == set(examples)
    assert not set(train) & set(val)
    train, val = draw(examples, 0, 0, seed=0, n_labels=3)
    assert sorted(train, key=examples.index) == examples and train != examples and val == []


@pytest.mark.parametrize(
    ("counts", "shots", "val_shots", "sampling", "problem"),
    [
        ([3, 2], 6, 0, "balanced", "6 shots requested but only 5 examples"),
        ([30, 30], 40, 40, "balanced", "40 training \\+ 40 validation shots requested but only 60"),
        ([3, 0, 2], 4, 0, "balanced", r"class id\(s\) \[1\] \['b'\] have no example"),
        ([3, 3, 3], 2, 0, "balanced", "2 shots cannot cover 3 classes"),
        ([9, 9, 9], 3, 2, "balanced", "2 val_shots cannot cover 3 classes"),
        ([9, 9], -1, 0, "balanced", "shots must be 0 or more"),
        ([9, 9], 4, 0, "stratified", "unknown sampling 'stratified'"),
        (
            [5, 40],
            10,
            10,
            "balanced",
            r"class 0 \('a'\) has 5 example\(s\) but needs 10 \(5 for training \+ 5 for "
            r"validation\)\. To fix: ask for fewer shots .*--sampling proportional.* that class",
        ),
        (
            [1, 40],
            0,
            4,
            "proportional",
            r"class 0 \('a'\) has 1 example\(s\) but needs 2 \(at least 1 for training",
        ),
    ],
)
def test_draw_errors(counts, shots, val_shots, sampling, problem):
    names = ["a", "b", "c"][: len(counts)]
    with pytest.raises(DataError, match=problem):
        draw(pool(counts), shots, val_shots, 0, len(counts), sampling, label_names=names)


def test_draw_error_names_the_class_id_without_label_names():
    with pytest.raises(DataError, match=r"class 1 has 3 example\(s\)") as err:
        draw(pool([40, 3]), 8, 8, seed=0, n_labels=2)
    assert "(" not in str(err.value).split("class 1")[1].split("has")[0]
