"""nmt-translate as a library call and as a command: order, empty lines, stdin, outputs, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from conftest import REPO, write_text

from nmt.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from nmt.commands.translate import translate
from nmt.config import DecodeConfig
from nmt.data.corpus import DataError
from nmt.inference.decoding import load_translator, translate_lines
from nmt.schemas import TranslateConfig


def run_translate(*args: str, stdin: str | None = None, cwd=None) -> subprocess.CompletedProcess:
    code = (
        "import sys; from nmt.commands.cli import translate; "
        "sys.argv[0] = 'nmt-translate'; translate()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        input=stdin,
        cwd=cwd or REPO,
        timeout=300,
    )


@pytest.fixture(scope="module")
def test_sources(trained_run) -> list[str]:
    from nmt.data.corpus import load_split
    from nmt.inference.decoding import load_translator

    return load_split(load_translator(str(trained_run)).data, "test").src


def test_line_count_order_and_empty_lines_are_kept(trained_run, test_sources, tmp_path):
    lines = [test_sources[0], "", test_sources[5], "   ", test_sources[3]]
    write_text(tmp_path / "in.en", lines)
    cfg = TranslateConfig(
        checkpoint=str(trained_run),
        input=str(tmp_path / "in.en"),
        output=str(tmp_path / "out.de"),
        decode=DecodeConfig(beam_size=2),
    )
    translate(cfg)
    outputs = (tmp_path / "out.de").read_text(encoding="utf-8").split("\n")
    assert len(outputs) == len(lines) + 1 and outputs[-1] == ""  # newline-terminated
    assert outputs[1] == "" and outputs[3] == ""
    loaded = load_translator(str(trained_run))
    alone = [
        translate_lines(loaded, [line], DecodeConfig(beam_size=2), 250)[0][0]
        for line in (test_sources[0], test_sources[5], test_sources[3])
    ]
    assert [outputs[0], outputs[2], outputs[4]] == [
        loaded.vocabs.tgt.decode(h.tokens) for h in alone
    ]


@pytest.mark.parametrize("beam_size", [1, 4])
def test_bf16_search_keeps_outputs_and_float32_attention(trained_run, test_sources, beam_size):
    loaded = load_translator(str(trained_run))
    lines = test_sources[:48]
    exact = translate_lines(loaded, lines, DecodeConfig(beam_size=beam_size), 250)
    fast = translate_lines(loaded, lines, DecodeConfig(beam_size=beam_size, precision="bf16"), 250)
    same = sum(a[0].tokens == b[0].tokens for a, b in zip(exact, fast, strict=True))
    assert same >= 0.8 * len(lines), f"only {same}/{len(lines)} outputs unchanged by bf16"
    for hypotheses in fast:
        attn = hypotheses[0].attn
        assert attn.dtype == torch.float32
        torch.testing.assert_close(attn.sum(-1), torch.ones(attn.size(0)), atol=2e-2, rtol=0)


def test_stdin_to_stdout_with_all_extra_outputs(trained_run, test_sources, tmp_path):
    result = run_translate(
        f"checkpoint={trained_run}",
        "input=-",
        "decode.beam_size=3",
        "decode.n_best=2",
        f"write_nbest={tmp_path / 'nbest.txt'}",
        f"write_alignments={tmp_path / 'align.txt'}",
        f"write_jsonl={tmp_path / 'attn.jsonl'}",
        f"write_heatmaps={tmp_path / 'maps'}",
        stdin="\n".join(test_sources[:3]) + "\n",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    translations = result.stdout.splitlines()
    assert len(translations) == 3 and all(translations)
    nbest = (tmp_path / "nbest.txt").read_text().splitlines()
    assert [line.split(" ||| ")[0] for line in nbest] == ["0", "0", "1", "1", "2", "2"]
    assert [line.split(" ||| ")[1] for line in nbest[::2]] == translations
    records = [json.loads(line) for line in (tmp_path / "attn.jsonl").read_text().splitlines()]
    for record, translation, source in zip(records, translations, test_sources):
        assert record["translation"] == translation and record["source"] == source
        attention = torch.tensor(record["attention"])
        assert attention.shape[1] == len(record["src_pieces"])
        torch.testing.assert_close(attention.sum(-1), torch.ones(attention.shape[0]))
        assert len(record["context"]) == attention.shape[0]
    alignments = (tmp_path / "align.txt").read_text().splitlines()
    for links, translation, source in zip(alignments, translations, test_sources):
        pairs = [tuple(map(int, link.split("-"))) for link in links.split()]
        assert {j for _, j in pairs} == set(range(len(translation.split())))
        assert all(i < len(source.split()) for i, _ in pairs)
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == [
        "000000.png",
        "000001.png",
        "000002.png",
    ]
    assert not (tmp_path / "outputs").exists()


def test_long_inputs_are_truncated_with_a_warning(trained_run, test_sources, tmp_path):
    long_line = " ".join(test_sources[:30])
    result = run_translate(
        f"checkpoint={trained_run}",
        "max_tokens=20",
        "decode.beam_size=1",
        stdin=long_line + "\n",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "truncated to 20" in result.stderr and len(result.stdout.splitlines()) == 1


def test_missing_and_corrupt_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_translator(str(tmp_path / "nothing.pt"))
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        load_translator(str(tmp_path))
    (tmp_path / "junk.pt").write_bytes(b"\x00 definitely not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt is unreadable"):
        load_translator(str(tmp_path / "junk.pt"))
    result = run_translate(f"checkpoint={tmp_path / 'junk.pt'}", stdin="hello\n", cwd=tmp_path)
    assert result.returncode != 0 and "unreadable" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_decoding_on_a_missing_gpu_names_the_option(trained_run):
    assert not next(load_translator(str(trained_run), "auto").model.parameters()).is_cuda
    with pytest.raises(ValueError, match="decode.device=cuda but no CUDA device"):
        load_translator(str(trained_run), "cuda")


def test_checkpoint_with_a_mismatched_vocabulary_is_rejected(trained_run, tmp_path):
    payload = load_checkpoint(trained_run)
    payload.pop("path")
    payload.pop("format_version")
    embedding = "encoder.embed.weight"
    payload["model"][embedding] = payload["model"][embedding][:-5]
    save_checkpoint(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="do not match"):
        load_translator(str(tmp_path / "bad.pt"))


def test_unreadable_input_is_a_clear_error(trained_run, tmp_path):
    (tmp_path / "latin1.en").write_bytes("ok\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.en:2: not valid UTF-8"):
        translate(TranslateConfig(checkpoint=str(trained_run), input=str(tmp_path / "latin1.en")))
    result = run_translate(
        f"checkpoint={trained_run}", f"input={tmp_path / 'missing.en'}", cwd=tmp_path
    )
    assert result.returncode != 0 and "does not exist" in result.stderr


def test_bad_paths_leave_every_file_on_disk_as_it_was(trained_run, tmp_path):
    old = write_text(tmp_path / "old.de", ["keep me"])
    source = write_text(tmp_path / "in.en", ["the cat sleeps ."])
    cases = {
        "does not exist": [f"input={tmp_path / 'typo.en'}", f"output={old}"],
        "is a directory; give a text file": [f"input={tmp_path}", f"output={old}"],
        "is the input file": [f"input={source}", f"output={source}"],
        "write_nbest=.* is a directory": [
            f"input={source}",
            f"output={old}",
            f"write_nbest={tmp_path}",
        ],
    }
    for message, args in cases.items():
        with pytest.raises(DataError, match=message):
            translate(
                TranslateConfig(checkpoint=str(trained_run), **dict(a.split("=", 1) for a in args))
            )
    assert old.read_text() == "keep me\n" and source.read_text() == "the cat sleeps .\n"
    blocked = tmp_path / "file"
    blocked.write_text("")
    result = run_translate(
        f"checkpoint={trained_run}", f"input={source}", f"output={blocked / 'sub' / 'out.de'}"
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"output={blocked / 'sub' / 'out.de'}: cannot write there" in result.stderr


def test_input_from_a_pipe_is_read(trained_run):
    """``input=<(zcat f.gz)``: a named pipe is neither a file nor missing."""
    script = (
        f'{sys.executable} -c "import sys; from nmt.commands.cli import translate; '
        f"sys.argv[0] = 'nmt-translate'; translate()\" checkpoint={trained_run} "
        "input=<(printf 'the cat sleeps .\\na dog runs .\\n')"
    )
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_a_failure_midway_keeps_the_old_output_and_leaves_no_temporary(
    trained_run, tmp_path, monkeypatch
):
    from nmt.commands import translate as command

    old = write_text(tmp_path / "old.de", ["keep me"])
    source = write_text(tmp_path / "in.en", ["the cat sleeps .", "a dog runs ."])
    calls = []

    def failing_write(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed midway")
        return real_write(*args)

    real_write = command._write
    monkeypatch.setattr(command, "_write", failing_write)
    cfg = TranslateConfig(checkpoint=str(trained_run), input=str(source), output=str(old))
    with pytest.raises(RuntimeError, match="midway"):
        translate(cfg)
    assert old.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.en", "old.de"]
    monkeypatch.setattr(command, "_write", real_write)
    translate(cfg)
    assert len(old.read_text().splitlines()) == 2


def test_interactive_terminal_translates_line_by_line(trained_run, test_sources):
    """On a terminal, each typed line is answered before the next is read."""
    import os
    import pty
    import select
    import time

    code = (
        "import sys; from nmt.commands.cli import translate; "
        "sys.argv[0] = 'nmt-translate'; translate()"
    )
    pid, fd = pty.fork()
    if pid == 0:  # the child: nmt-translate with the terminal as stdin and stdout
        os.chdir(REPO)
        os.execv(
            sys.executable,
            [sys.executable, "-c", code, f"checkpoint={trained_run}", "decode.beam_size=1"],
        )

    def read_until(text: str, timeout: float = 120.0) -> str:
        seen, deadline = b"", time.monotonic() + timeout
        while text.encode() not in seen and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                seen += os.read(fd, 4096)
        return seen.decode(errors="replace")

    try:
        assert "Type a sentence" in read_until("Enter")
        expected = load_translator(str(trained_run)).vocabs.tgt.decode(
            translate_lines(
                load_translator(str(trained_run)), [test_sources[0]], DecodeConfig(beam_size=1), 250
            )[0][0].tokens
        )
        os.write(fd, (test_sources[0] + "\n").encode())
        assert expected in read_until(expected)
        os.write(fd, b"\x04")  # Ctrl-D ends the session
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
    finally:
        os.close(fd)
