"""``rayrec llm score|generate``: a quick look at what a backend makes of one prompt."""

from __future__ import annotations

from typing import Any

import typer

from rayrec.cli.console import console, render_table
from rayrec.errors import ConfigError
from rayrec.llm import BACKENDS, LLMBackend, make_backend, to_distribution

llm_app = typer.Typer(help="LLM backends: score allowed answers, generate text.", no_args_is_help=True)

BACKEND_OPT = typer.Option("transformers", "--backend", help=f"one of {', '.join(BACKENDS)}")
MODEL_OPT = typer.Option(
    None, "--model", help="HF id, local directory or .gguf file (default: the embedded SmolLM2-135M)"
)
BASE_URL_OPT = typer.Option(
    None, "--base-url", help="openai backend: server URL, e.g. http://127.0.0.1:8000/v1"
)
DEVICE_OPT = typer.Option("auto", "--device", help="transformers backend: auto, cpu or cuda")


def _backend(kind: str, model: str | None, base_url: str | None, device: str) -> LLMBackend:
    kwargs: dict[str, Any] = {}
    if model is not None:
        kwargs["model"] = model
    if base_url is not None:
        if kind != "openai":
            raise ConfigError("--base-url only applies to --backend openai")
        kwargs["base_url"] = base_url
    if kind == "transformers":
        kwargs["device"] = device
    elif kind == "vllm" and model is None:
        raise ConfigError("--backend vllm needs --model (an HF id or a local model directory)")
    return make_backend(kind, **kwargs)


@llm_app.command("score")
def score(
    prompt: str = typer.Option(..., "--prompt", help="the user message"),
    choices: str = typer.Option(..., "--choices", help="allowed answers, comma-separated: a,b,c"),
    backend: str = BACKEND_OPT,
    model: str = MODEL_OPT,
    base_url: str = BASE_URL_OPT,
    device: str = DEVICE_OPT,
    length_normalise: bool = typer.Option(
        False, "--length-normalise", help="probability from the mean per-token log-prob instead of the sum"
    ),
) -> None:
    """Log-probability and probability of each allowed answer to one prompt."""
    options = [c.strip() for c in choices.split(",") if c.strip()]
    if not options:
        raise ConfigError("--choices needs at least one non-empty answer, e.g. --choices Drama,Comedy")
    if len(set(options)) != len(options):
        raise ConfigError("--choices must not repeat an answer")
    llm = _backend(backend, model, base_url, device)
    logprobs = llm.score_choices([prompt], [options])[0]
    n_tokens = None
    if length_normalise:
        if not hasattr(llm, "choice_token_counts"):
            raise ConfigError(f"--length-normalise needs a tokenizer; the {backend} backend has none here")
        n_tokens = llm.choice_token_counts([prompt], [options])[0]
    probs = to_distribution(logprobs, length_normalise=length_normalise, n_tokens=n_tokens)
    rows = [
        {"choice": c, "log-prob": float(lp), "probability": float(p)}
        for c, lp, p in sorted(zip(options, logprobs, probs), key=lambda x: -x[2])
    ]
    console.print(render_table(f"{llm.model_id} ({backend})", rows))


@llm_app.command("generate")
def generate(
    prompt: str = typer.Option(..., "--prompt", help="the user message"),
    backend: str = BACKEND_OPT,
    model: str = MODEL_OPT,
    base_url: str = BASE_URL_OPT,
    device: str = DEVICE_OPT,
    max_tokens: int = typer.Option(64, "--max-tokens", help="most new tokens"),
    temperature: float = typer.Option(0.0, "--temperature", help="0 = greedy"),
    seed: int = typer.Option(None, "--seed", help="makes sampling repeatable"),
) -> None:
    """Free-text answer to one prompt."""
    llm = _backend(backend, model, base_url, device)
    console.print(llm.generate([prompt], max_tokens=max_tokens, temperature=temperature, seed=seed)[0])
