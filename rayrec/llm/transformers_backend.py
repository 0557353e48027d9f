"""In-process backend on Hugging Face transformers: the embedded SmolLM2 on CPU, or any HF model on GPU.

Choice scoring scores each choice as a whole answer, i.e. followed by the chat template's end-of-turn
token (``chat.end_of_turn``), and shares the prompt's KV cache: one forward pass over the
(chat-templated) prompts keeps only the last position's logits, which score every choice's first
token; the choices' remaining tokens then run packed, all choices of a prompt as one sequence on top
of that prompt's own cached keys and values, with an attention mask that lets each choice token see the
prompt and the earlier tokens of its own choice only (and position ids that restart after the prompt for
every choice). Nothing is copied per choice: expanding the cache to one row per choice (19 × the
prompt's keys and values for 19 genres) used to cost more than the scoring itself. The end token is
never fed, since nothing is predicted from it; the LM head runs only where a choice token is predicted.
With 19 genre names after a 300-token prompt that is ~19× fewer prompt tokens than scoring every
prompt+choice from scratch; ``stats["prefix_tokens_reused"]`` counts the saving.

Applying the LM head ourselves must give what the model's own forward gives: the config's logit
scaling and soft-capping (Cohere's ``logit_scale``, Granite's ``logits_scaling``, Gemma's
``final_logit_softcapping``) are applied, and a check at load time compares the two paths on a few
tokens; a model whose head does anything else (the check fails, ``own_head`` is False) is scored
through its own forward instead.

Threads: ``num_threads=None`` keeps ``torch.get_num_threads()``. On a CPU shared with other busy
processes, ask for no more threads than free cores: OpenMP's spin-waiting made a 2-thread scoring
call ~15× slower than a 1-thread one on a loaded 2-core machine here.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from rayrec import assets
from rayrec.errors import AssetError, ConfigError
from rayrec.llm.chat import chat_text, end_of_turn, new_stats
from rayrec.llm.choice_scoring import ChoiceTokens, tokenise_choices

EMBEDDED_MODEL_ID = "smollm2-135m-instruct-gguf"


def _resolve_model(model: str | None) -> tuple[str, str, str | None]:
    """``(model_id, path_or_hf_id, gguf_file)``. None means the embedded SmolLM2 GGUF from the cache."""
    if model is None:
        gguf = assets.smollm2_gguf()
        return EMBEDDED_MODEL_ID, str(gguf.parent), gguf.name
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise AssetError(f"GGUF file {path} not found; pass an existing file or a model directory")
        return model, str(path.parent), path.name
    return model, model, None


class TransformersBackend:
    """An LLM loaded once into this process (CPU float32, or CUDA bfloat16)."""

    def __init__(
        self,
        model: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        max_batch_tokens: int = 16384,
        num_threads: int | None = None,
        system_prompt: str | None = None,
    ) -> None:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
            raise ConfigError(f"device must be auto, cpu or cuda[:N], not {device!r}")
        if dtype == "auto":
            dtype = "float32" if device == "cpu" else "bfloat16"
        if dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"dtype must be auto, float32, bfloat16 or float16, not {dtype!r}")
        if max_batch_tokens < 64:
            raise ConfigError(f"max_batch_tokens must be ≥ 64, not {max_batch_tokens}")
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        self.model_id, source, gguf_file = _resolve_model(model)
        self.device = torch.device(device)
        self.max_batch_tokens = max_batch_tokens
        self.system_prompt = system_prompt
        try:
            # GGUF dequantisation draws tqdm bars straight onto stderr (two per load, in every Serve
            # replica and CLI call); they carry no information, so they go nowhere. Exceptions and
            # logging (whose handlers hold their own stream) are unaffected.
            with contextlib.redirect_stderr(io.StringIO()):
                self.tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
                self.model = AutoModelForCausalLM.from_pretrained(
                    source, gguf_file=gguf_file, dtype=getattr(torch, dtype)
                )
        except OSError as exc:
            raise AssetError(
                f"cannot load model {self.model_id!r} ({exc}); pass a local directory, a .gguf file, or "
                "an HF id that is in the local HF cache (this machine may have no hub access)"
            ) from exc
        self.model.to(self.device).eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.stats = new_stats()
        self.end_of_turn = end_of_turn(self.tokenizer)
        self._end_ids = self._encode(self.end_of_turn) if self.end_of_turn else []
        self.max_len = int(getattr(self.model.config, "max_position_embeddings", 0) or 0) or None
        self.own_head = self._own_head_matches_forward()

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The LM head on decoder states, with the output transforms the model's forward applies."""
        cfg = self.model.config
        logits = self.model.get_output_embeddings()(hidden)
        if getattr(cfg, "logit_scale", None) is not None:  # Cohere
            logits = logits * cfg.logit_scale
        if getattr(cfg, "logits_scaling", None) is not None:  # Granite
            logits = logits / cfg.logits_scaling
        if getattr(cfg, "final_logit_softcapping", None) is not None:  # Gemma 2/3
            cap = cfg.final_logit_softcapping
            logits = torch.tanh(logits / cap) * cap
        return logits

    @torch.inference_mode()
    def _own_head_matches_forward(self) -> bool:
        """Whether ``_logits`` on the decoder's states reproduces the model's own forward (a few tokens)."""
        ids = torch.tensor([self._encode(self.chat_text("Which genre?")) + self._encode("Drama")])
        ids = ids.to(self.device)
        want = torch.log_softmax(self.model(input_ids=ids).logits.double(), dim=-1)
        hidden = self.model.get_decoder()(input_ids=ids).last_hidden_state
        got = torch.log_softmax(self._logits(hidden).double(), dim=-1)
        tol = 1e-3 if self.model.dtype == torch.float32 else 5e-2
        return bool(torch.allclose(got, want, atol=tol, rtol=0))

    # ---- text → tokens -------------------------------------------------------------------------

    def chat_text(self, prompt: str) -> str:
        return chat_text(self.tokenizer, prompt, self.system_prompt)

    def _encode(self, text: str) -> list[int]:
        # The chat template already holds every special token; adding BOS again would shift scores.
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _tokenise(self, prompt: str, choices: Sequence[str]) -> ChoiceTokens:
        tok = tokenise_choices(self._encode, self.chat_text(prompt), choices, self._end_ids)
        longest = max(len(ids) for ids in tok.full_ids)
        if self.max_len is not None and longest > self.max_len:
            raise ConfigError(
                f"prompt + choice is {longest} tokens, over {self.model_id}'s {self.max_len}-token context; "
                "shorten the prompt (fewer history rows or candidates)"
            )
        return tok

    def choice_token_counts(
        self, prompts: Sequence[str], choices: Sequence[Sequence[str]]
    ) -> list[np.ndarray]:
        """Tokens each choice costs after its prompt (for mean-per-token length normalisation)."""
        out = []
        for prompt, chs in zip(prompts, choices, strict=True):
            tok = self._tokenise(prompt, chs)
            out.append(tok.n_tokens())
        return out

    # ---- scoring -------------------------------------------------------------------------------

    @torch.inference_mode()
    def score_choices(self, prompts: Sequence[str], choices: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """log P(choice | prompt) per prompt, each a float64 array in the order of its choices."""
        if len(prompts) != len(choices):
            raise ConfigError(
                f"{len(prompts)} prompts but {len(choices)} choice lists; pass one list per prompt"
            )
        toks = [self._tokenise(p, c) for p, c in zip(prompts, choices)]
        results: list[np.ndarray] = [np.empty(0)] * len(toks)
        for group in self._prompt_groups(toks):
            for i, scores in zip(group, self._score_group([toks[i] for i in group])):
                results[i] = scores
        return results

    def _prompt_groups(self, toks: list[ChoiceTokens]) -> list[list[int]]:
        """Consecutive prompts whose padded prefix batch fits ``max_batch_tokens``."""
        groups: list[list[int]] = [[]]
        longest = 0
        for i, t in enumerate(toks):
            longest_if_added = max(longest, t.prefix_len)
            if groups[-1] and longest_if_added * (len(groups[-1]) + 1) > self.max_batch_tokens:
                groups.append([])
                longest_if_added = t.prefix_len
            groups[-1].append(i)
            longest = longest_if_added
        return groups

    def _score_group(self, toks: list[ChoiceTokens]) -> list[np.ndarray]:
        # 1) One forward pass over the prompts' shared prefixes, left-padded to P tokens.
        pad = self.tokenizer.pad_token_id
        P = max(t.prefix_len for t in toks)
        prefix_ids = torch.full((len(toks), P), pad, dtype=torch.long)
        prefix_mask = torch.zeros((len(toks), P), dtype=torch.long)
        for b, t in enumerate(toks):
            prefix_ids[b, P - t.prefix_len :] = torch.tensor(t.prompt_ids[: t.prefix_len])
            prefix_mask[b, P - t.prefix_len :] = 1
        prefix_pos = (prefix_mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=prefix_ids.to(self.device),
            attention_mask=prefix_mask.to(self.device),
            position_ids=prefix_pos.to(self.device),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,  # only the last position's logits are needed; skips (B, P, V) of LM head work
        )
        last_logp = torch.log_softmax(out.logits[:, -1].double(), dim=-1).cpu()  # (B, V)
        prefix_kv = [(layer.keys, layer.values) for layer in cache.layers]  # each (B, heads, P, d)
        self.stats["forward_passes"] += 1
        self.stats["prompt_tokens"] += sum(t.prefix_len for t in toks)

        # 2) The first scored token of every choice comes from the prompt's last logits. A choice's
        # later tokens need its earlier tokens run on top of the prompt's cache; its last token is
        # never fed (nothing is predicted from it), so one-token choices cost no extra pass at all.
        sums = []
        for b, t in enumerate(toks):
            scores = np.zeros(len(t.full_ids), dtype=np.float64)
            for c, (ids, start) in enumerate(zip(t.full_ids, t.starts)):
                if start == t.prefix_len:
                    scores[c] += float(last_logp[b, ids[start]])
            sums.append(scores)
            self.stats["prefix_tokens_reused"] += t.prefix_len * (len(t.full_ids) - 1)
        if any(len(ids) - 1 > t.prefix_len for t in toks for ids in t.full_ids):
            self._score_packed(toks, prefix_kv, prefix_mask, sums)
        return sums

    def _score_packed(
        self,
        toks: list[ChoiceTokens],
        prefix_kv: list[tuple[torch.Tensor, torch.Tensor]],
        prefix_mask: torch.Tensor,
        sums: list[np.ndarray],
    ) -> None:
        """Run every choice's tokens (all but its last) on top of its prompt's cached keys/values.

        Row b packs prompt b's choices one after another: token j of the packed row belongs to choice
        ``owner[b][j]``, sits at position ``prefix_len + k`` (k = its index inside the choice) and may
        attend to the prompt and to the earlier tokens of its own choice only, so each choice is scored
        exactly as if it followed the prompt alone.
        """
        pad = self.tokenizer.pad_token_id
        B, P = prefix_mask.shape
        packed: list[list[tuple[int, int, int]]] = []  # per row: (choice, k, token id)
        for t in toks:
            row = []
            for c, ids in enumerate(t.full_ids):
                row.extend((c, k, tok) for k, tok in enumerate(ids[t.prefix_len : -1]))
            packed.append(row)
        Q = max(len(r) for r in packed)
        feed_ids = torch.full((B, Q), pad, dtype=torch.long)
        positions = torch.zeros((B, Q), dtype=torch.long)
        owner = torch.full((B, Q), -1, dtype=torch.long)  # -1: padding
        for b, row in enumerate(packed):
            for j, (c, k, tok) in enumerate(row):
                feed_ids[b, j], positions[b, j], owner[b, j] = tok, toks[b].prefix_len + k, c
        # (B, Q, P + Q): the prompt's real tokens, plus earlier-or-same tokens of the same choice; a
        # padding query sees only itself, so no row of the softmax is empty.
        same_choice = (owner[:, :, None] == owner[:, None, :]) & (owner[:, :, None] >= 0)
        causal = torch.ones(Q, Q, dtype=torch.bool).tril()
        own = (same_choice & causal) | torch.eye(Q, dtype=torch.bool)
        allowed = torch.cat([prefix_mask.bool()[:, None, :].expand(B, Q, P), own], dim=2)
        dtype = self.model.dtype
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
        cache = DynamicCache(ddp_cache_data=list(prefix_kv), config=self.model.config)
        inputs = {
            "input_ids": feed_ids.to(self.device),
            "attention_mask": mask[:, None].to(self.device),  # (B, 1, Q, P + Q), used as given
            "position_ids": positions.to(self.device),
            "past_key_values": cache,
            "use_cache": True,
        }
        if self.own_head:
            hidden = self.model.get_decoder()(**inputs).last_hidden_state  # (B, Q, H)
        else:  # the model's head does more than _logits knows: let its forward compute every position
            all_logits = self.model(**inputs).logits  # (B, Q, V)
        self.stats["forward_passes"] += 1
        self.stats["choice_tokens"] += sum(len(r) for r in packed)
        # Fed token k of a choice sits at absolute position L+k and predicts token L+k+1; keep the k whose
        # target is a scored choice token (at or after the choice's start).
        row_idx, pos_idx, targets, where = [], [], [], []
        for b, row in enumerate(packed):
            t = toks[b]
            for j, (c, k, _) in enumerate(row):
                if k >= t.starts[c] - 1 - t.prefix_len:
                    row_idx.append(b)
                    pos_idx.append(j)
                    targets.append(t.full_ids[c][t.prefix_len + k + 1])
                    where.append((b, c))
        logits = self._logits(hidden[row_idx, pos_idx]) if self.own_head else all_logits[row_idx, pos_idx]
        logp = torch.log_softmax(logits.double(), dim=-1)
        tok_logp = logp.gather(-1, torch.tensor(targets, device=self.device)[:, None])[:, 0].cpu()  # (N,)
        for (b, c), lp in zip(where, tok_logp.tolist()):
            sums[b][c] += lp

    def generate(
        self,
        prompts: Sequence[str],
        max_tokens: int = 64,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> list[str]:
        """Free-text answers (greedy at temperature 0), one per prompt, batched with left padding."""
        if max_tokens < 1:
            raise ConfigError(f"max_tokens must be ≥ 1, not {max_tokens}")
        if temperature < 0:
            raise ConfigError(f"temperature must be ≥ 0, not {temperature}")
        if not prompts:
            return []
        enc = self.tokenizer(  # padding_side per call: the tokenizer's own setting stays untouched
            [self.chat_text(p) for p in prompts],
            return_tensors="pt",
            padding=True,
            padding_side="left",
            add_special_tokens=False,
        ).to(self.device)
        sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            if seed is not None:
                torch.manual_seed(seed)
            out = self.model.generate(
                **enc,
                max_new_tokens=max_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                **(sampling if temperature > 0 else {"do_sample": False}),
            )
        new = out[:, enc["input_ids"].shape[1] :]
        self.stats["forward_passes"] += new.shape[1]  # one decoding step per generated position
        self.stats["generated_tokens"] += int((new != self.tokenizer.pad_token_id).sum())
        return [s.strip() for s in self.tokenizer.batch_decode(new, skip_special_tokens=True)]

    # ---- raw speed -----------------------------------------------------------------------------

    @torch.inference_mode()
    def forward_tokens_per_second(self, seq_len: int = 256, batch_size: int = 1, repeats: int = 5) -> float:
        """Tokens/s of a plain forward pass (no cache, no padding): the model's raw speed on this device,
        the yardstick the serving path is compared to."""
        ids = torch.randint(0, self.tokenizer.vocab_size, (batch_size, seq_len), device=self.device)
        self.model(input_ids=ids, use_cache=False)  # warm-up: allocators, thread pools
        start = time.perf_counter()
        for _ in range(repeats):
            self.model(input_ids=ids, use_cache=False)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return batch_size * seq_len * repeats / (time.perf_counter() - start)
