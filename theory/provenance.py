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
``[T]``  a target the project set itself (an issue's acceptance criterion), not theory.

``verified`` is ``True`` only when the exact statement, *including its constant*, has been checked
against the paper text. At the time of writing no theorem body was available to the notes, so every
bound here is ``verified=False``; pure identities are marked ``verified=False`` as well but say in
their note that they are exact algebra.

Besides the tag, every record says what *kind* of statement it is (:data:`SOURCE_KINDS`), the
address of the source (``url``), where its text was looked for (``looked_in``) and whether the
statement was read in the paper itself (``read_in_paper``): a bound read only in a machine-written
summary is a ``"secondary summary"``, never a ``"paper"`` statement, whatever its tag says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["KIND_OF_TAG", "REGISTRY", "SOURCE_KINDS", "Source", "register", "source_of",
           "sourced"]

F = TypeVar("F", bound=Callable)

SOURCE_KINDS = ("paper", "secondary summary", "reconstruction", "derived identity",
                "derived approximation", "project target")
"""What a statement is: a theorem / lemma of a paper (its form as the literature reports it),
a machine-written or third-party summary of a paper, a reconstruction of the research notes
(parameter counting, standard arguments; not any paper's statement), an exact identity derived for
the simulator, a derived approximation (a local expansion, a limit), or a target the project set
itself (an issue's acceptance criterion: no theory behind it)."""

KIND_OF_TAG = {"[P]": "paper", "[V]": "paper", "[S]": "secondary summary",
               "[I]": "reconstruction", "[D]": "derived identity", "[T]": "project target"}
"""The kind a tag implies when a record does not name one."""


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
    kind : str, optional
        One of :data:`SOURCE_KINDS`; by default the kind of ``tag`` (:data:`KIND_OF_TAG`).
    url : str
        Address of the source (the paper's arXiv page, or of the note a reconstruction lives in).
        Required for papers and secondary summaries.
    looked_in : str
        Where the statement's text was looked for (arXiv abstract page, HTML full text, a
        summary, the research notes) and what was found there.
    read_in_paper : bool
        Whether the statement itself was read in the paper's own text (not in an abstract, a
        summary or the notes).
    """

    reference: str
    where: str
    tag: str
    verified: bool = False
    note: str = ""
    kind: str | None = None
    url: str = ""
    looked_in: str = ""
    read_in_paper: bool = False

    def __post_init__(self) -> None:
        if self.kind is None:
            if self.tag not in KIND_OF_TAG:
                raise ValueError(f"tag must be one of {sorted(KIND_OF_TAG)} when kind is not "
                                 f"given; got {self.tag!r}")
            object.__setattr__(self, "kind", KIND_OF_TAG[self.tag])
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"kind must be one of {SOURCE_KINDS}; got {self.kind!r}")
        if self.kind in ("paper", "secondary summary") and not self.url.startswith("https://"):
            raise ValueError(f"a {self.kind} source needs its url (https://...); got "
                             f"{self.url!r} for {self.reference!r}")
        if self.verified and not self.read_in_paper:
            raise ValueError("verified=True needs read_in_paper=True: a constant is checked "
                             "against the paper's own text")

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


def register(name: str, source: Source) -> Source:
    """Record a statement that no function computes (a direction, a reading of a theorem) under
    ``name`` in :data:`REGISTRY`; returns ``source`` (cite it with
    :meth:`theory.claims.Claim.from_source`)."""
    if not isinstance(source, Source):
        raise TypeError(f"source must be a Source, got {type(source).__name__}")
    REGISTRY[name] = source
    return source


def source_of(fn: Callable) -> Source:
    """Return the :class:`Source` attached to a bound function (``TypeError`` if none)."""
    src = getattr(fn, "source", None)
    if not isinstance(src, Source):
        raise TypeError(f"{getattr(fn, '__name__', fn)!r} carries no theory.provenance.Source")
    return src
