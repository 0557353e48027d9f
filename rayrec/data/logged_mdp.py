"""The logged MDP of offline RL recommenders (LAAC, BC, CQL), written as RLlib offline data.

Each user's training interactions, in time order, are one episode: state s_t = the last ``history_len``
items and their ratings (left-padded with ``pad_id = n_items`` and rating 0), action a_t = the next item,
reward r_t = 1[rating >= like_threshold] (or the rating min-max normalised to [0, 1]), next state
s_{t+1}, done at the user's last training interaction.

Format: RLlib's *columnar* offline format, one parquet row per transition, i.e. what
``OfflineSingleAgentEnvRunner`` writes with ``output_write_episodes=False`` and what
``AlgorithmConfig.offline_data(input_=dir)`` reads back by default (``input_read_method="read_parquet"``,
``input_read_episodes=False``; ``OfflinePreLearner._map_to_episodes`` turns each row into a one-step
``SingleAgentEpisode``). Columns, named after ``ray.rllib.core.columns.Columns``:

- ``eps_id`` (string, ``u<user>``), ``obs`` and ``new_obs`` (fixed-size list<float32> of length
  ``2 * history_len``: item ids, then ratings; ids are exact in float32 up to 2**24 items),
  ``actions`` (int64), ``rewards`` (float32), ``terminateds`` / ``truncateds`` (bool);
- extra columns, which RLlib passes through ``extra_model_outputs`` into the train batch under the same
  name: ``user_id`` (int64, internal id; the LAAC learner looks π_LLM up with it) and ``step`` (int64,
  the transition's position in the user's training sequence, for ``llm_stride``). The name ``t`` is
  avoided on purpose: it is in RLlib's read schema and would be dropped.

RLlib's other format (``input_read_episodes=True``, msgpack-packed ``SingleAgentEpisode`` states)
needs ``msgpack-numpy``, which this project does not install, and cannot carry the per-transition
user id as a plain column; the columnar one can, and any RLlib user can produce it from their own logs
(``input_read_schema`` renames columns). The file's schema metadata (key ``rayrec.logged_mdp``) records
the dataset, catalog size and history length so a learner can refuse data from another dataset.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rayrec.data.dataset import Dataset
from rayrec.errors import ConfigError, DataError

META_KEY = b"rayrec.logged_mdp"
FORMAT_VERSION = 1
REWARDS = ("binary", "normalised")

# RLlib column names (``ray.rllib.core.columns.Columns``), spelled out so the data layer needs no Ray.
EPS_ID, OBS, NEXT_OBS, ACTIONS, REWARDS_COL = "eps_id", "obs", "new_obs", "actions", "rewards"
TERMINATEDS, TRUNCATEDS = "terminateds", "truncateds"
USER_ID, STEP = "user_id", "step"


@dataclass(frozen=True)
class LoggedMDPInfo:
    """What a learner needs to know about an episodes file without reading its rows."""

    dataset: str
    n_items: int
    n_users: int
    history_len: int
    reward: str
    like_threshold: float
    rating_scale: float
    n_transitions: int
    format_version: int = FORMAT_VERSION

    @property
    def pad_id(self) -> int:
        return self.n_items


def transitions(
    train: Dataset, history_len: int = 10, reward: str = "binary", like_threshold: float = 4.0
) -> dict[str, np.ndarray]:
    """Every (s, a, r, s', done) of ``train``'s users as aligned column arrays (vectorised, no loops)."""
    if history_len < 1:
        raise ConfigError(f"history_len must be >= 1, not {history_len}")
    if reward not in REWARDS:
        raise ConfigError(f"reward must be one of {REWARDS}, not {reward!r}")
    df = train.interactions  # sorted by (user, timestamp)
    users = df["user"].to_numpy(np.int64)
    items = df["item"].to_numpy(np.int64)
    ratings = df["rating"].to_numpy(np.float32)
    n = len(df)
    starts = np.searchsorted(users, np.arange(train.n_users + 1))
    row_start = starts[users]  # first row of each row's user
    step = np.arange(n, dtype=np.int64) - row_start
    done = np.append(users[1:] != users[:-1], True) if n else np.zeros(0, bool)
    pad = train.n_items

    def window(end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # rows end-N .. end-1 of the same user, left-padded
        idx = end[:, None] + np.arange(-history_len, 0)[None, :]
        ok = idx >= row_start[:, None]
        safe = np.clip(idx, 0, max(n - 1, 0))
        return np.where(ok, items[safe], pad), np.where(ok, ratings[safe], 0.0).astype(np.float32)

    rows = np.arange(n, dtype=np.int64)
    s_items, s_ratings = window(rows)
    n_items_, n_ratings = window(rows + 1)
    if reward == "binary":
        r = (ratings >= like_threshold).astype(np.float32)
    else:
        lo, hi = (float(ratings.min()), float(ratings.max())) if n else (0.0, 1.0)
        r = ((ratings - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32)
    return {
        EPS_ID: np.char.add("u", users.astype(str)) if n else np.zeros(0, dtype=str),
        OBS: np.concatenate([s_items.astype(np.float32), s_ratings], axis=1),
        ACTIONS: items,
        REWARDS_COL: r,
        NEXT_OBS: np.concatenate([n_items_.astype(np.float32), n_ratings], axis=1),
        TERMINATEDS: done,
        TRUNCATEDS: np.zeros(n, dtype=bool),
        USER_ID: users,
        STEP: step,
    }


def write_logged_mdp(
    train: Dataset,
    out_dir: str | Path,
    history_len: int = 10,
    reward: str = "binary",
    like_threshold: float = 4.0,
    rows_per_file: int = 50_000,
) -> LoggedMDPInfo:
    """Write ``train``'s transitions as parquet files under ``out_dir`` (RLlib's columnar format).

    Several files let Ray Data read in parallel and ``streaming_split`` feed several learners.
    """
    cols = transitions(train, history_len, reward, like_threshold)
    n = len(cols[ACTIONS])
    if n == 0:
        raise DataError(f"{train.name}: the training split has no interactions; nothing to write")
    ratings = train.interactions["rating"].to_numpy()
    info = LoggedMDPInfo(
        dataset=train.name,
        n_items=train.n_items,
        n_users=train.n_users,
        history_len=history_len,
        reward=reward,
        like_threshold=float(like_threshold),
        rating_scale=float(max(1.0, np.abs(ratings).max())),
        n_transitions=n,
    )
    width = 2 * history_len
    schema = pa.schema(
        [
            (EPS_ID, pa.string()),
            (OBS, pa.list_(pa.float32(), width)),
            (ACTIONS, pa.int64()),
            (REWARDS_COL, pa.float32()),
            (NEXT_OBS, pa.list_(pa.float32(), width)),
            (TERMINATEDS, pa.bool_()),
            (TRUNCATEDS, pa.bool_()),
            (USER_ID, pa.int64()),
            (STEP, pa.int64()),
        ],
        metadata={META_KEY: json.dumps(asdict(info)).encode()},
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("part-*.parquet"):
        old.unlink()
    for k, lo in enumerate(range(0, n, rows_per_file)):
        sl = slice(lo, lo + rows_per_file)
        arrays = []
        for name in schema.names:
            col = cols[name][sl]
            if name in (OBS, NEXT_OBS):
                flat = pa.array(col.reshape(-1), type=pa.float32())
                arrays.append(pa.FixedSizeListArray.from_arrays(flat, width))
            else:
                arrays.append(pa.array(col, type=schema.field(name).type))
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), out / f"part-{k:05d}.parquet")
    return info


def episode_files(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """The parquet files behind ``offline_data(input_=...)`` (a file, a directory, or a list of them)."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    files: list[Path] = []
    for p in items:
        p = Path(str(p).removeprefix("local://"))
        if p.is_dir():
            found = sorted(p.rglob("*.parquet"))
            if not found:
                raise DataError("no .parquet files in this directory; write episodes first", path=p)
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise DataError("episodes path does not exist", path=p)
    return files


def is_local(paths: object) -> bool:
    """Whether ``paths`` names local files (remote URIs such as s3:// are left to Ray Data)."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths or [])  # type: ignore[arg-type]
    return bool(items) and all("://" not in str(p) or str(p).startswith("local://") for p in items)


def check_episode_columns(
    paths: str | Path | Sequence[str | Path],
    required: Sequence[str],
    renames: Mapping[str, str] | None = None,
) -> None:
    """Raise a DataError naming the file and the missing columns before any training starts.

    ``required`` are RLlib column keys; ``renames`` is ``input_read_schema`` (key -> the file's column).
    """
    renames = dict(renames or {})
    for f in episode_files(paths):
        names = set(pq.read_schema(f).names)
        missing = [renames.get(c, c) for c in required if renames.get(c, c) not in names]
        if missing:
            raise DataError(
                f"episodes file lacks columns {missing} (has {sorted(names)}); write it with "
                "rayrec.data.logged_mdp.write_logged_mdp, or map your column names with "
                "offline_data(input_read_schema={...})",
                path=f,
            )


def read_info(paths: str | Path | Sequence[str | Path]) -> LoggedMDPInfo | None:
    """The ``rayrec.logged_mdp`` metadata of the first file, or None for foreign RLlib data."""
    meta = pq.read_schema(episode_files(paths)[0]).metadata or {}
    if META_KEY not in meta:
        return None
    return LoggedMDPInfo(**json.loads(meta[META_KEY]))


def read_columns(paths: str | Path | Sequence[str | Path], columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Some scalar columns of all files (e.g. user ids and actions, to find each user's logged items)."""
    tables = [pq.read_table(f, columns=list(columns)) for f in episode_files(paths)]
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return {c: table.column(c).to_numpy() for c in columns}


def user_states(ds: Dataset, history_len: int = 10) -> np.ndarray:
    """(n_users, 2 * history_len) float32: each user's state after all of ``ds``'s interactions.

    This is the state a policy trained on the logged MDP of ``ds`` recommends from (for validation and
    test), laid out exactly like the ``obs`` column.
    """
    out = np.zeros((ds.n_users, 2 * history_len), dtype=np.float32)
    out[:, :history_len] = ds.n_items
    df = ds.interactions
    users = df["user"].to_numpy()
    items = df["item"].to_numpy()
    ratings = df["rating"].to_numpy(np.float32)
    starts = np.searchsorted(users, np.arange(ds.n_users + 1))
    for u in range(ds.n_users):
        lo, hi = starts[u], starts[u + 1]
        k = min(history_len, hi - lo)
        if k:
            out[u, history_len - k : history_len] = items[hi - k : hi]
            out[u, 2 * history_len - k :] = ratings[hi - k : hi]
    return out
