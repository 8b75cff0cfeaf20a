"""Where a command will write, checked before it works (no JAX here): a report, saved
parameters or plots that cannot be written are a usage error told at once, not a
traceback after minutes of training or grading."""

from __future__ import annotations

import os


def _nearest_existing(path: str) -> str:
    here = os.path.abspath(path)
    while not os.path.exists(here):
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    return here


def file_problem(path, option: str) -> str | None:
    """Why the file ``path`` (given as ``option``) cannot be written, or ``None``.

    Its folder must exist and be writable, and ``path`` must not be a folder.
    """
    path = os.fspath(path)
    if not path:
        return f"{option}: give a file name"
    if os.path.isdir(path):
        return f"{option}: {path!r} is a folder, not a file"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"{option}: cannot write {path!r}: the folder {folder!r} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{option}: cannot write {path!r}: the folder {folder!r} is not writable"
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return f"{option}: cannot write {path!r}: the file is not writable"
    return None


def folder_problem(path, option: str) -> str | None:
    """Why the folder ``path`` (given as ``option``) cannot be created or written in,
    or ``None``. A folder that does not exist yet is fine where it can be created."""
    path = os.fspath(path)
    if not path:
        return f"{option}: give a folder"
    existing = _nearest_existing(path)
    if not os.path.isdir(existing):
        return (f"{option}: cannot write into {path!r}: {existing!r} is a file, not a "
                f"folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{option}: cannot write into {path!r}: {existing!r} is not writable"
    return None
