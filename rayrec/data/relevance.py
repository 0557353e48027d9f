"""Which held-out interactions count as relevant, by default, for each kind of data.

The data layer knows what a dataset's ``rating`` column means, so it names the default; the evaluator
(``rayrec.eval.Relevance``) applies it. The rule travels as text (``all`` or ``rating>=X``) so that
``data`` and ``eval``, two independent bottom layers, need not import each other.

Defaults, keyed by what the loaders record in ``meta['rating']``:

- ``is_click`` (KuaiRand): every logged row is an exposure, so only a click is a positive:
  ``rating>=1``.
- ``watch_ratio`` (KuaiRec): play time over video length; KuaiRec's authors and the simulators built
  on it (KuaiSim, DORL) call a view with watch ratio >= 2 a positive: ``rating>=2``.
- anything else (MovieLens' 1-5 ratings, a synthetic world, a generic CSV): every held-out row is
  relevant, ``all``. On ML-100K's leave-last-out protocol the held-out item is what the user chose to
  rate next, whatever the rating, which is the protocol the README's baseline table uses; give a
  threshold (``rating>=4``) to ask for liked items only.
"""

from __future__ import annotations

from rayrec.data.dataset import Dataset

# meta['rating'] -> relevance rule
RATING_RELEVANCE = {"is_click": "rating>=1", "watch_ratio": "rating>=2"}


def default_relevance(ds: Dataset) -> str:
    """The relevance rule (``all`` or ``rating>=X``) to evaluate ``ds``'s held-out rows with."""
    return RATING_RELEVANCE.get(str(ds.meta.get("rating", "")), "all")
