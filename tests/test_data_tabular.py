"""Generic CSV/TSV/Parquet loader with a column mapping, and its malformed inputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from rayrec.data import load_dataset, load_table_dataset
from rayrec.errors import ConfigError, DataError


def test_default_columns_with_rating_and_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("user,item,rating,timestamp\nu1,a,4.5,20\nu1,b,2,10\nu2,a,1,5\n")
    ds = load_dataset("csv", path)
    assert (ds.name, ds.n_users, ds.n_items) == ("log", 2, 2)
    assert ds.user_sequences()[0].tolist() == [1, 0]  # b (t=10) before a (t=20)
    assert ds.interactions["rating"].tolist() == [2.0, 4.5, 1.0]
    assert ds.meta["implicit"] is False


def test_mapping_items_file_and_implicit_feedback(tmp_path: Path) -> None:
    path = tmp_path / "views.tsv"
    path.write_text("who\twhat\nx\t007\ny\t7\nx\t7\n")
    items = tmp_path / "items.tsv"
    items.write_text("id\tname\tgenres\n7\tSeven\tDrama|Crime\n007\tBond\tAction\n42\tUnseen\t\n")
    ds = load_table_dataset(
        path,
        columns={"user": "who", "item": "what"},
        items_path=items,
        item_columns={"item": "id", "title": "name", "categories": "genres"},
    )
    assert ds.meta["implicit"] is True and set(ds.interactions["rating"]) == {1.0}
    assert list(ds.item_ids) == ["7", "007", "42"]  # ids are text: "007" is not "7"
    assert list(ds.item_titles) == ["Seven", "Bond", "Unseen"]
    assert ds.category_names == ["Action", "Crime", "Drama"]
    assert ds.categories.tolist() == [[False, True, True], [True, False, False], [False, False, False]]
    assert ds.user_sequences()[0].tolist() == [1, 0]  # no timestamp: file order is time order


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    pd.DataFrame({"uid": [1, 1, 2], "iid": [5, 6, 5], "stars": [3.0, 4.0, 5.0], "ts": [1, 2, 3]}).to_parquet(
        path
    )
    ds = load_table_dataset(
        path, columns={"user": "uid", "item": "iid", "rating": "stars", "timestamp": "ts"}
    )
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 2, 3)
    pd.DataFrame({"uid": [1, 2], "iid": [5, 6], "stars": [3.0, None]}).to_parquet(path)
    with pytest.raises(DataError, match=r"log\.parquet, line 2, column 'stars'"):
        load_table_dataset(path, columns={"user": "uid", "item": "iid", "rating": "stars"})
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load_table_dataset(path)


def test_malformed_csv(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("user,item,rating\nu1,a,4\nu2,b,great\n")
    with pytest.raises(DataError, match=r"log\.csv, line 3, column 'rating'.*'great'"):
        load_table_dataset(path)
    path.write_text("user,rating\nu1,4\n")
    with pytest.raises(DataError, match=r"log\.csv, line 1, column 'item'"):
        load_table_dataset(path)
    path.write_text("user,item\nu1,a\n,b\n")
    with pytest.raises(DataError, match=r"log\.csv, line 3, column 'user': empty id"):
        load_table_dataset(path)
    path.write_text("")
    with pytest.raises(DataError, match=r"log\.csv: file is empty"):
        load_table_dataset(path)
    path.write_text("user,item\n")
    with pytest.raises(DataError, match=r"log\.csv, line 2: no data rows"):
        load_table_dataset(path)


def test_mapping_errors_say_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("u,i\n1,2\n")
    with pytest.raises(ConfigError, match="must name the column of"):
        load_table_dataset(path, columns={"user": "u"})
    with pytest.raises(ConfigError, match="unknown field"):
        load_table_dataset(path, columns={"user": "u", "item": "i", "score": "s"})
    with pytest.raises(ConfigError, match="needs --path"):
        load_dataset("csv")
