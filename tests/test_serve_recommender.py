"""The recommender endpoint over real HTTP: a tiny LAAC trained here, served by Ray Serve on loopback
(the HTTP proxy on a free port, since HTTP is what is under test), and the Serve config file.

One app for the module (Serve up and down costs ~5-10 s on 2 cores); every bad request is followed by
a valid one, so "the app stays up" is checked after each rejection, not once at the end.
"""

from __future__ import annotations

import gc
import json
import shutil
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml

from rayrec.algorithms.laac import LAACConfig, random_llm_table
from rayrec.data import leave_last_out, make_world
from rayrec.data.logged_mdp import user_states, write_logged_mdp
from rayrec.errors import ConfigError
from rayrec.serve.recommender import (
    MAX_HISTORY,
    RecommenderConfig,
    build,
    deploy,
    read_checkpoint,
    resolve,
)

N = 5
APP = "recommender_test"
CONFIG_FILE = Path(__file__).resolve().parents[1] / "rayrec" / "serve" / "recommender_config.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Any]:
    """A LAAC checkpoint on a 70-user synthetic world, and the actor's logits for every known user."""
    root = tmp_path_factory.mktemp("serve_laac")
    ds = make_world(n_users=70, n_items=50, n_categories=4, mean_interactions=10, seed=11).dataset
    split = leave_last_out(ds)
    info = write_logged_mdp(split.train, root / "eps", history_len=N)
    table = random_llm_table(split.train.user_sequences(), ds.n_items, 4, dataset=info.dataset, seed=0)
    table.save(root / "pi.npz")
    config = (
        LAACConfig()
        .offline_data(input_=str(root / "eps"))
        .training(
            llm_table=str(root / "pi.npz"),
            K=4,
            embed_dim=16,
            train_batch_size_per_learner=64,
            bc_warmstart_steps=1,
        )
    )
    return {"root": root, "ds": ds, "train": split.train, "config": config}


@pytest.fixture(scope="module")
def served(ray_session, trained) -> dict[str, Any]:
    from ray import serve

    algo = trained["config"].build_algo()
    try:
        algo.train()
        obs = user_states(trained["train"], N)
        logits = algo.actor_logits(obs)
        ckpt = algo.save_to_path(trained["root"] / "ckpt")
    finally:
        algo.stop()
    # Close Ray Data's sampling iterator now, while Ray is up: finalised later (after ray.shutdown), it
    # logs a traceback from a background thread, and Python 3.11's traceback formatting calls
    # ast.parse, which races pytest's own ast.parse (SystemError "AST constructor recursion depth").
    del algo
    gc.collect()
    port = _free_port()
    serve.shutdown()  # a controller left by another module would keep its own HTTP options
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    deploy(RecommenderConfig(checkpoint=str(ckpt)), name=APP, dataset=trained["ds"])
    yield {**trained, "url": f"http://127.0.0.1:{port}", "ckpt": str(ckpt), "logits": logits}
    serve.shutdown()


def post(served: dict[str, Any], body: Any = None, raw: str | None = None) -> requests.Response:
    if raw is not None:
        return requests.post(
            served["url"] + "/recommend", data=raw, headers={"content-type": "application/json"}, timeout=30
        )
    return requests.post(served["url"] + "/recommend", json=body, timeout=30)


def seen_items(served: dict[str, Any], user: int) -> set[int]:
    """Original ids of a known user's training items."""
    train, ds = served["train"], served["ds"]
    items = train.interactions.loc[train.interactions["user"] == user, "item"].to_numpy()
    return {int(ds.item_ids[i]) for i in items}


def assert_valid_answer(served: dict[str, Any]) -> None:
    r = post(served, {"user_id": int(served["ds"].user_ids[0]), "k": 3})
    assert r.status_code == 200, r.text
    assert len(r.json()["items"]) == 3


# --- valid requests ---------------------------------------------------------------------------------


def test_known_user_gets_the_policys_top_k_unseen_items_in_original_ids(served) -> None:
    ds = served["ds"]
    user = 7
    r = post(served, {"user_id": int(ds.user_ids[user]), "k": 10})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model"] == "laac" and out["dataset"] == ds.name and out["k"] == 10
    assert out["history_length"] == int((served["train"].interactions["user"] == user).sum())
    ids = [it["item_id"] for it in out["items"]]
    assert len(ids) == 10 and not set(ids) & seen_items(served, user)
    # The same ranking as the trained algorithm's own actor on the same state (served from the
    # checkpoint's inference-only module), mapped back to the dataset's ids.
    logits = served["logits"][user].astype(np.float64)
    internal = [int(np.flatnonzero(ds.item_ids == i)[0]) for i in ids]
    seen = np.zeros(ds.n_items, bool)
    seen[served["train"].interactions.loc[served["train"].interactions["user"] == user, "item"]] = True
    logits[seen] = -np.inf
    assert internal == list(np.argsort(-logits, kind="stable")[:10])
    np.testing.assert_allclose([it["score"] for it in out["items"]], logits[internal], rtol=1e-5, atol=1e-5)
    first = out["items"][0]
    i = internal[0]
    assert first["title"] == ds.item_titles[i]
    assert first["categories"] == [ds.category_names[c] for c in np.flatnonzero(ds.categories[i])]


def test_history_with_ratings_exclude_and_category_constraint(served) -> None:
    ds = served["ds"]
    history = [int(x) for x in ds.item_ids[[3, 8, 15, 21]]]
    exclude = [int(x) for x in ds.item_ids[[0, 1, 2]]]
    allowed = ds.category_names[:2]
    body = {
        "history": history,
        "ratings": [5.0, 4, 2.5, 1.0],
        "k": 8,
        "exclude": exclude,
        "categories": allowed,
    }
    r = post(served, body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["user_id"] is None and out["history_length"] == 4
    items = out["items"]
    assert 0 < len(items) <= 8
    ids = {it["item_id"] for it in items}
    assert not ids & set(history) and not ids & set(exclude)
    for it in items:
        assert set(it["categories"]) & set(allowed), it
    scores = [it["score"] for it in items]
    assert scores == sorted(scores, reverse=True)
    # The constraint is the only thing standing between these items and the unconstrained answer.
    eligible = ds.categories[:, :2].any(1)
    eligible[[3, 8, 15, 21, 0, 1, 2]] = False
    assert out["n_eligible"] == int(eligible.sum())


def test_history_without_ratings_and_an_empty_history_are_answered(served) -> None:
    r = post(served, {"history": [int(served["ds"].item_ids[5])], "k": 5})
    assert r.status_code == 200 and len(r.json()["items"]) == 5, r.text
    r = post(served, {"history": [], "k": 100})  # a new user; k above the catalog left: all there is
    assert r.status_code == 200, r.text
    assert len(r.json()["items"]) == r.json()["n_eligible"] == served["ds"].n_items


def test_in_process_core_answers_like_the_endpoint(served) -> None:
    """What the bench compares Serve against: the same request path without Serve."""
    from rayrec.serve.recommender import MODEL_KINDS, Catalog, RecommenderCore, RecommendRequest

    spec = read_checkpoint(served["ckpt"])
    core = RecommenderCore(spec, Catalog.from_dataset(served["ds"]), MODEL_KINDS["laac"].users(spec))
    body = {"history": [int(x) for x in served["ds"].item_ids[[4, 9]]], "ratings": [3.0, 5.0], "k": 6}
    direct = core.recommend(RecommendRequest.model_validate(body)).model_dump()
    over_http = post(served, body).json()
    assert [i["item_id"] for i in direct["items"]] == [i["item_id"] for i in over_http["items"]]
    np.testing.assert_allclose(
        [i["score"] for i in direct["items"]], [i["score"] for i in over_http["items"]], rtol=1e-5
    )


def test_healthz_metadata_and_docs(served) -> None:
    url = served["url"]
    health = requests.get(url + "/healthz", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    meta = requests.get(url + "/metadata", timeout=30)
    assert meta.status_code == 200
    m = meta.json()
    assert m["model"] == "laac" and m["dataset"] == served["ds"].name
    assert m["catalog_size"] == served["ds"].n_items and m["checkpoint"] == served["ckpt"]
    assert m["history_len"] == N and m["ids"] == "original dataset ids"
    assert set(m["versions"]) >= {"rayrec", "ray", "torch"} and m["versions"]["ray"] == "2.60.0"
    docs = requests.get(url + "/docs", timeout=30)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = requests.get(url + "/openapi.json", timeout=30).json()
    assert "/recommend" in spec["paths"] and "RecommendRequest" in json.dumps(spec)


# --- bad input: a 4xx with a reason, and the app still answers ---------------------------------------

U0 = "__user0__"  # stands for a known user's original id in the cases below


BAD = [
    # (name, body or raw JSON text, status, words the reason must contain)
    ("malformed json", '{"user_id": 1, "k": ', 422, ["malformed JSON"]),
    ("not an object", "[1, 2, 3]", 422, ["body"]),
    ("neither user nor history", {"k": 5}, 422, ["exactly one of user_id"]),
    ("both user and history", {"user_id": U0, "history": [1]}, 422, ["exactly one of user_id"]),
    ("k zero", {"user_id": U0, "k": 0}, 422, ["k", "greater than or equal to 1"]),
    ("k a million", {"user_id": U0, "k": 10**6}, 422, ["k", "less than or equal to 100"]),
    ("k negative", {"user_id": U0, "k": -3}, 422, ["k"]),
    ("k a string", {"user_id": U0, "k": "ten"}, 422, ["k", "integer"]),
    ("k a float", {"user_id": U0, "k": 2.5}, 422, ["k", "integer"]),
    ("history a string", {"history": "1,2,3"}, 422, ["history", "list"]),
    ("user_id a string", {"user_id": "alice"}, 422, ["user_id", "integer"]),
    ("unknown field", {"user_id": U0, "kk": 3}, 422, ["kk", "Extra inputs"]),
    ("oversized history", {"history": [1] * (MAX_HISTORY + 1)}, 422, ["history", "at most 200"]),
    ("ratings without history", {"user_id": U0, "ratings": [4.0]}, 422, ["ratings go with a history"]),
    ("ratings length mismatch", {"history": "__items2__", "ratings": [4.0]}, 422, ["1 values", "2 items"]),
    ("rating a string", {"history": "__items2__", "ratings": ["good", 4]}, 422, ["ratings", "number"]),
    ("unknown user", {"user_id": 10**9}, 404, ["unknown user_id 1000000000"]),
    ("unknown item id", {"history": [10**9]}, 400, ["not in the", "1000000000"]),
    ("negative item id", {"history": [-5]}, 400, ["not in the", "-5"]),
    ("unknown exclude id", {"user_id": U0, "exclude": [10**9]}, 400, ["exclude", "1000000000"]),
    ("rating out of range", {"history": "__items2__", "ratings": [4.0, 99.0]}, 400, ["99.0", "range"]),
    ("unknown category", {"user_id": U0, "categories": ["no-such-genre"]}, 400, ["no-such-genre", "valid:"]),
    ("empty category list", {"user_id": U0, "categories": []}, 422, ["categories"]),
    ("body too large", "__huge__", 413, ["bytes"]),
]


def _materialise(served: dict[str, Any], body: Any) -> tuple[Any, str | None]:
    ds = served["ds"]
    if body == "__huge__":
        return None, json.dumps({"history": [1] * 40_000})
    if isinstance(body, str):
        return None, body
    out = dict(body)
    if out.get("user_id") == U0:
        out["user_id"] = int(ds.user_ids[0])
    if out.get("history") == "__items2__":
        out["history"] = [int(x) for x in ds.item_ids[:2]]
    return out, None


@pytest.mark.parametrize(("name", "body", "status", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_4xx_with_a_reason_and_the_app_stays_up(served, name, body, status, words) -> None:
    payload, raw = _materialise(served, body)
    r = post(served, payload, raw)
    assert r.status_code == status, (name, r.status_code, r.text)
    reason = r.json()["reason"]
    for word in words:
        assert word in reason, (name, reason)
    if name == "unknown category":  # the valid list comes with the refusal
        assert all(c in reason for c in served["ds"].category_names), reason
    assert_valid_answer(served)


# --- checkpoint and config checks (no HTTP) ---------------------------------------------------------


def test_non_checkpoints_and_wrong_catalogs_are_config_errors(served, tmp_path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        read_checkpoint(tmp_path / "missing")
    with pytest.raises(ConfigError, match="not an RLlib algorithm checkpoint"):
        read_checkpoint(Path(served["ckpt"]) / "learner_group")
    with pytest.raises(ConfigError, match="cannot be read"):
        read_checkpoint(served["ckpt"], episodes=str(tmp_path / "gone"))
    other = make_world(n_users=20, n_items=30, n_categories=3, seed=1).dataset
    from rayrec.serve.recommender import build_app

    with pytest.raises(ConfigError, match="trained on 50 / 70"):
        build_app(RecommenderConfig(checkpoint=served["ckpt"]), dataset=other)
    # A checkpoint inside a `rayrec train` run directory: its config.json says how the data was loaded.
    options = {"n_users": 70, "n_items": 50, "n_categories": 4, "mean_interactions": 10, "seed": 11}
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copytree(served["ckpt"], run_dir / "checkpoint")
    (run_dir / "config.json").write_text(
        json.dumps({"dataset": "synthetic", "path": None, "options": options})
    )
    _, catalog, users = resolve(RecommenderConfig(checkpoint=str(run_dir / "checkpoint")))
    assert catalog.n_items == 50 and len(users.items) == 70
    assert catalog.category_names == served["ds"].category_names
    with pytest.raises(ConfigError, match="unknown recommender args"):
        build({"checkpoint": served["ckpt"], "port": 9})
    with pytest.raises(ConfigError, match="max_ongoing_requests"):
        RecommenderConfig(checkpoint=served["ckpt"], max_batch_size=32, max_ongoing_requests=8)


def test_serve_config_file_validates_and_builds(served) -> None:
    """``serve deploy``'s own schema accepts the file; with a real checkpoint its args build the app the
    way Serve's controller does (the builder by import path, args through ``build``)."""
    from ray._common.utils import import_attr
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
    from ray.serve.schema import ServeDeploySchema

    raw = yaml.safe_load(CONFIG_FILE.read_text())
    schema = ServeDeploySchema.model_validate(raw)
    (app,) = schema.applications
    assert app.import_path == "rayrec.serve.recommender:build" and app.route_prefix == "/"
    assert set(app.args) - {"checkpoint"} <= set(RecommenderConfig.__dataclass_fields__)
    # synthetic data is generated, not loaded by name: reproduce the world through dataset_options.
    args = {
        **app.args,
        "checkpoint": served["ckpt"],
        "dataset_options": {
            "n_users": 70,
            "n_items": 50,
            "n_categories": 4,
            "mean_interactions": 10,
            "seed": 11,
        },
    }
    built = call_user_app_builder_with_args_if_necessary(import_attr(app.import_path), args)
    deployment = built._bound_deployment
    assert deployment.name == "Recommender"
    assert (
        deployment.ray_actor_options["num_cpus"]
        == raw["applications"][0]["args"]["ray_actor_options"]["num_cpus"]
    )
    assert deployment.max_ongoing_requests >= app.args["max_batch_size"]


def test_cli_refuses_a_wrong_checkpoint_in_one_line_before_starting_ray(tmp_path) -> None:
    import subprocess
    import sys

    rayrec = Path(sys.executable).with_name("rayrec")
    proc = subprocess.run(
        [str(rayrec), "serve", str(tmp_path / "nope")], capture_output=True, text=True, timeout=120
    )
    out = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 2 and "Traceback" not in out, out
    assert out.startswith("error: checkpoint") and "nope" in out and len(out.splitlines()) == 1, out
