"""Your own task end to end: ``train --task tsv`` on a six-class question TSV, then ``predict``;
errors about the files arrive before any model loads."""

from __future__ import annotations

import json

from helpers import train_args

from infoprompt.__main__ import main

CLASSES = {
    "human": ["who wrote the book", "who painted it", "who won the race"],
    "location": ["where is the city", "where was she born", "which country is it in"],
    "numeric": ["how many legs", "when did it end", "how tall is it"],
    "entity": ["what colour is it", "which animal is that", "what sport is played"],
    "description": ["why is it blue", "how does it work", "what does it mean"],
    "abbreviation": [
        "what does nasa stand for",
        "what is the full form",
        "what does it abbreviate",
    ],
}


def write_questions(folder, dev_label=None):
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"{q} ?\t{label}\tx" for label, qs in CLASSES.items() for q in qs for _ in range(2)]
    (folder / "train.tsv").write_text("question\tcategory\tnote\n" + "\n".join(rows) + "\n")
    dev = [f"{qs[0]} now ?\t{dev_label or label}\ty" for label, qs in CLASSES.items()]
    (folder / "dev.tsv").write_text("question\tcategory\tnote\n" + "\n".join(dev) + "\n")
    return str(folder)


def tsv_args(model, data, out, *extra):
    columns = ["--text-columns", "question", "--label-column", "category", "--val-shots", "6"]
    return train_args(model, data, out, *columns, *extra, task="tsv", shots=12)


def test_six_class_tsv_trains_and_predicts(tmp_path, tiny_bert, capsys):
    data, out = write_questions(tmp_path / "q"), tmp_path / "run"
    assert main(tsv_args(tiny_bert, data, out)) == 0
    results = json.loads((out / "seed13" / "results.json").read_text())
    assert results["task"] == "tsv" and (results["n_train"], results["n_val"]) == (12, 6)
    assert set(results["test"]["final"]) == {"accuracy", "macro_f1"} and results["test"]["n"] == 6
    capsys.readouterr()
    assert main(["predict", "--run", str(out / "seed13"), "where is the river ?"]) == 0
    label = capsys.readouterr().out.split("\t")[0]
    assert label in CLASSES


def test_a_dev_label_unseen_in_train_stops_before_the_model_loads(
    tmp_path, tiny_bert, capsys, monkeypatch
):
    import infoprompt.session as session_mod

    def no_model(name):
        raise AssertionError("the model was loaded before the data were checked")

    monkeypatch.setattr(session_mod, "load_backbone", no_model)
    data = write_questions(tmp_path / "q", dev_label="colour")
    assert main(tsv_args(tiny_bert, data, tmp_path / "o")) == 2
    assert "label 'colour' does not occur in train.tsv" in capsys.readouterr().err


def test_a_missing_column_names_the_header(tmp_path, tiny_bert, capsys):
    data = write_questions(tmp_path / "q")
    args = tsv_args(tiny_bert, data, tmp_path / "o")
    args[args.index("question")] = "text"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no column 'text' in the header; its columns: question, category, note" in err


def test_predict_uses_the_final_checkpoint_of_a_run_without_validation(tmp_path, tiny_bert, capsys):
    data, out = write_questions(tmp_path / "q"), tmp_path / "run"
    args = tsv_args(tiny_bert, data, out)
    args[args.index("--val-shots") + 1] = "0"
    assert main(args) == 0
    assert not (out / "seed13" / "best.safetensors").exists()
    results = json.loads((out / "seed13" / "results.json").read_text())
    assert results["best"] is None and results["test"]["selected"] == results["test"]["final"]
    assert main(["predict", "--run", str(out / "seed13"), "who sang it ?"]) == 0
