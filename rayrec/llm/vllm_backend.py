"""GPU backend on ``vllm.LLM``: the same two calls as the transformers backend, at engine speed.

Scoring sends every prompt+choice+end-of-turn as a token-id prompt with ``prompt_logprobs`` and sums
the log-probs of the choice's tokens and of the chat template's end-of-turn token that closes the
answer (as every backend does, see ``choice_scoring``). vLLM's automatic prefix caching shares the
prompt's KV blocks across the choices (the role the explicit cache expansion plays in the transformers
backend); the engine reports how many prompt tokens hit that cache, and
``stats["prefix_tokens_reused"]`` adds them up.

vLLM is imported only when this backend is built: it is a CUDA wheel in the optional ``vllm`` extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rayrec.errors import ConfigError
from rayrec.llm.chat import chat_text, end_of_turn, new_stats
from rayrec.llm.choice_scoring import ChoiceTokens, tokenise_choices


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise ConfigError(
            "the vllm backend needs vLLM and a CUDA GPU: `pip install 'rayrec[vllm]'` on the GPU machine, "
            "or use --backend transformers (CPU) or openai (an HTTP server)"
        ) from exc
    return vllm


class VLLMBackend:
    """An LLM served by an in-process vLLM engine (GPU)."""

    def __init__(
        self,
        model: str,
        gpu_memory_utilization: float = 0.5,
        max_model_len: int = 4096,
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        seed: int = 0,
        system_prompt: str | None = None,
        **engine_kwargs: Any,
    ) -> None:
        if not 0.0 < gpu_memory_utilization <= 1.0:
            raise ConfigError(f"gpu_memory_utilization must be in (0, 1], not {gpu_memory_utilization}")
        vllm = _import_vllm()
        self._vllm = vllm
        self.model_id = model
        self.system_prompt = system_prompt
        self.max_model_len = max_model_len
        self.llm = vllm.LLM(
            model=model,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size,
            dtype=dtype,
            seed=seed,
            enable_prefix_caching=True,
            **engine_kwargs,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.stats = new_stats()
        self.end_of_turn = end_of_turn(self.tokenizer)
        self._end_ids = self._encode(self.end_of_turn) if self.end_of_turn else []

    def chat_text(self, prompt: str) -> str:
        return chat_text(self.tokenizer, prompt, self.system_prompt)

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def choice_token_counts(
        self, prompts: Sequence[str], choices: Sequence[Sequence[str]]
    ) -> list[np.ndarray]:
        """Tokens each choice costs after its prompt (for mean-per-token length normalisation)."""
        return [
            tokenise_choices(self._encode, self.chat_text(p), c, self._end_ids).n_tokens()
            for p, c in zip(prompts, choices, strict=True)
        ]

    def score_choices(self, prompts: Sequence[str], choices: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """log P(choice | prompt) per prompt: sums of the choice tokens' prompt log-probs."""
        if len(prompts) != len(choices):
            raise ConfigError(
                f"{len(prompts)} prompts but {len(choices)} choice lists; pass one list per prompt"
            )
        toks: list[ChoiceTokens] = [
            tokenise_choices(self._encode, self.chat_text(p), c, self._end_ids)
            for p, c in zip(prompts, choices)
        ]
        requests = [{"prompt_token_ids": ids} for t in toks for ids in t.full_ids]
        too_long = [
            len(r["prompt_token_ids"]) for r in requests if len(r["prompt_token_ids"]) > self.max_model_len
        ]
        if too_long:
            raise ConfigError(
                f"a prompt+choice has {max(too_long)} tokens > max_model_len={self.max_model_len}"
            )
        # max_tokens=1: only the prompt's log-probs matter; prompt_logprobs=1 returns the top token and
        # always the actual one.
        params = self._vllm.SamplingParams(max_tokens=1, prompt_logprobs=1, temperature=0.0)
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        results, k = [], 0
        for t in toks:
            scores = np.empty(len(t.full_ids), dtype=np.float64)
            for c, (ids, start) in enumerate(zip(t.full_ids, t.starts)):
                out = outputs[k]
                k += 1
                # prompt_logprobs[j] is a dict token_id → Logprob for position j (None at j=0).
                scores[c] = sum(out.prompt_logprobs[j][ids[j]].logprob for j in range(start, len(ids)))
                self.stats["choice_tokens"] += len(ids) - start
                self.stats["prefix_tokens_reused"] += int(out.num_cached_tokens or 0)
            results.append(scores)
            self.stats["prompt_tokens"] += t.prefix_len
        self.stats["forward_passes"] += 1
        return results

    def generate(
        self,
        prompts: Sequence[str],
        max_tokens: int = 64,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> list[str]:
        """Free-text answers, one per prompt (greedy at temperature 0)."""
        if max_tokens < 1:
            raise ConfigError(f"max_tokens must be ≥ 1, not {max_tokens}")
        if not prompts:
            return []
        params = self._vllm.SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed)
        outputs = self.llm.generate([self.chat_text(p) for p in prompts], params, use_tqdm=False)
        self.stats["forward_passes"] += max(len(o.outputs[0].token_ids) for o in outputs)
        self.stats["generated_tokens"] += sum(len(o.outputs[0].token_ids) for o in outputs)
        return [o.outputs[0].text.strip() for o in outputs]
