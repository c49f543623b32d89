"""User errors: input that is the user's fault, reported by the CLI as one line and exit code 2.

:class:`UserError` is the one exception class the library raises for a bad spec, a bad path or an
unusable output folder (:class:`SpecError` and
:class:`~simulator.sweep.store.SweepError` derive from it). It is a ``ValueError``, so code that
catches ``ValueError`` keeps working. ``python -m simulator`` (:func:`simulator.cli.main`) turns a
``UserError``, any other ``ValueError`` and an ``OSError`` (a path that cannot be read or written)
into ``error: <what is wrong> (<how to fix it>)`` on one line of stderr; anything else is a bug
and keeps its traceback.

:func:`describe_os_error` is the wording of that ``OSError`` line, :func:`one_line` the folding of
a multi-line message.
"""

from __future__ import annotations

import errno

__all__ = ["SpecError", "UserError", "describe_os_error", "one_line"]


class UserError(ValueError):
    """Input that is the user's fault; ``hint`` says how to fix it (appended in parentheses)."""

    def __init__(self, message: str, hint: str | None = None):
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} ({self.hint})" if self.hint else text


class SpecError(UserError):
    """A spec that cannot run; ``key`` names the offending entry (dotted path). A
    :class:`UserError` (so a ``ValueError``)."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)


def one_line(text) -> str:
    """``text`` with its lines joined by spaces (a message printed as one line)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


_OS_HINTS = {
    errno.ENOENT: "check the path",
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EROFS: "the file system is read-only; choose another path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "it is a folder; give a file path",
    errno.EEXIST: "something is in the way; remove it or choose another path",
    errno.ENOSPC: "the disk is full; free space or choose another path",
    errno.ENAMETOOLONG: "choose a shorter path",
}


def describe_os_error(exc: OSError) -> str:
    """``cannot use 'PATH': <reason> (<hint>)`` for an ``OSError`` (one line)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    where = exc.filename
    if where is not None and exc.filename2 is not None:
        where = f"{exc.filename}' -> '{exc.filename2}"
    text = f"cannot use '{where}': {reason}" if where is not None else reason
    hint = _OS_HINTS.get(exc.errno)
    return one_line(f"{text} ({hint})" if hint else text)
