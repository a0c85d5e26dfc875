"""Report files written whole on the controller (module_utils/report_files.py)."""

import os
import stat

from ansible_collections.badgateway.k8s.plugins.module_utils.report_files import (
    write_file,
    write_files,
)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_file_is_written_then_left_alone_when_unchanged(tmp_path):
    dest = tmp_path / "r.json"
    assert write_file(str(dest), "{}\n", 0o644) is True
    assert dest.read_text() == "{}\n"
    assert mode_of(dest) == 0o644
    assert write_file(str(dest), "{}\n", 0o644) is False
    assert write_file(str(dest), "{}\n", 0o600) is True
    assert mode_of(dest) == 0o600
    assert write_file(str(dest), '{"a": 1}\n', 0o600) is True
    assert dest.read_text() == '{"a": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left


def test_check_mode_writes_nothing_and_says_what_would_change(tmp_path):
    dest = tmp_path / "r.md"
    assert write_file(str(dest), "# x\n", 0o644, check_mode=True) is True
    assert not dest.exists()
    dest.write_text("# x\n")
    os.chmod(dest, 0o644)
    assert write_file(str(dest), "# x\n", 0o644, check_mode=True) is False


def test_a_file_that_cannot_be_written_is_named_and_the_others_are_written(tmp_path):
    good = tmp_path / "ok.html"
    done, errors = write_files(
        [
            {"dest": str(tmp_path / "missing-folder" / "r.json"), "content": "{}"},
            {"dest": str(good), "content": "<html></html>"},
        ],
        0o644,
    )
    assert done == [{"dest": str(good), "changed": True}]
    assert len(errors) == 1
    assert errors[0].startswith("cannot write %s: " % (tmp_path / "missing-folder" / "r.json"))
    assert good.read_text() == "<html></html>"


def test_content_is_utf8(tmp_path):
    dest = tmp_path / "r.md"
    write_file(str(dest), "caf\u00e9 \u2192 502\n", 0o644)
    assert dest.read_bytes() == "caf\u00e9 \u2192 502\n".encode("utf-8")
