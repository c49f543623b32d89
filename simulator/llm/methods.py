"""The reward-method vocabulary of the LLM module: names, the papers' aliases, table labels.

=============  =====================================================  ==================
name           reward model                                           papers' name
=============  =====================================================  ==================
``pooled``     one head on all pairs (single-reward RLHF)             ``uniform``
``separate``   one head per group, each on its group's pairs only     ``maxmin``
               (MaxMin-RLHF's reward step)
``sharedrep``  shared k-dim representation, one weight vector per     ``sharedrep``
               group (SharedRep-RLHF)
=============  =====================================================  ==================

The same names as the simulator's estimators (``PooledMLE``, ``SeparateMLE``, ``SharedRep``).
The papers' names are accepted wherever a method is named (configs, the CLI, saved
``meta.json``) and normalised by :func:`canonical_method`; everything the module writes uses the
names above.  ``gold`` (the policy trained on the true group scores) is an RL method, not a
reward method.

The trait count of SharedRep is ``k`` (``rank`` accepted as an alias in configs).
"""

from __future__ import annotations

REWARD_METHODS = ("pooled", "separate", "sharedrep")
RL_METHODS = ("gold",) + REWARD_METHODS
METHOD_ALIASES = {"uniform": "pooled", "maxmin": "separate"}

# The paper-layout table (evaluation.format_table) prints the papers' column names, so that it
# reads like SharedRep-RLHF's tables: "Uniform" is ``pooled``, "MaxMin" is ``separate``.
PAPER_LABELS = {"pooled": "Uniform", "separate": "MaxMin", "sharedrep": "SharedRep",
                "gold": "Gold"}

# Names of the seed streams of each method (head initialisation, mini-batch order).  They are
# the names the streams had when the seeds were fixed, kept so that every seed draws the same
# numbers as before the renaming.
SEED_STREAMS = {"pooled": "uniform", "separate": "maxmin", "sharedrep": "sharedrep"}


def canonical_method(name, key: str = "reward.methods", allowed: tuple = RL_METHODS) -> str:
    """The module's name of a method: ``maxmin`` -> ``separate``, ``uniform`` -> ``pooled``.

    Raises
    ------
    ValueError
        If ``name`` is neither a name in ``allowed`` nor an alias of one; the message names
        ``key`` and the allowed values.
    """
    out = METHOD_ALIASES.get(name, name) if isinstance(name, str) else name
    if out not in allowed:
        raise ValueError(f"bad config value {key}={name!r}; allowed: {list(allowed)} "
                         f"(aliases: {METHOD_ALIASES})")
    return out


def canonical_methods(names, key: str, allowed: tuple = RL_METHODS) -> list:
    """:func:`canonical_method` of every entry of a list, order kept."""
    return [canonical_method(n, key, allowed) for n in names]


def canonical_keys(table: dict, key: str, allowed: tuple = REWARD_METHODS) -> dict:
    """A ``{method: value}`` table with its keys normalised.

    Raises
    ------
    ValueError
        If an alias and its name are both given with different values.
    """
    out = {}
    for name, value in table.items():
        canon = canonical_method(name, f"{key} key", allowed)
        if canon in out and out[canon] != value:
            raise ValueError(f"bad config value {key}.{name}={value!r}; allowed: one value per "
                             f"method ({key}.{canon}={out[canon]!r} is the same method)")
        out[canon] = value
    return out
