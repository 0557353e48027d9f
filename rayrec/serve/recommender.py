"""A trained recommender behind Ray Serve: ``POST /recommend``, ``GET /healthz``, ``/metadata``, ``/docs``.

One deployment with a FastAPI ingress. Each replica loads the policy from a checkpoint as an
inference-only RLModule (no learner, no optimizer state, no critics) and fuses concurrent requests into
one forward pass with ``@serve.batch``; masking and top-k run per request, outside the batch.

Ids: the API speaks the dataset's **original** ids (MovieLens' ``item_id`` / ``user_id``, KuaiRec's
``video_id`` …), the ones a client has in its own logs. The contiguous internal ids the model indexes by
(``rayrec.data.dataset``) never leave the replica; the catalog's mapping translates both ways, and the
built-in datasets' ids are all integers (a dataset with non-integer ids is refused at build time).

Known users: ``user_id`` means "this user's training history is the state" and that history is read
back from the checkpoint's own training episodes (so it is exactly what the policy was trained on, and
the split protocol need not be repeated). Their training items are excluded from the answer
(``exclude_seen``, default true), as are a given ``history``'s items.

Errors: every user error is a 4xx whose JSON body says why (``{"error": ..., "reason": ...}``): 422 for
schema errors (malformed JSON, wrong types, missing or conflicting fields, k outside 1..100, a history
over 200 items), 413 for a body over 64 KiB, 404 for an unknown user, 400 for semantic errors (ids not in
the catalog, ratings outside the dataset's range, unknown category names, with the valid list). A
request error never reaches the batch, so one bad request cannot fail the requests fused with it.

Model kinds: :data:`MODEL_KINDS` maps an algorithm class (found in the checkpoint) to how its policy is
loaded, how a history becomes a model input, and where known users' histories come from. LAAC is the
one registered here; LERL plugs in with :func:`register_model_kind` (its ``score`` may return
``planned_categories`` per row, which the answer carries).
"""

# No `from __future__ import annotations`: Serve's ingress re-creates the route methods, and FastAPI
# then cannot resolve string annotations (a body model would be taken for a query parameter).
import json
import pickle
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Protocol

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator
from ray import serve

from rayrec.data.dataset import Dataset
from rayrec.errors import ConfigError

DEFAULT_APP_NAME = "recommender"
MAX_K = 100
MAX_HISTORY = 200
MAX_EXCLUDE = 1000
MAX_CATEGORIES = 100
MAX_BODY_BYTES = 64 * 1024
_MODULE_SUBDIR = "learner_group/learner/rl_module/default_policy"


# --- catalog ---------------------------------------------------------------------------------------


@dataclass
class Catalog:
    """What answers are written from: original ids, titles and categories, aligned with internal ids."""

    dataset: str
    item_ids: np.ndarray  # int64, original id of internal item i
    titles: list[str]
    categories: np.ndarray  # (n_items, C) bool
    category_names: list[str]
    user_ids: np.ndarray  # int64, original id of internal user u
    rating_min: float
    rating_max: float
    item_index: dict[int, int] = field(init=False, repr=False)
    user_index: dict[int, int] = field(init=False, repr=False)
    category_index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.item_index = {int(v): i for i, v in enumerate(self.item_ids)}
        self.user_index = {int(v): u for u, v in enumerate(self.user_ids)}
        self.category_index = {n: c for c, n in enumerate(self.category_names)}

    @classmethod
    def from_dataset(cls, ds: Dataset) -> "Catalog":
        ids = {}
        for what, raw in (("item", ds.item_ids), ("user", ds.user_ids)):
            arr = np.asarray(raw)
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                try:
                    as_int = arr.astype(np.int64)
                except (TypeError, ValueError):
                    as_int = None
                if as_int is None or not np.array_equal(as_int.astype(arr.dtype), arr):
                    raise ConfigError(
                        f"{ds.name}: {what} ids are not integers (first: {arr[0]!r}); the HTTP API speaks "
                        "integer ids: remap the dataset's ids to integers before training"
                    )
                arr = as_int
            ids[what] = arr.astype(np.int64)
        ratings = ds.interactions["rating"].to_numpy()
        return cls(
            dataset=ds.name,
            item_ids=ids["item"],
            titles=[str(t) for t in ds.item_titles],
            categories=np.asarray(ds.categories, dtype=bool),
            category_names=list(ds.category_names),
            user_ids=ids["user"],
            rating_min=float(ratings.min()) if len(ratings) else 0.0,
            rating_max=float(ratings.max()) if len(ratings) else 1.0,
        )

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


# --- model kinds -----------------------------------------------------------------------------------


@dataclass
class ModelSpec:
    """What a checkpoint says about itself, read without loading weights (the builder's side)."""

    kind: str
    algorithm: str
    checkpoint: str
    dataset: str
    n_items: int
    n_users: int
    history_len: int
    like_threshold: float
    episodes: str | None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class UserHistories:
    """Known users' training histories in time order (internal ids), index = internal user id."""

    items: list[np.ndarray]
    ratings: list[np.ndarray]


class Scorer(Protocol):
    """A loaded, inference-only policy. ``encode`` turns one history into one model input; ``score``
    runs a batch of them: (B, n_items) scores, plus per row a dict of extras (LERL:
    ``planned_categories``, a list of category names)."""

    def encode(self, items: np.ndarray, ratings: np.ndarray) -> Any: ...

    def score(self, rows: list[Any]) -> tuple[np.ndarray, list[dict[str, Any]]]: ...


@dataclass(frozen=True)
class ModelKind:
    name: str
    algorithm: str  # "module:Class"; subclasses match too
    describe: Callable[[Path, dict[str, Any], str | None], ModelSpec]  # (checkpoint, algo config, episodes)
    users: Callable[[ModelSpec], UserHistories]
    load: Callable[[ModelSpec], Scorer]


MODEL_KINDS: dict[str, ModelKind] = {}


def register_model_kind(kind: ModelKind) -> None:
    """Make checkpoints of ``kind.algorithm`` servable (LERL registers itself this way)."""
    MODEL_KINDS[kind.name] = kind


def _kind_for(cls: type) -> ModelKind | None:
    names = {f"{c.__module__}:{c.__qualname__}" for c in cls.__mro__}
    return next((k for k in MODEL_KINDS.values() if k.algorithm in names), None)


def read_checkpoint(path: str | Path, episodes: str | None = None) -> ModelSpec:
    """The :class:`ModelSpec` of an RLlib algorithm checkpoint directory (``algo.save_to_path(dir)``)."""
    ckpt = Path(path).expanduser().resolve()
    ctor_file = ckpt / "class_and_ctor_args.pkl"
    if not ckpt.is_dir():
        raise ConfigError(f"checkpoint {ckpt} is not a directory; pass the folder algo.save_to_path wrote")
    if not ctor_file.is_file() or not (ckpt / "rllib_checkpoint.json").is_file():
        raise ConfigError(
            f"{ckpt} is not an RLlib algorithm checkpoint (no class_and_ctor_args.pkl or "
            "rllib_checkpoint.json); pass the folder algo.save_to_path wrote, not a sub-folder"
        )
    try:
        with ctor_file.open("rb") as f:
            info = pickle.load(f)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{ckpt}: its algorithm class cannot be imported here ({exc})") from exc
    cls = info["class"]
    kind = _kind_for(cls)
    if kind is None:
        raise ConfigError(
            f"{ckpt} holds a {cls.__qualname__} checkpoint; servable kinds: "
            + ", ".join(f"{k.name} ({k.algorithm})" for k in MODEL_KINDS.values())
        )
    args, kwargs = info["ctor_args_and_kwargs"]
    config = kwargs.get("config", args[0] if args else {})
    if not isinstance(config, dict):
        config = config.to_dict()
    return kind.describe(ckpt, config, episodes)


# LAAC ----------------------------------------------------------------------------------------------


def _laac_describe(ckpt: Path, config: dict[str, Any], episodes: str | None) -> ModelSpec:
    from rayrec.data import logged_mdp

    module_dir = ckpt / _MODULE_SUBDIR
    if not (module_dir / "module_state.pkl").exists() and not any(module_dir.glob("module_state*")):
        raise ConfigError(f"LAAC checkpoint {ckpt} has no policy module under {_MODULE_SUBDIR}")
    source = episodes or config.get("input_")
    if isinstance(source, (list, tuple)):
        source = source[0] if len(source) == 1 else None
    if not source or not logged_mdp.is_local(source):
        raise ConfigError(
            f"LAAC checkpoint {ckpt}: known users' histories come from its training episodes, and "
            f"{source!r} is not a local path; pass episodes=<dir written by rayrec.data.logged_mdp>"
        )
    source = str(source).removeprefix("local://")
    try:
        info = logged_mdp.read_info(source)
    except Exception as exc:  # DataError: path gone (a checkpoint copied from elsewhere)
        raise ConfigError(
            f"LAAC checkpoint {ckpt}: its training episodes {source} cannot be read ({exc}); "
            "pass episodes=<the episodes directory> (`rayrec serve --episodes DIR`)"
        ) from exc
    if info is None:
        raise ConfigError(f"episodes {source} carry no rayrec.logged_mdp metadata; write them with it")
    if int(config.get("history_len", info.history_len)) != info.history_len:
        raise ConfigError(
            f"episodes {source} have history_len {info.history_len}, checkpoint {ckpt} was trained with "
            f"{config.get('history_len')}: pass the episodes the checkpoint was trained on"
        )
    return ModelSpec(
        kind="laac",
        algorithm="LAAC",
        checkpoint=str(ckpt),
        dataset=info.dataset,
        n_items=info.n_items,
        n_users=info.n_users,
        history_len=info.history_len,
        like_threshold=info.like_threshold,
        episodes=source,
        extra={"encoder": config.get("encoder"), "embed_dim": config.get("embed_dim")},
    )


def _laac_users(spec: ModelSpec) -> UserHistories:
    """Each user's full training sequence from the episodes: actions in step order; a transition's
    rating is the last rating slot of its next state."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rayrec.data import logged_mdp

    columns = [logged_mdp.USER_ID, logged_mdp.STEP, logged_mdp.ACTIONS, logged_mdp.NEXT_OBS]
    tables = [pq.read_table(f, columns=columns) for f in logged_mdp.episode_files(spec.episodes)]
    t = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    users = t.column(logged_mdp.USER_ID).to_numpy()
    steps = t.column(logged_mdp.STEP).to_numpy()
    items = t.column(logged_mdp.ACTIONS).to_numpy().astype(np.int64)
    nxt = t.column(logged_mdp.NEXT_OBS).combine_chunks().flatten().to_numpy()
    ratings = nxt.reshape(len(users), 2 * spec.history_len)[:, -1].astype(np.float32)
    order = np.lexsort((steps, users))
    users, items, ratings = users[order], items[order], ratings[order]
    bounds = np.searchsorted(users, np.arange(spec.n_users + 1))
    return UserHistories(
        items=[items[bounds[u] : bounds[u + 1]] for u in range(spec.n_users)],
        ratings=[ratings[bounds[u] : bounds[u + 1]] for u in range(spec.n_users)],
    )


class LAACScorer:
    """The LAAC actor alone, restored with RLlib's ``RLModule.from_checkpoint(..., inference_only=True)``."""

    def __init__(self, spec: ModelSpec) -> None:
        from ray.rllib.core.rl_module.rl_module import RLModule

        self.module = RLModule.from_checkpoint(Path(spec.checkpoint) / _MODULE_SUBDIR, inference_only=True)
        self.module.eval()
        self.n = spec.history_len
        self.pad = spec.n_items

    def encode(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """The logged MDP's state (``logged_mdp.user_states`` layout): last N items, then their ratings."""
        n, k = self.n, min(self.n, len(items))
        row = np.zeros(2 * n, dtype=np.float32)
        row[:n] = self.pad
        if k:
            row[n - k : n] = items[-k:]
            row[2 * n - k :] = ratings[-k:]
        return row

    def score(self, rows: list[Any]) -> tuple[np.ndarray, list[dict[str, Any]]]:
        import torch
        from ray.rllib.core.columns import Columns

        obs = torch.from_numpy(np.stack(rows))
        with torch.no_grad():
            out = self.module.forward_inference({Columns.OBS: obs})
        return out[Columns.ACTION_DIST_INPUTS].numpy(), [{} for _ in rows]


register_model_kind(
    ModelKind(
        name="laac",
        algorithm="rayrec.algorithms.laac.laac:LAAC",
        describe=_laac_describe,
        users=_laac_users,
        load=LAACScorer,
    )
)


# --- HTTP schema -----------------------------------------------------------------------------------

ItemId = StrictInt
Rating = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class RecommendRequest(BaseModel):
    """Either a known ``user_id`` or a ``history`` (original item ids, oldest first), not both."""

    model_config = ConfigDict(extra="forbid")

    user_id: StrictInt | None = Field(None, description="a user of the training data (original id)")
    history: list[ItemId] | None = Field(
        None, max_length=MAX_HISTORY, description="item ids the user interacted with, oldest first"
    )
    ratings: list[Rating] | None = Field(
        None, max_length=MAX_HISTORY, description="one rating per history item (default: a liked rating)"
    )
    k: StrictInt = Field(10, ge=1, le=MAX_K, description="how many items to return")
    exclude: list[ItemId] = Field(default_factory=list, max_length=MAX_EXCLUDE)
    exclude_seen: bool = Field(True, description="leave out the user's training items / the history")
    categories: list[str] | None = Field(
        None, min_length=1, max_length=MAX_CATEGORIES, description="only items in one of these categories"
    )

    @model_validator(mode="after")
    def _one_source(self) -> "RecommendRequest":
        if (self.user_id is None) == (self.history is None):
            raise ValueError("give exactly one of user_id (a known user) or history (item ids)")
        if self.ratings is not None:
            if self.history is None:
                raise ValueError("ratings go with a history, not with user_id")
            if len(self.ratings) != len(self.history):
                raise ValueError(
                    f"ratings has {len(self.ratings)} values but history has {len(self.history)} items"
                )
        return self


class RecommendedItem(BaseModel):
    item_id: int
    score: float
    title: str
    categories: list[str]


class RecommendResponse(BaseModel):
    items: list[RecommendedItem]
    model: str
    dataset: str
    k: int
    n_eligible: int = Field(description="items that passed the exclusions and the category constraint")
    user_id: int | None = None
    history_length: int
    planned_categories: list[str] | None = Field(None, description="LERL only: the planner's categories")


class RequestError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


app = FastAPI(
    title="rayrec recommender",
    description="Top-k recommendations from a trained LAAC (or LERL) policy; ids are the dataset's own.",
)


@app.middleware("http")
async def _limit_body(request: Request, call_next: Callable) -> Any:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        return JSONResponse(
            status_code=413,
            content={"error": "body too large", "reason": f"bodies are limited to {MAX_BODY_BYTES} bytes"},
        )
    return await call_next(request)


@app.exception_handler(RequestValidationError)
async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    detail = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg")), "type": str(e.get("type"))}
        for e in exc.errors()
    ]
    reasons = []
    for e, d in zip(exc.errors(), detail[:5]):
        if d["type"] == "json_invalid":
            why = (e.get("ctx") or {}).get("error", "")
            reasons.append(f"malformed JSON at character {d['loc'][-1]}: {why}".rstrip(": "))
        else:
            reasons.append(f"{'.'.join(d['loc'][1:]) or 'body'}: {d['msg']}")
    reason = "; ".join(reasons)
    content = {"error": "invalid request", "reason": reason, "detail": detail}
    return JSONResponse(status_code=422, content=content)


@app.exception_handler(RequestError)
async def _rejected(request: Request, exc: RequestError) -> JSONResponse:
    error = "not found" if exc.status == 404 else "bad request"
    return JSONResponse(status_code=exc.status, content={"error": error, "reason": exc.reason})


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def _shown(ids: list[int], limit: int = 10) -> str:
    return str(ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


# --- the deployment --------------------------------------------------------------------------------


class RecommenderCore:
    """A request's whole path except batching and HTTP: validate against the catalog, build the model
    input, rank. The deployment wraps it; ``bench/serve_load.py`` calls it directly to measure what
    Serve adds."""

    def __init__(self, spec: ModelSpec, catalog: Catalog, users: UserHistories) -> None:
        self.spec, self.catalog, self.users = spec, catalog, users
        self.scorer = MODEL_KINDS[spec.kind].load(spec)
        self.default_rating = float(np.clip(spec.like_threshold, catalog.rating_min, catalog.rating_max))

    def _items(self, ids: list[int], what: str) -> np.ndarray:
        index = self.catalog.item_index
        unknown = [i for i in ids if i not in index]
        if unknown:
            raise RequestError(
                400, f"{what} has item ids not in the {self.catalog.dataset} catalog: {_shown(unknown)}"
            )
        return np.fromiter((index[i] for i in ids), dtype=np.int64, count=len(ids))

    def _state(self, req: RecommendRequest) -> tuple[np.ndarray, np.ndarray]:
        cat = self.catalog
        if req.user_id is not None:
            u = cat.user_index.get(req.user_id)
            if u is None:
                raise RequestError(
                    404,
                    f"unknown user_id {req.user_id}: not a user of {cat.dataset}'s training data; "
                    "send their history instead",
                )
            return self.users.items[u], self.users.ratings[u]
        items = self._items(req.history or [], "history")
        if req.ratings is None:
            return items, np.full(len(items), self.default_rating, dtype=np.float32)
        ratings = np.asarray(req.ratings, dtype=np.float32)
        bad = [r for r in req.ratings if not cat.rating_min <= r <= cat.rating_max]
        if bad:
            raise RequestError(
                400,
                f"ratings {_shown(bad)} are outside {cat.dataset}'s range "
                f"[{cat.rating_min}, {cat.rating_max}]",
            )
        return items, ratings

    def _allowed(self, names: list[str] | None) -> np.ndarray | None:
        if names is None:
            return None
        cat = self.catalog
        unknown = [n for n in names if n not in cat.category_index]
        if unknown:
            raise RequestError(
                400, f"unknown categories {_shown(unknown)}; valid: {', '.join(cat.category_names) or 'none'}"
            )
        return cat.categories[:, [cat.category_index[n] for n in names]].any(axis=1)

    def prepare(self, req: RecommendRequest) -> tuple[Any, dict[str, Any]]:
        """The model input and the request's masks; raises :class:`RequestError` for a bad request, so
        nothing that can be rejected ever reaches a batch."""
        items, ratings = self._state(req)
        masks = {
            "seen": items,
            "exclude": self._items(req.exclude, "exclude"),
            "allowed": self._allowed(req.categories),
        }
        return self.scorer.encode(items, ratings), masks

    def answer(
        self, req: RecommendRequest, masks: dict[str, Any], scores: np.ndarray, extras: dict[str, Any]
    ) -> RecommendResponse:
        """Top-k of one row of scores after the exclusions and the category constraint."""
        s = scores.astype(np.float64)
        s[masks["exclude"]] = -np.inf
        if req.exclude_seen:
            s[masks["seen"]] = -np.inf
        if masks["allowed"] is not None:
            s[~masks["allowed"]] = -np.inf
        n_eligible = int(np.isfinite(s).sum())
        top = np.argsort(-s, kind="stable")[: min(req.k, n_eligible)]
        cat = self.catalog
        return RecommendResponse(
            items=[
                RecommendedItem(
                    item_id=int(cat.item_ids[i]),
                    score=float(scores[i]),
                    title=cat.titles[i],
                    categories=[cat.category_names[c] for c in np.flatnonzero(cat.categories[i])],
                )
                for i in top
            ],
            model=self.spec.kind,
            dataset=cat.dataset,
            k=req.k,
            n_eligible=n_eligible,
            user_id=req.user_id,
            history_length=len(masks["seen"]),
            planned_categories=extras.get("planned_categories"),
        )

    def recommend(self, req: RecommendRequest) -> RecommendResponse:
        """One request, unbatched, in this process."""
        row, masks = self.prepare(req)
        scores, extras = self.scorer.score([row])
        return self.answer(req, masks, scores[0], extras[0])


@serve.deployment(name="Recommender", max_ongoing_requests=64, ray_actor_options={"num_cpus": 0.5})
@serve.ingress(app)
class Recommender:
    def __init__(
        self,
        spec: ModelSpec,
        catalog: Catalog,
        users: UserHistories,
        max_batch_size: int = 32,
        batch_wait_timeout_s: float = 0.002,
        torch_threads: int | None = 1,
    ) -> None:
        import torch

        if torch_threads:
            torch.set_num_threads(torch_threads)
        t0 = time.perf_counter()
        self.core = RecommenderCore(spec, catalog, users)
        self.spec, self.catalog = spec, catalog
        self.load_s = time.perf_counter() - t0
        self._score_batch.set_max_batch_size(max_batch_size)
        self._score_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)
        self.batching = {"max_batch_size": max_batch_size, "batch_wait_timeout_s": batch_wait_timeout_s}
        self.started = time.time()

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)
    async def _score_batch(self, rows: list[Any]) -> list[tuple[np.ndarray, dict[str, Any]]]:
        scores, extras = self.core.scorer.score(rows)
        return list(zip(scores, extras))

    @app.post("/recommend", response_model=RecommendResponse)
    async def recommend(self, req: RecommendRequest) -> RecommendResponse:
        row, masks = self.core.prepare(req)  # rejections happen here, before the batch
        scores, extras = await self._score_batch(row)
        return self.core.answer(req, masks, scores, extras)

    @app.get("/healthz")
    async def healthz(self) -> dict[str, Any]:
        return {"status": "ok", "model": self.spec.kind, "uptime_s": round(time.time() - self.started, 1)}

    @app.get("/metadata")
    async def metadata(self) -> dict[str, Any]:
        cat = self.catalog
        return {
            "model": self.spec.kind,
            "algorithm": self.spec.algorithm,
            "checkpoint": self.spec.checkpoint,
            "episodes": self.spec.episodes,
            "dataset": cat.dataset,
            "catalog_size": cat.n_items,
            "known_users": len(cat.user_ids),
            "categories": cat.category_names,
            "rating_range": [cat.rating_min, cat.rating_max],
            "history_len": self.spec.history_len,
            "ids": "original dataset ids",
            "limits": {
                "k": [1, MAX_K],
                "history": MAX_HISTORY,
                "exclude": MAX_EXCLUDE,
                "body_bytes": MAX_BODY_BYTES,
            },
            "batching": self.batching,
            "model_load_s": round(self.load_s, 3),
            "model_extra": self.spec.extra,
            "versions": {
                "rayrec": _version("rayrec"),
                "ray": _version("ray"),
                "torch": _version("torch"),
                "python": platform.python_version(),
            },
        }


# --- building the app ------------------------------------------------------------------------------


@dataclass
class RecommenderConfig:
    """Every knob of the recommender app (also the ``args`` of a Serve config file)."""

    checkpoint: str
    # Catalog source: a name of rayrec.data.DATASETS (default: the one the checkpoint was trained on),
    # a local copy where the loader needs one, and loader options.
    dataset: str | None = None
    dataset_path: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    # The training episodes known users' histories come from (default: the checkpoint's input_).
    episodes: str | None = None
    num_replicas: int = 1
    ray_actor_options: dict[str, Any] = field(default_factory=lambda: {"num_cpus": 0.5})
    max_batch_size: int = 32
    batch_wait_timeout_s: float = 0.002
    # ≥ max_batch_size, or batches never fill (Serve's default of 5 caps them).
    max_ongoing_requests: int = 64
    torch_threads: int | None = 1
    # A killed replica is noticed at its next health check, and requests wait for its replacement until
    # then: Serve's default period (10 s) made that outage ~20 s on 2 cores, 2 s makes it ~10 s.
    health_check_period_s: float = 2.0
    health_check_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be ≥ 1, not {self.max_batch_size}")
        if self.max_ongoing_requests < self.max_batch_size:
            raise ConfigError(
                f"max_ongoing_requests {self.max_ongoing_requests} < max_batch_size {self.max_batch_size}: "
                "batches could never fill; raise max_ongoing_requests"
            )
        if self.num_replicas < 1:
            raise ConfigError(f"num_replicas must be ≥ 1, not {self.num_replicas}")


def _run_dataset(ckpt: Path) -> tuple[str, str | None, dict[str, Any]] | None:
    """Dataset name, path and loader options from the run directory ``rayrec train`` put the checkpoint
    in (its ``config.json``), so a generated or local dataset is rebuilt exactly as trained."""
    try:
        run = json.loads((ckpt.parent / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(run, dict) or not isinstance(run.get("dataset"), str):
        return None
    return run["dataset"], run.get("path"), dict(run.get("options") or {})


def resolve(
    config: RecommenderConfig, dataset: Dataset | None = None
) -> tuple[ModelSpec, Catalog, UserHistories]:
    """The checkpoint's spec, the catalog and the known users, checked against each other. ``dataset``
    overrides the catalog source (e.g. a generated world that no name reproduces)."""
    spec = read_checkpoint(config.checkpoint, config.episodes)
    if dataset is None:
        from rayrec.data.registry import load_dataset

        name, path, options = config.dataset, config.dataset_path, config.dataset_options
        if name is None and path is None and not options:
            name, path, options = _run_dataset(Path(spec.checkpoint)) or (spec.dataset, None, {})
        dataset = load_dataset(name or spec.dataset, path, **options)
    if (dataset.n_items, dataset.n_users) != (spec.n_items, spec.n_users):
        raise ConfigError(
            f"dataset {dataset.name} has {dataset.n_items} items / {dataset.n_users} users but checkpoint "
            f"{spec.checkpoint} was trained on {spec.n_items} / {spec.n_users} ({spec.dataset}): pass the "
            "dataset it was trained on"
        )
    return spec, Catalog.from_dataset(dataset), MODEL_KINDS[spec.kind].users(spec)


def build_app(
    config: RecommenderConfig,
    dataset: Dataset | None = None,
    resolved: tuple[ModelSpec, Catalog, UserHistories] | None = None,
) -> serve.Application:
    """The app, with catalog and known users resolved here (the driver) and shipped to each replica, so
    a restarted replica only reloads the policy."""
    spec, catalog, users = resolved or resolve(config, dataset)
    return Recommender.options(
        num_replicas=config.num_replicas,
        ray_actor_options=config.ray_actor_options,
        max_ongoing_requests=config.max_ongoing_requests,
        health_check_period_s=config.health_check_period_s,
        health_check_timeout_s=config.health_check_timeout_s,
    ).bind(spec, catalog, users, config.max_batch_size, config.batch_wait_timeout_s, config.torch_threads)


def build(args: dict[str, Any]) -> serve.Application:
    """Serve config entry point (``import_path: rayrec.serve.recommender:build``); ``args`` are
    :class:`RecommenderConfig`'s fields."""
    known = {f.name for f in fields(RecommenderConfig)}
    unknown = sorted(set(args) - known)
    if unknown:
        raise ConfigError(
            f"unknown recommender args {unknown} in the Serve config; allowed: {sorted(known)} "
            "(set the app's name and route_prefix on the application entry itself)"
        )
    if "checkpoint" not in args:
        raise ConfigError("the recommender's Serve config needs args.checkpoint (a save_to_path folder)")
    return build_app(RecommenderConfig(**args))


def deploy(
    config: RecommenderConfig,
    name: str = DEFAULT_APP_NAME,
    route_prefix: str = "/",
    dataset: Dataset | None = None,
) -> Any:
    """``serve.run`` the app and wait until it answers (Serve must already be started where HTTP is
    wanted; ``serve.start(http_options=...)`` picks host and port)."""
    return serve.run(build_app(config, dataset), name=name, route_prefix=route_prefix)
