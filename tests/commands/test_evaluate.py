"""nmt-evaluate: sacreBLEU scores with signatures, and AER of attention on gold alignments."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
from conftest import REPO, run_command, write_text

from nmt.commands.evaluate import evaluate
from nmt.config import DecodeConfig
from nmt.data.corpus import DataError, load_split
from nmt.inference.decoding import load_translator
from nmt.schemas import EvaluateConfig


@pytest.fixture(scope="module")
def test_split(trained_run):
    return load_split(load_translator(str(trained_run)).data, "test")


def test_scores_and_aer_on_the_generated_test_split(trained_run, tmp_path):
    cfg = EvaluateConfig(
        checkpoint=str(trained_run),
        report=str(tmp_path / "report.json"),
        decode=DecodeConfig(beam_size=3),
    )
    [report] = evaluate(cfg)
    scores = {s.name: s for s in report.scores}
    assert set(scores) == {"BLEU", "chrF", "TER"}
    assert all("version:" in s.signature for s in scores.values())
    assert scores["BLEU"].value > 60, "a model trained on the generated corpus translates it"
    assert report.alignment is not None and report.alignment.aer < 0.25
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["test_sets"][0]["alignment"]["aer"] == pytest.approx(report.alignment.aer)


def test_the_report_says_what_was_scored_with_what(trained_run, test_split, tmp_path):
    import hashlib

    cfg = EvaluateConfig(
        checkpoint=str(trained_run), report=str(tmp_path / "r.json"), decode=DecodeConfig()
    )
    evaluate(cfg)
    saved = json.loads((tmp_path / "r.json").read_text())
    provenance, test_set = saved["provenance"], saved["test_sets"][0]
    checkpoint = trained_run / "checkpoints" / "best.pt"
    assert saved["checkpoint"] == str(checkpoint)
    assert provenance["checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    text = "".join(line + "\n" for line in test_split.tgt).encode()
    assert test_set["reference_sha256"] == hashlib.sha256(text).hexdigest()
    assert test_set["source_sha256"] != test_set["reference_sha256"]
    proto = load_translator(str(trained_run)).vocabs.src.model_proto
    assert provenance["sentencepiece_sha256"]["src"] == hashlib.sha256(proto).hexdigest()
    assert provenance["checkpoint_config"]["model"]["emb_dim"] == 64  # trained_run's
    assert provenance["evaluate_config"]["decode"]["beam_size"] == 5
    assert provenance["versions"]["nmt"] and provenance["versions"]["sacrebleu"]
    assert provenance["versions"]["git"] is None or len(provenance["versions"]["git"]) >= 40


def shifted(lines: list[str], by: int = 1, transpose: bool = False) -> list[str]:
    """Pharaoh lines with every index moved by ``by``, optionally target-source."""
    links = [[tuple(map(int, link.split("-"))) for link in line.split()] for line in lines]
    return [
        " ".join(f"{j + by}-{i + by}" if transpose else f"{i + by}-{j + by}" for i, j in line)
        for line in links
    ]


def test_input_and_reference_files_with_a_one_based_gold_file(trained_run, test_split, tmp_path):
    write_text(tmp_path / "src.txt", test_split.src)
    write_text(tmp_path / "ref.txt", test_split.tgt)
    write_text(tmp_path / "gold.txt", shifted(test_split.alignments))
    base = EvaluateConfig(
        checkpoint=str(trained_run),
        input=str(tmp_path / "src.txt"),
        reference=str(tmp_path / "ref.txt"),
        report=str(tmp_path / "r.json"),
        alignments=str(tmp_path / "gold.txt"),
        decode=DecodeConfig(beam_size=1),
    )
    [one] = evaluate(replace(base, alignments_one_based=True))
    [default] = evaluate(
        EvaluateConfig(
            checkpoint=str(trained_run),
            report=str(tmp_path / "d.json"),
            decode=DecodeConfig(beam_size=1),
        )
    )
    assert one.alignment.aer == pytest.approx(default.alignment.aer)
    assert [s.value for s in one.scores] == pytest.approx([s.value for s in default.scores])
    # read as 0-based, the last word's links fall off the sentence: an error, not a worse AER
    with pytest.raises(DataError, match=r"gold.txt:\d+: link \d+-\d+ lies outside.*one_based"):
        evaluate(base)
    write_text(tmp_path / "flipped.txt", shifted(test_split.alignments, 0, transpose=True))
    flipped = replace(base, alignments=str(tmp_path / "flipped.txt"))
    [turned] = evaluate(replace(flipped, alignments_order="tgt-src"))
    assert turned.alignment.aer == pytest.approx(default.alignment.aer)
    with pytest.raises(DataError, match="flipped.txt.*alignments_order=tgt-src"):
        evaluate(flipped)  # the sentences' lengths differ, so some link falls outside


def test_a_splits_own_alignment_file_is_read_as_told_and_named_in_errors(tmp_path):
    from nmt.data.corpus import load_files
    from nmt.inference.scoring import split_gold

    write_text(tmp_path / "test.en", ["a b c", "d e"])
    write_text(tmp_path / "test.de", ["x y", "z w v"])
    write_text(tmp_path / "test.align", ["1-1 3-2", "2-3"])
    split = load_files(tmp_path, "test", "en", "de")
    gold = split_gold(split, one_based=True)
    assert gold.sure == [{(0, 0), (2, 1)}, {(1, 2)}] and gold.origin.endswith("test.align")
    assert split_gold(split, one_based=True, reverse=True).sure == [{(0, 0), (1, 2)}, {(2, 1)}]
    with pytest.raises(DataError, match=r"test.align:1: link 3-2 lies outside"):
        split_gold(split).check(split)
    write_text(tmp_path / "test.align", ["1-1", "2:3"])
    with pytest.raises(ValueError, match=r"test\.align:2: malformed alignment token '2:3'"):
        split_gold(load_files(tmp_path, "test", "en", "de"))


def test_tok_bleu_adds_the_lowercased_moses_tokenized_score(trained_run, tmp_path):
    pytest.importorskip("sacremoses")
    cfg = EvaluateConfig(
        checkpoint=str(trained_run),
        report=str(tmp_path / "r.json"),
        decode=DecodeConfig(beam_size=1),
        tok_bleu=True,
    )
    [report] = evaluate(cfg)
    scores = {s.name: s for s in report.scores}
    assert set(scores) == {"BLEU", "chrF", "TER", "BLEU-lc-tok"}
    assert "tok:none" in scores["BLEU-lc-tok"].signature
    assert "moses-lc-norm-tok:de" in scores["BLEU-lc-tok"].signature
    saved = json.loads((tmp_path / "r.json").read_text())
    assert [s["name"] for s in saved["test_sets"][0]["scores"]][-1] == "BLEU-lc-tok"


def test_test_sets_replace_the_checkpoints_own(trained_run, tmp_path):
    cfg = EvaluateConfig(
        checkpoint=str(trained_run),
        test_sets=["valid"],
        report=str(tmp_path / "r.json"),
        decode=DecodeConfig(beam_size=1),
    )
    [report] = evaluate(cfg)
    assert (report.name, report.sentences) == ("valid", 100)  # trained_run's validation split


def test_a_missing_reference_is_an_error(trained_run, tmp_path):
    with pytest.raises(DataError, match="needs both input"):
        evaluate(EvaluateConfig(checkpoint=str(trained_run), input=str(tmp_path / "x")))


def test_command_prints_scores_signatures_and_aer(trained_run, tmp_path):
    code = (
        "import sys; from nmt.commands.cli import evaluate; "
        "sys.argv[0] = 'nmt-evaluate'; evaluate()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, f"checkpoint={trained_run}", "decode.beam_size=2"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for text in ("BLEU signature: nrefs:1", "chrF signature:", "TER signature:", "AER", "test "):
        assert text in result.stdout
    assert (trained_run / "evaluation.json").is_file()


def test_bad_paths_are_named_without_a_traceback(trained_run, tmp_path):
    with pytest.raises(DataError, match=r"input=.* is not a file"):
        evaluate(EvaluateConfig(checkpoint=str(trained_run), input=str(tmp_path), reference="x"))
    blocked = tmp_path / "file"
    blocked.write_text("")
    result = run_command(
        "evaluate",
        f"checkpoint={trained_run}",
        "decode.beam_size=1",
        f"report={blocked / 'sub' / 'r.json'}",
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"report={blocked / 'sub' / 'r.json'}: cannot write there" in result.stderr


def test_a_baseline_checkpoint_or_hypothesis_file_is_compared(trained_run, test_split, tmp_path):
    cfg = EvaluateConfig(
        checkpoint=str(trained_run),
        baseline=str(trained_run),
        report=str(tmp_path / "r.json"),
        decode=DecodeConfig(beam_size=1),
    )
    [report] = evaluate(cfg)
    saved = json.loads((tmp_path / "r.json").read_text())["test_sets"][0]
    rows = {row["name"]: row for row in saved["comparison"]}
    assert set(rows) == {"BLEU", "chrF2", "TER"} and "hypotheses" not in saved
    assert rows["BLEU"]["system"] == pytest.approx(report.scores[0].value)
    assert all(row["difference"] == 0 for row in rows.values())
    # sacreBLEU counts only strictly larger resampled differences (multeval's convention), so a
    # system against itself gets its smallest p-value, 1/(resamples + 1), not 1
    assert all(row["p_bootstrap"] == pytest.approx(1 / 1001) for row in rows.values())
    worse = [" ".join(line.split()[:-2]) for line in report.hypotheses]  # the same, cut short
    write_text(tmp_path / "worse.txt", worse)
    evaluate(replace(cfg, baseline=str(tmp_path / "worse.txt")))
    rows = json.loads((tmp_path / "r.json").read_text())["test_sets"][0]["comparison"]
    assert rows[0]["difference"] > 5 and rows[0]["p_bootstrap"] < 0.01
    write_text(tmp_path / "short.txt", worse[:-1])
    with pytest.raises(DataError, match=r"short.txt has 99 lines, test set test has 100"):
        evaluate(replace(cfg, baseline=str(tmp_path / "short.txt")))
    with pytest.raises(DataError, match="hypotheses of one test set, but 2 are scored"):
        evaluate(replace(cfg, baseline=str(tmp_path / "worse.txt"), test_sets=["test", "valid"]))
