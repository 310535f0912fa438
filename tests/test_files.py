"""Complete-or-absent files: the old file survives a failure, permissions follow the umask."""

from __future__ import annotations

import os

import pytest

from nmt.files import atomic_write, remove_temporaries, write_bytes, write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.bin"
    write_bytes(target, b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_permissions_are_what_the_umask_gives_any_new_file(tmp_path, umask):
    previous = os.umask(umask)
    try:
        write_text(tmp_path / "settings.json", "{}")
        with open(tmp_path / "plain", "w") as handle:  # what the user expects
            handle.write("")
    finally:
        os.umask(previous)
    mode = (tmp_path / "settings.json").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain").stat().st_mode & 0o777 == 0o666 & ~umask


def test_text_is_utf8_and_parents_are_created(tmp_path):
    write_text(tmp_path / "a" / "b.txt", "Größe ✓\n")
    assert (tmp_path / "a" / "b.txt").read_bytes() == "Größe ✓\n".encode()


def test_remove_temporaries_takes_only_that_files_leftovers(tmp_path):
    for name in (".last.pt.abc123.tmp", ".last.pt.zz.tmp", ".best.pt.q.tmp", "last.pt"):
        (tmp_path / name).write_bytes(b"")
    removed = remove_temporaries(tmp_path, "last.pt")
    assert sorted(p.name for p in removed) == [".last.pt.abc123.tmp", ".last.pt.zz.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".best.pt.q.tmp", "last.pt"]
