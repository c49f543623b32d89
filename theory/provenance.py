"""Where each bound comes from, and how far it can be trusted.

Every public bound / rate function in :mod:`theory` is decorated with :func:`sourced`, which
attaches a :class:`Source` record as ``fn.source`` plus the shortcuts ``fn.VERIFIED`` (bool) and
``fn.SOURCE`` (one-line citation). Figure scripts copy these into the theory-check table
(:class:`theory.claims.ClaimResult` ``source`` / ``verified``), so that a reconstructed rate is
never presented as a paper's theorem.

Confidence tags are those of the research notes in ``shared/research/``:

``[P]``  form from the paper as known from the literature / secondary summaries; constants and
         side conditions not checked against the PDF.
``[V]``  verified in a cited source (abstract, repository file).
``[S]``  stated in a secondary (often AI-written) summary; may be garbled.
``[I]``  inference / reconstruction in the notes (parameter counting, standard arguments); NOT
         from the paper.
``[D]``  derived in the notes for the simulator (an identity or a local expansion).

``verified`` is ``True`` only when the exact statement, *including its constant*, has been checked
against the paper text. At the time of writing no theorem body was available to the notes, so every
bound here is ``verified=False``; pure identities are marked ``verified=False`` as well but say in
their note that they are exact algebra.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["REGISTRY", "Source", "source_of", "sourced"]

F = TypeVar("F", bound=Callable)


@dataclass(frozen=True)
class Source:
    """Provenance of a bound.

    Attributes
    ----------
    reference : str
        Paper (authors, year, arXiv id) or ``"research notes"`` for a reconstruction.
    where : str
        Lemma / theorem / equation / note section.
    tag : str
        Confidence tag of the research notes (``"[P]"``, ``"[S]"``, ``"[I]"``, ``"[D]"``, ...).
    verified : bool
        Whether the exact statement including constants was checked against the paper text.
    note : str
        What is doubtful (unknown constant, reconstructed exponent, convention, ...).
    """

    reference: str
    where: str
    tag: str
    verified: bool = False
    note: str = ""

    def cite(self) -> str:
        """One-line citation, e.g. ``"Zhu, Jordan & Jiao 2023, Lemma 3.1 [P]"``."""
        return f"{self.reference}, {self.where} {self.tag}".strip()


REGISTRY: dict[str, Source] = {}
"""Qualified function name -> :class:`Source` for every decorated function."""


def sourced(source: Source) -> Callable[[F], F]:
    """Decorator attaching ``source``, ``SOURCE`` and ``VERIFIED`` attributes to a function."""

    def wrap(fn: F) -> F:
        fn.source = source  # type: ignore[attr-defined]
        fn.SOURCE = source.cite()  # type: ignore[attr-defined]
        fn.VERIFIED = source.verified  # type: ignore[attr-defined]
        REGISTRY[f"{fn.__module__}.{fn.__qualname__}"] = source
        return fn

    return wrap


def source_of(fn: Callable) -> Source:
    """Return the :class:`Source` attached to a bound function (``TypeError`` if none)."""
    src = getattr(fn, "source", None)
    if not isinstance(src, Source):
        raise TypeError(f"{getattr(fn, '__name__', fn)!r} carries no theory.provenance.Source")
    return src
