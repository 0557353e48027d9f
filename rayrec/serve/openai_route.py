"""OpenAI-compatible HTTP routes on the planner app, so outside tools and the ``openai`` backend reach it.

``POST /v1/completions`` works on raw text, as OpenAI's API does: with ``echo`` + ``logprobs`` +
``max_tokens=0`` it returns the log-prob of every prompt token (how the ``openai`` backend scores
choices, and how vLLM's server is used the same way); with ``max_tokens > 0`` it continues the text.
``POST /v1/chat/completions`` takes one user message and answers through the planner's batched, cached
``generate``. Raw-text calls need the model's tokenizer, so they work with the in-process transformers
backend; a vLLM deployment should expose vLLM's own OpenAI server instead.

The routes are methods of a mixin so that Serve's FastAPI ingress binds them to the planner replica.
Every touch of the model or tokenizer goes through the planner's ``run_backend`` (a worker thread under
the replica's backend lock), because scoring and generation use the same tokenizer at the same time.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import torch
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

openai_app = FastAPI(title="rayrec planner (OpenAI-compatible subset)")


class CompletionRequest(BaseModel):
    model: str | None = None
    prompt: str | list[str]
    max_tokens: int = Field(16, ge=0)
    temperature: float = Field(1.0, ge=0.0)
    echo: bool = False
    logprobs: int | None = Field(None, ge=0)
    seed: int | None = None
    n: int = Field(1, ge=1, le=1)


class ChatMessage(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model: str | None = None
    messages: list[ChatMessage]
    max_tokens: int = Field(64, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    seed: int | None = None


def _hf_parts(backend: Any) -> tuple[Any, Any]:
    model, tokenizer = getattr(backend, "model", None), getattr(backend, "tokenizer", None)
    if model is None or tokenizer is None:
        raise HTTPException(
            status_code=501,
            detail="raw-text /v1/completions needs the transformers backend; vLLM has its own OpenAI server",
        )
    return model, tokenizer


@torch.inference_mode()
def echo_logprobs(backend: Any, text: str) -> dict[str, Any]:
    """OpenAI's ``logprobs`` object for the tokens of ``text`` (the first token has no context: None)."""
    model, tokenizer = _hf_parts(backend)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = torch.tensor([enc["input_ids"]], device=model.device)  # (1, T)
    logp = torch.log_softmax(model(input_ids=ids, use_cache=False).logits[0, :-1].float(), dim=-1)  # (T-1, V)
    token_logp = logp.gather(-1, ids[0, 1:, None])[:, 0].tolist()
    return {
        "tokens": tokenizer.convert_ids_to_tokens(enc["input_ids"]),
        "token_logprobs": [None, *token_logp],
        "top_logprobs": None,
        "text_offset": [start for start, _ in enc["offset_mapping"]],
    }


@torch.inference_mode()
def continue_text(backend: Any, text: str, max_tokens: int, temperature: float, seed: int | None) -> str:
    """Raw continuation of ``text`` (no chat template), greedy at temperature 0."""
    model, tokenizer = _hf_parts(backend)
    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]], device=model.device)
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_k": 0}
        if temperature > 0
        else {"do_sample": False}
    )
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        out = model.generate(
            input_ids=ids, max_new_tokens=max_tokens, pad_token_id=tokenizer.pad_token_id, **sampling
        )
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def _envelope(
    kind: str, model: str, choices: list[dict[str, Any]], prompt_tokens: int, completion_tokens: int
) -> dict:
    return {
        "id": f"{kind}-{uuid.uuid4().hex[:12]}",
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class OpenAIRoute:
    """Route handlers; the planner supplies ``backend``, ``model_id``, ``generate`` and ``run_backend``."""

    backend: Any
    model_id: str

    async def run_backend(self, fn: Any, *args: Any) -> Any:  # implemented by the planner
        raise NotImplementedError

    @openai_app.post("/v1/completions")
    async def completions(self, req: CompletionRequest) -> dict[str, Any]:
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        if req.logprobs is not None and req.max_tokens > 0:
            raise HTTPException(
                400, "logprobs are served for echoed prompts only: set max_tokens=0 and echo=true"
            )
        if req.max_tokens == 0 and not req.echo:
            raise HTTPException(
                400, "max_tokens=0 without echo returns nothing; set echo=true to score the prompt"
            )
        choices, prompt_tokens, completion_tokens = [], 0, 0
        for i, text in enumerate(prompts):
            # Raw-text calls run unbatched in a worker thread; the planner's own calls keep the batcher.
            if req.max_tokens == 0:
                lp = await self.run_backend(echo_logprobs, self.backend, text)
                prompt_tokens += len(lp["tokens"])
                choices.append({"index": i, "text": text, "logprobs": lp, "finish_reason": "length"})
                continue
            out = await self.run_backend(
                continue_text, self.backend, text, req.max_tokens, req.temperature, req.seed
            )
            choices.append(
                {
                    "index": i,
                    "text": text + out if req.echo else out,
                    "logprobs": None,
                    "finish_reason": "length",
                }
            )
            prompt_tokens += await self._count_tokens(text)
            completion_tokens += await self._count_tokens(out)
        return _envelope("text_completion", self.model_id, choices, prompt_tokens, completion_tokens)

    async def _count_tokens(self, text: str) -> int:
        def count() -> int:
            return len(self.backend.tokenizer(text, add_special_tokens=False)["input_ids"])

        return await self.run_backend(count)

    @openai_app.post("/v1/chat/completions")
    async def chat_completions(self, req: ChatRequest) -> dict[str, Any]:
        if len(req.messages) != 1 or req.messages[0].role != "user":
            raise HTTPException(
                400, "the planner answers one user message (its system prompt is fixed by the backend config)"
            )
        text = await self.generate(req.messages[0].content, req.max_tokens, req.temperature, req.seed)
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        usage = (await self._count_tokens(req.messages[0].content), await self._count_tokens(text))
        return _envelope("chat.completion", self.model_id, [choice], *usage)

    @openai_app.get("/v1/models")
    async def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": self.model_id, "object": "model", "owned_by": "rayrec"}]}
