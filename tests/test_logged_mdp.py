"""The logged MDP: transitions built by hand-checkable rules, written in RLlib's columnar parquet format."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rayrec.data import build_dataset, leave_last_out, make_world
from rayrec.data.logged_mdp import (
    check_episode_columns,
    read_columns,
    read_info,
    transitions,
    user_states,
    write_logged_mdp,
)
from rayrec.errors import ConfigError, DataError


@pytest.fixture
def toy():
    # raw ids 10..13 map to items 0..3; pad id = 4
    df = pd.DataFrame(
        {
            "user": [1, 1, 1, 2, 2],
            "item": [10, 11, 12, 11, 13],
            "rating": [5, 3, 4, 1, 4],
            "timestamp": [3, 1, 2, 1, 2],  # user 1's file order is not time order
        }
    )
    return build_dataset("toy", df)


def test_transitions_follow_time_order_with_left_padded_states(toy) -> None:
    c = transitions(toy, history_len=2)
    # user 0 in time order: items 1 (r3), 2 (r4), 0 (r5); user 1: items 1 (r1), 3 (r4)
    assert c["actions"].tolist() == [1, 2, 0, 1, 3]
    assert c["rewards"].tolist() == [0.0, 1.0, 1.0, 0.0, 1.0]  # 1[rating >= 4]
    assert c["obs"].tolist() == [
        [4, 4, 0, 0],
        [4, 1, 0, 3],
        [1, 2, 3, 4],
        [4, 4, 0, 0],
        [4, 1, 0, 1],
    ]
    assert c["new_obs"].tolist() == [[4, 1, 0, 3], [1, 2, 3, 4], [2, 0, 4, 5], [4, 1, 0, 1], [1, 3, 1, 4]]
    assert c["terminateds"].tolist() == [False, False, True, False, True]
    assert c["user_id"].tolist() == [0, 0, 0, 1, 1]
    assert c["step"].tolist() == [0, 1, 2, 0, 1]
    assert c["eps_id"].tolist() == ["u0", "u0", "u0", "u1", "u1"]
    # each next state is the following transition's state within a user
    assert np.array_equal(c["new_obs"][[0, 1, 3]], c["obs"][[1, 2, 4]])


def test_normalised_reward_and_bad_options(toy) -> None:
    c = transitions(toy, history_len=1, reward="normalised")
    assert c["rewards"].tolist() == [0.5, 0.75, 1.0, 0.0, 0.75]  # (rating − 1) / (5 − 1)
    with pytest.raises(ConfigError, match="reward"):
        transitions(toy, reward="clicks")
    with pytest.raises(ConfigError, match="history_len"):
        transitions(toy, history_len=0)


def test_written_files_are_rllib_columnar_with_metadata(toy, tmp_path) -> None:
    info = write_logged_mdp(toy, tmp_path / "eps", history_len=2, rows_per_file=2)
    files = sorted((tmp_path / "eps").glob("*.parquet"))
    assert len(files) == 3  # 5 rows, 2 per file
    schema = pq.read_schema(files[0])
    for col in (
        "eps_id",
        "obs",
        "new_obs",
        "actions",
        "rewards",
        "terminateds",
        "truncateds",
        "user_id",
        "step",
    ):
        assert col in schema.names
    assert schema.field("obs").type == pa.list_(pa.float32(), 4)
    assert read_info(tmp_path / "eps") == info
    assert (info.dataset, info.n_items, info.n_users, info.history_len, info.n_transitions) == (
        "toy",
        4,
        2,
        2,
        5,
    )
    cols = read_columns(tmp_path / "eps", ["user_id", "actions"])
    assert cols["actions"].tolist() == [1, 2, 0, 1, 3]
    table = pq.read_table(tmp_path / "eps")
    assert np.array_equal(
        np.stack(table.column("obs").to_numpy(zero_copy_only=False)), transitions(toy, 2)["obs"]
    )


def test_user_states_are_the_state_after_the_last_interaction(toy) -> None:
    s = user_states(toy, history_len=2)
    c = transitions(toy, history_len=2)
    last = np.flatnonzero(c["terminateds"])
    assert np.array_equal(s, c["new_obs"][last])


def test_split_train_part_of_a_synthetic_world(tmp_path) -> None:
    ds = make_world(n_users=30, n_items=25, n_categories=3, mean_interactions=6, seed=1).dataset
    train = leave_last_out(ds).train
    info = write_logged_mdp(train, tmp_path / "eps", history_len=4)
    assert info.n_transitions == train.n_interactions
    c = transitions(train, 4)
    assert int(c["terminateds"].sum()) == int(
        (np.bincount(train.interactions["user"], minlength=30) > 0).sum()
    )
    assert c["obs"][:, :4].max() <= ds.n_items and c["obs"][:, :4].min() >= 0


def test_missing_columns_name_the_file_and_what_to_do(toy, tmp_path) -> None:
    write_logged_mdp(toy, tmp_path / "eps", history_len=2)
    bad = tmp_path / "bad" / "x.parquet"
    bad.parent.mkdir()
    pq.write_table(pa.table({"obs": [[0.0, 1.0]], "actions": [1]}), bad)
    with pytest.raises(DataError) as e:
        check_episode_columns(bad.parent, ["obs", "new_obs", "actions", "rewards", "user_id"])
    msg = str(e.value)
    assert str(bad) in msg and "new_obs" in msg and "rewards" in msg and "user_id" in msg
    assert "input_read_schema" in msg and "write_logged_mdp" in msg
    # renamed columns are accepted through input_read_schema
    pq.write_table(pa.table({"state": [[0.0, 1.0]], "actions": [1]}), bad)
    check_episode_columns(bad.parent, ["obs", "actions"], {"obs": "state"})
    assert read_info(bad.parent) is None  # foreign RLlib data: no rayrec metadata
    with pytest.raises(DataError, match="does not exist"):
        check_episode_columns(tmp_path / "nowhere", ["obs"])
