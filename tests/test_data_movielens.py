"""MovieLens-100K in both layouts, written here as tiny files, and malformed variants of each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rayrec.data import load_dataset, load_movielens_100k
from rayrec.data.movielens import GENRES
from rayrec.errors import DataError

# (user, item, rating, timestamp); user 2 rates item 3 before item 1
RATINGS = [(1, 1, 5, 100), (1, 2, 3, 200), (2, 3, 4, 50), (2, 1, 2, 300), (3, 2, 1, 10)]
MOVIES = [(1, "Toy Story", 1995, ["Animation", "Children's", "Comedy"]), (2, "GoldenEye", 1995, ["Action"]),
          (3, "Café Society", 1996, ["Drama", "Sci-Fi"])]  # fmt: skip
USERS = [(1, 24, "M", "technician", "85711"), (2, 53, "F", "other", "94043"), (3, 23, "M", "writer", "32067")]


def write_grouplens(d: Path, ratings=RATINGS) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in ratings))
    rows = []
    for item, title, year, genres in MOVIES:
        flags = "|".join("1" if g in genres else "0" for g in GENRES)
        rows.append(f"{item}|{title} ({year})|01-Jan-{year}||http://x/{item}|{flags}\n")
    (d / "u.item").write_bytes("".join(rows).encode("latin-1"))
    (d / "u.user").write_text("".join("|".join(map(str, u)) + "\n" for u in USERS))
    return d


def write_recbole(d: Path, ratings=RATINGS) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    inter += [f"{u}\t{i}\t{r}\t{t}" for u, i, r, t in ratings]
    (d / "ml-100k.inter").write_text("\n".join(inter) + "\n")
    items = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    items += [f"{i}\t{t}\t{y}\t{' '.join(g)}" for i, t, y, g in MOVIES]
    (d / "ml-100k.item").write_text("\n".join(items) + "\n")
    users = ["user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token"]
    users += ["\t".join(map(str, u)) for u in USERS]
    (d / "ml-100k.user").write_text("\n".join(users) + "\n")
    return d


@pytest.mark.parametrize("writer", [write_grouplens, write_recbole])
def test_both_layouts_give_the_same_dataset(tmp_path: Path, writer) -> None:
    ds = load_movielens_100k(writer(tmp_path / "ml"))
    assert (ds.n_users, ds.n_items, ds.n_interactions, ds.n_categories) == (3, 3, 5, 19)
    assert list(ds.item_titles) == ["Toy Story", "GoldenEye", "Café Society"]
    assert list(ds.item_years) == [1995, 1995, 1996]
    assert ds.category_names == GENRES
    assert [ds.category_names[c] for c in np.flatnonzero(ds.categories[2])] == ["Drama", "Sci-Fi"]
    # contiguous ids, sorted by (user, time): user 2 (internal 1) saw item 3 before item 1
    assert ds.user_sequences()[1].tolist() == [2, 0]
    assert ds.interactions["rating"].tolist() == [5, 3, 4, 2, 1]
    assert ds.user_features.loc[1, "occupation"] == "other"


def test_layouts_agree_row_for_row(tmp_path: Path) -> None:
    a = load_movielens_100k(write_grouplens(tmp_path / "g"))
    b = load_movielens_100k(write_recbole(tmp_path / "r"))
    assert a.interactions.equals(b.interactions)
    assert np.array_equal(a.categories, b.categories)
    assert list(a.item_ids) == list(b.item_ids)


def test_registry_loads_ml100k_from_a_path(tmp_path: Path) -> None:
    assert load_dataset("ml-100k", write_recbole(tmp_path / "r")).n_interactions == len(RATINGS)


def test_directory_without_either_layout_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"u\.data.*ml-100k\.inter.*rayrec assets fetch"):
        load_movielens_100k(tmp_path)


def test_grouplens_non_numeric_rating_names_file_line_column(tmp_path: Path) -> None:
    d = write_grouplens(tmp_path / "g", ratings=[*RATINGS[:3], (2, 1, "five", 300)])
    with pytest.raises(DataError) as err:
        load_movielens_100k(d)
    assert (err.value.path, err.value.line, err.value.column) == (str(d / "u.data"), 4, "rating")
    assert "u.data, line 4, column 'rating'" in str(err.value) and "'five'" in str(err.value)


def test_grouplens_empty_file(tmp_path: Path) -> None:
    d = write_grouplens(tmp_path / "g")
    (d / "u.data").write_text("")
    with pytest.raises(DataError, match=r"u\.data: file is empty"):
        load_movielens_100k(d)


def test_recbole_missing_column_names_the_header_line(tmp_path: Path) -> None:
    d = write_recbole(tmp_path / "r")
    text = (d / "ml-100k.inter").read_text().replace("rating:float", "score:float")
    (d / "ml-100k.inter").write_text(text)
    with pytest.raises(DataError) as err:
        load_movielens_100k(d)
    assert (err.value.line, err.value.column) == (1, "rating")
    assert "ml-100k.inter, line 1, column 'rating'" in str(err.value)


def test_recbole_non_numeric_rating_and_header_only_file(tmp_path: Path) -> None:
    d = write_recbole(tmp_path / "r", ratings=[*RATINGS[:2], (2, 3, "n/a", 50)])
    with pytest.raises(DataError, match=r"ml-100k\.inter, line 4, column 'rating'"):
        load_movielens_100k(d)
    (d / "ml-100k.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
    with pytest.raises(DataError, match=r"ml-100k\.inter, line 2: file has a header but no data rows"):
        load_movielens_100k(d)


def test_recbole_unknown_genre_names_the_line(tmp_path: Path) -> None:
    d = write_recbole(tmp_path / "r")
    text = (d / "ml-100k.item").read_text().replace("Action", "Actoin")
    (d / "ml-100k.item").write_text(text)
    with pytest.raises(DataError, match=r"ml-100k\.item, line 3, column 'class': unknown genre 'Actoin'"):
        load_movielens_100k(d)


def test_ratings_for_items_outside_the_catalog_are_not_dropped_silently(tmp_path: Path) -> None:
    d = write_grouplens(tmp_path / "g", ratings=[*RATINGS, (3, 99, 4, 20)])
    with pytest.raises(DataError, match="missing from the item catalog"):
        load_movielens_100k(d)


def test_grouplens_row_missing_a_column_names_the_line(tmp_path: Path) -> None:
    # u.data has no header, so a missing column shows up as a short row
    d = write_grouplens(tmp_path / "g")
    (d / "u.data").write_text("1\t1\t5\t100\n1\t2\t3\n")
    with pytest.raises(
        DataError, match=r"u\.data, line 2, column 'timestamp': expected a whole number, got ''"
    ):
        load_movielens_100k(d)
