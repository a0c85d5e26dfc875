# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Report files written on the controller: each file's content in place at once or not at all.

Pure Python: imports neither Ansible nor Kubernetes. The action plugin report_files uses it:
a diagnosis' reports (JSON, Markdown, HTML; a fleet's summary) are written by ansible-playbook's
own process, not by a copy module started once per file.
"""

from __future__ import absolute_import, annotations, division, print_function

__metaclass__ = type

import contextlib
import os
import tempfile
import typing as t


def _same(path: str, data: bytes) -> bool:
    try:
        with open(path, "rb") as current:
            return current.read() == data
    except OSError:
        return False


def write_file(dest: str, content: str, mode: int, check_mode: bool = False) -> bool:
    """Write ``content`` (UTF-8) to ``dest`` with ``mode``; whether it changed anything.

    The new content goes to a temporary file in the same folder, then replaces ``dest`` in one
    step: a reader never sees half a report. The folder must exist. In check mode nothing is
    written; the answer is whether it would change. Raises OSError naming what failed.
    """
    data = content.encode("utf-8")
    path = os.path.abspath(os.path.expanduser(dest))
    if _same(path, data) and (os.stat(path).st_mode & 0o7777) == mode:
        return False
    if check_mode:
        return True
    folder = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return True


def write_files(
    files: list[dict[str, t.Any]], mode: int, check_mode: bool = False
) -> tuple[list[dict[str, t.Any]], list[str]]:
    """Write every ``{dest, content}``; ``([{dest, changed}], [errors])``. A file that cannot
    be written is an error naming it and why; the others are still written."""
    done: list[dict[str, t.Any]] = []
    errors: list[str] = []
    for item in files:
        dest = str(item["dest"])
        try:
            changed = write_file(dest, str(item["content"]), mode, check_mode)
        except OSError as exc:
            errors.append("cannot write %s: %s" % (dest, exc.strerror or exc))
            continue
        done.append({"dest": dest, "changed": changed})
    return done, errors
