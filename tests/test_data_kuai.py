"""KuaiRec 2.0 and KuaiRand-Pure loaders on tiny files in the published layouts, and malformed ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rayrec.data import load_dataset, load_kuairand, load_kuairec
from rayrec.errors import ConfigError, DataError

KUAIREC_HEADER = "user_id,video_id,play_duration,video_duration,time,date,timestamp,watch_ratio"
KUAIREC_ROWS = [
    "14,148,4381,6067,2020-07-05 05:27:48.378,20200705,1593898068.378,0.722",
    "14,183,11635,6100,2020-07-05 05:28:00.057,20200705,1593898080.057,1.907",
    "19,148,2000,6067,2020-07-04 10:00:00.000,20200704,1593856800.0,0.33",
    "19,3649,,,,20200706,,1.5",  # no timestamp: falls back to the date
    "21,183,500,6100,,,,0.08",  # neither timestamp nor date: dropped and counted
]
CATEGORIES = 'video_id,feat\n148,[11]\n183,"[27, 9]"\n3649,[8]\n9999,[]\n'


def write_kuairec(d: Path, rows=KUAIREC_ROWS, categories=CATEGORIES) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "small_matrix.csv").write_text("\n".join([KUAIREC_HEADER, *rows]) + "\n")
    (d / "big_matrix.csv").write_text("\n".join([KUAIREC_HEADER, *rows[:2]]) + "\n")
    (d / "item_categories.csv").write_text(categories)
    return d


def test_kuairec_small_matrix(tmp_path: Path) -> None:
    ds = load_kuairec(write_kuairec(tmp_path))
    assert ds.name == "kuairec-small"
    assert ds.meta["dropped_no_time"] == 1 and ds.meta["rating"] == "watch_ratio"
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (3, 4, 4)  # catalog keeps unseen video 9999
    assert ds.category_names == ["tag8", "tag9", "tag11", "tag27"]
    assert ds.categories[list(ds.item_ids).index(183)].tolist() == [False, True, False, True]
    assert not ds.categories[list(ds.item_ids).index(9999)].any()
    user19 = ds.interactions[ds.interactions["user"] == list(ds.user_ids).index(19)]
    assert user19["timestamp"].tolist() == [1593856800, 1593993600]  # 2020-07-06 00:00 UTC from `date`
    assert np.allclose(user19["rating"], [0.33, 1.5])


def test_kuairec_big_matrix_through_the_registry(tmp_path: Path) -> None:
    ds = load_dataset("kuairec", write_kuairec(tmp_path), matrix="big")
    assert (ds.name, ds.n_interactions) == ("kuairec-big", 2)
    with pytest.raises(ConfigError, match="needs --path"):
        load_dataset("kuairec")
    with pytest.raises(ConfigError, match="matrix must be one of"):
        load_kuairec(tmp_path, matrix="medium")


def test_kuairec_non_numeric_watch_ratio(tmp_path: Path) -> None:
    rows = [*KUAIREC_ROWS[:2], KUAIREC_ROWS[2].replace("0.33", "abc")]
    d = write_kuairec(tmp_path, rows=rows)
    with pytest.raises(DataError, match=r"small_matrix\.csv, line 4, column 'watch_ratio'.*'abc'"):
        load_kuairec(d)


def test_kuairec_bad_timestamp_and_date(tmp_path: Path) -> None:
    d = write_kuairec(tmp_path, rows=[*KUAIREC_ROWS[:1], "14,183,1,1,,20200705,yesterday,1.0"])
    with pytest.raises(DataError, match=r"small_matrix\.csv, line 3, column 'timestamp'"):
        load_kuairec(d)
    d = write_kuairec(tmp_path, rows=[*KUAIREC_ROWS[:1], "14,183,1,1,,2020-07-05,,1.0"])
    with pytest.raises(DataError, match=r"small_matrix\.csv, line 3, column 'date'.*YYYYMMDD"):
        load_kuairec(d)


def test_kuairec_missing_column_empty_file_and_bad_feat(tmp_path: Path) -> None:
    d = write_kuairec(tmp_path)
    (d / "small_matrix.csv").write_text("user_id,video_id,timestamp,date\n1,148,1.0,20200101\n")
    with pytest.raises(DataError, match=r"small_matrix\.csv, line 1, column 'watch_ratio'"):
        load_kuairec(d)
    (d / "small_matrix.csv").write_text("")
    with pytest.raises(DataError, match=r"small_matrix\.csv: file is empty"):
        load_kuairec(d)
    d = write_kuairec(tmp_path / "b", categories='video_id,feat\n148,[11]\n183,"[27, x]"\n')
    with pytest.raises(DataError, match=r"item_categories\.csv, line 3, column 'feat'"):
        load_kuairec(d)


LOG_HEADER = (
    "user_id,video_id,date,hourmin,time_ms,is_click,is_like,is_follow,is_comment,is_forward,is_hate,"
    "long_view,play_time_ms,duration_ms,profile_stay_time,comment_stay_time,is_profile_enter,is_rand,tab"
)


def log_row(user: int, video: int, time_ms: int, click: int) -> str:
    return f"{user},{video},20220408,1000,{time_ms},{click},0,0,0,0,0,0,1000,9000,0,0,0,0,1"


ITEMS = (
    "video_id,author_id,video_type,upload_dt,upload_type,visible_status,video_duration,server_width,"
    "server_height,music_id,music_type,tag\n"
    "1,10,NORMAL,2022-01-01,ShortImport,public,9000,720,1280,0,0,8\n"
    '2,11,NORMAL,2022-01-01,ShortImport,public,9000,720,1280,0,0,"8,27"\n'
    "3,12,NORMAL,2022-01-01,ShortImport,public,9000,720,1280,0,0,\n"
)


def write_kuairand(d: Path, items: str = ITEMS) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    first = [log_row(0, 1, 1_649_400_000_900, 1), log_row(0, 2, 1_649_400_000_100, 0)]
    (d / "log_standard_4_08_to_4_21_pure.csv").write_text("\n".join([LOG_HEADER, *first]) + "\n")
    second = [log_row(5, 3, 1_650_600_000_000, 1)]
    (d / "log_standard_4_22_to_5_08_pure.csv").write_text("\n".join([LOG_HEADER, *second]) + "\n")
    (d / "log_random_4_22_to_5_08_pure.csv").write_text(
        LOG_HEADER + "\n" + log_row(5, 1, 1_650_600_100_000, 0)
    )
    (d / "video_features_basic_pure.csv").write_text(items)
    return d


def test_kuairand_pure(tmp_path: Path) -> None:
    ds = load_kuairand(write_kuairand(tmp_path))
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 3, 3)
    assert ds.category_names == ["tag8", "tag27"]
    assert ds.categories.tolist() == [[True, False], [True, True], [False, False]]
    # same second for user 0's two rows: time_ms decides the order (video 2 came first)
    assert ds.user_sequences()[0].tolist() == [1, 0]
    assert ds.interactions["rating"].tolist() == [0.0, 1.0, 1.0]
    assert ds.interactions["timestamp"].tolist()[0] == 1_649_400_000
    with_random = load_dataset("kuairand", tmp_path, include_random=True)
    assert with_random.n_interactions == 4


def test_kuairand_malformed(tmp_path: Path) -> None:
    d = write_kuairand(tmp_path)
    log = d / "log_standard_4_22_to_5_08_pure.csv"
    log.write_text(
        LOG_HEADER + "\n" + log_row(5, 3, 1, 1) + "\n" + log_row(5, 3, 2, 1).replace(",1,0,0,0", ",yes,0,0,0")
    )
    with pytest.raises(DataError, match=r"log_standard_4_22_to_5_08_pure\.csv, line 3, column 'is_click'"):
        load_kuairand(d)
    log.write_text(LOG_HEADER.replace("time_ms", "t") + "\n" + log_row(5, 3, 1, 1))
    with pytest.raises(DataError, match=r"4_22_to_5_08_pure\.csv, line 1, column 'time_ms'"):
        load_kuairand(d)
    log.write_text("")
    with pytest.raises(DataError, match=r"4_22_to_5_08_pure\.csv: file is empty"):
        load_kuairand(d)
    d = write_kuairand(tmp_path / "t", items=ITEMS.replace('"8,27"', '"8;27"'))
    with pytest.raises(DataError, match=r"video_features_basic_pure\.csv, line 3, column 'tag'"):
        load_kuairand(d)
    with pytest.raises(DataError, match="no KuaiRand-Pure logs"):
        load_kuairand(tmp_path / "nothing")
