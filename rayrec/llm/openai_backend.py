"""Backend for any OpenAI-compatible server: vLLM's, Ollama's, Ray Serve LLM's, or our planner's own route.

Scoring uses ``/v1/completions`` with ``echo=true, logprobs=0, max_tokens=0`` on the text
``chat(prompt) + choice + end_of_turn``: the server returns every token's log-prob and we sum those of
the choice and of the end-of-turn token that closes it (as every backend does, see ``choice_scoring``).
The end-of-turn text comes from the tokenizer's chat template, else from ``chat_format`` (ChatML's
``<|im_end|>``); the server must parse it as its special token, as HF tokenizers and vLLM do. A
completions endpoint sees raw text, so the chat template is applied here, from the model's tokenizer
(``tokenizer=``: HF id, local directory or ``.gguf`` file) or from a ChatML format string; use the same
one the server's model was trained with, or the scores are of a prompt the model never expected.
Generation uses ``/v1/chat/completions``, where the server applies its own template.

HTTP goes through urllib (no extra dependency); every request has a timeout and is retried with
exponential backoff on connection errors, timeouts, 429 and 5xx. Other 4xx are our bug or a config
error and raise at once.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rayrec.errors import ConfigError, RayrecError
from rayrec.llm import chat
from rayrec.llm.chat import chat_text, end_of_turn_from_format, new_stats

# SmolLM2-Instruct's template (ChatML with its default system line): the embedded model's format.
SMOLLM2_CHAT_FORMAT = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
)
RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class LLMServerError(RayrecError):
    """The OpenAI-compatible server refused the request or stayed unreachable after all retries."""


class OpenAIBackend:
    """An LLM behind an OpenAI-compatible HTTP server."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000/v1",
        model: str = "smollm2-135m-instruct-gguf",
        api_key: str | None = None,
        tokenizer: str | None = None,
        chat_format: str = SMOLLM2_CHAT_FORMAT,
        timeout_s: float = 30.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        texts_per_request: int = 32,
        end_of_turn: str | None = None,
    ) -> None:
        if "{prompt}" not in chat_format:
            raise ConfigError("chat_format must contain '{prompt}' where the user message goes")
        if timeout_s <= 0 or max_retries < 0 or backoff_s < 0 or texts_per_request < 1:
            raise ConfigError(
                "timeout_s > 0, max_retries ≥ 0, backoff_s ≥ 0 and texts_per_request ≥ 1 please"
            )
        self.base_url = base_url.rstrip("/")
        self.model_id = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.chat_format = chat_format
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.texts_per_request = texts_per_request
        self._tokenizer = _load_tokenizer(tokenizer) if tokenizer is not None else None
        # None: the template's own marker; "" scores choices as bare prefixes (not recommended).
        if end_of_turn is None:
            end_of_turn = (
                chat.end_of_turn(self._tokenizer)
                if self._tokenizer is not None
                else end_of_turn_from_format(chat_format)
            )
        self.end_of_turn = end_of_turn
        # prefix_tokens_reused stays 0: the server may cache prefixes but does not tell us.
        self.stats = new_stats("requests", "retries")

    def chat_text(self, prompt: str) -> str:
        return chat_text(self._tokenizer, prompt, fallback=self.chat_format)

    def score_choices(self, prompts: Sequence[str], choices: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """log P(choice | prompt): the sum of log-probs of the tokens that carry the choice's text."""
        if len(prompts) != len(choices):
            raise ConfigError(
                f"{len(prompts)} prompts but {len(choices)} choice lists; pass one list per prompt"
            )
        rows: list[tuple[int, int, str, int]] = []  # (prompt index, choice index, full text, answer start)
        for i, (prompt, chs) in enumerate(zip(prompts, choices)):
            if len(chs) == 0:
                raise ConfigError("score_choices needs at least one choice per prompt")
            context = self.chat_text(prompt)
            if any(not c for c in chs):
                raise ConfigError("choices must be non-empty answers; an empty one adds no tokens")
            rows += [(i, j, context + c + self.end_of_turn, len(context)) for j, c in enumerate(chs)]
        out = [np.zeros(len(c), dtype=np.float64) for c in choices]
        for k in range(0, len(rows), self.texts_per_request):
            chunk = rows[k : k + self.texts_per_request]
            body = {
                "model": self.model_id,
                "prompt": [text for _, _, text, _ in chunk],
                "max_tokens": 0,
                "echo": True,
                "logprobs": 0,
                "temperature": 0.0,
            }
            answers = sorted(self._post("/completions", body)["choices"], key=lambda c: c["index"])
            for (i, j, _, start), answer in zip(chunk, answers):
                out[i][j] = self._answer_logprob(answer["logprobs"], start)
        return out

    def _answer_logprob(self, logprobs: dict[str, Any], start: int) -> float:
        # A token belongs to the answer if it ends past the prompt: this includes a token that merges the
        # prompt's last characters with the answer's first, as the transformers backend does.
        offsets = logprobs["text_offset"]
        ends = [*offsets[1:], float("inf")]
        picked = [lp for lp, end in zip(logprobs["token_logprobs"], ends) if end > start]
        if not picked or any(lp is None for lp in picked):
            raise LLMServerError(
                "the server returned no log-probs for an answer; does it support echo+logprobs?"
            )
        self.stats["prompt_tokens"] += len(offsets) - len(picked)
        self.stats["choice_tokens"] += len(picked)
        return float(sum(picked))

    def generate(
        self, prompts: Sequence[str], max_tokens: int = 64, temperature: float = 0.0, seed: int | None = None
    ) -> list[str]:
        """One chat completion per prompt (the server applies its template)."""
        if max_tokens < 1:
            raise ConfigError(f"max_tokens must be ≥ 1, not {max_tokens}")
        texts = []
        for prompt in prompts:
            body: dict[str, Any] = {
                "model": self.model_id,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens,
                "temperature": temperature,
            }
            if seed is not None:
                body["seed"] = seed
            reply = self._post("/chat/completions", body)
            self.stats["generated_tokens"] += int(reply.get("usage", {}).get("completion_tokens", 0))
            texts.append(reply["choices"][0]["message"]["content"].strip())
        return texts

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON with a timeout, retrying transient failures with exponential backoff."""
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode()
        url = self.base_url + path
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats["retries"] += 1
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            self.stats["requests"] += 1
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                    return json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                if exc.code not in RETRY_STATUS:
                    detail = exc.read().decode(errors="replace")[:500]
                    raise LLMServerError(f"{url} answered HTTP {exc.code}: {detail}") from exc
                last = exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = exc
        raise LLMServerError(
            f"{url} did not answer after {self.max_retries + 1} tries ({last}); is the server up "
            "(`rayrec planner status`, or your vLLM/Ollama server) and base_url right?"
        ) from last


def _load_tokenizer(source: str) -> Any:
    """A tokenizer just for the chat template: HF id, local directory or ``.gguf`` file."""
    from transformers import AutoTokenizer

    path = Path(source).expanduser()
    if path.suffix == ".gguf":
        return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return AutoTokenizer.from_pretrained(source)
