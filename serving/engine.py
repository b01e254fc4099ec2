"""The CPU engine: a transformers + peft model behind a request queue, with LoRA adapters chosen per request.

One worker thread owns the model. Requests wait in a bounded queue (full: :class:`Overloaded`, a 503); the
worker takes what is waiting (up to ``max_batch``) and answers requests for the same model and sampling
settings together, in one left-padded ``generate`` (a request with a seed, or streamed, runs alone, so that
its answer does not depend on its neighbours). Adapters are peft adapters loaded by name on one
``PeftModel``; the base model answers with every adapter disabled. Loading and unloading wait for the batch
in progress.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from curation.errors import UsageError


class EngineError(Exception):
    """A request the engine refuses; ``status`` is the HTTP status to answer with."""

    status = 400
    kind = "invalid_request_error"


class UnknownModel(EngineError):
    status = 404
    kind = "not_found_error"


class Overloaded(EngineError):
    status = 503
    kind = "overloaded_error"


@dataclass
class Request:
    """One generation: prompt token ids, the served model's name and the sampling settings."""

    model: str
    prompt_ids: list[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: int = field(default_factory=lambda: int(time.time()))
    # filled by the worker
    done: threading.Event = field(default_factory=threading.Event)
    chunks: queue.Queue = field(default_factory=queue.Queue)  # streamed text pieces; None ends
    text: str = ""
    completion_tokens: int = 0
    finish_reason: str = "stop"
    error: Exception | None = None
    batch_size: int = 0  # how many requests shared its forward passes

    def key(self) -> tuple:
        sampled = self.temperature > 0
        return (self.model, sampled, self.temperature if sampled else 0.0, self.top_p if sampled else 1.0)


@dataclass
class Adapter:
    name: str
    path: Path
    rank: int
    snapshot_id: int | None = None
    content_hash: str | None = None


def split_reasoning(text: str) -> tuple[str | None, str]:
    """``(reasoning, answer)``: a ``<think>`` block as R1 writes it (the opening tag may be in the prompt)."""
    if "</think>" in text:
        head, _, tail = text.partition("</think>")
        return head.replace("<think>", "", 1).strip() or None, tail.strip()
    if text.lstrip().startswith("<think>"):  # cut off while thinking
        return text.lstrip()[len("<think>"):].strip() or None, ""
    return None, text


def _cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    at = min((text.find(s) for s in stops if s and s in text), default=-1)
    return (text[:at], True) if at >= 0 else (text, False)


class CpuEngine:
    """A base model and its LoRA adapters on the CPU (or one GPU, where torch has one), OpenAI-style requests.

    ``model``: a local model folder; ``adapters``: name -> folder written by ``curate train`` (or any peft
    LoRA adapter of this base); ``name``: the base model's served name (default: the folder's name);
    ``quantization``: int8 or int8-dynamic (:func:`training.models.quantization_config`), at load time.
    """

    def __init__(self, model: Path, adapters: dict[str, Path] | None = None, name: str | None = None,
                 dtype: str = "float32", max_batch: int = 8, max_queue: int = 64, batch_wait: float = 0.02,
                 quantization: str | None = None) -> None:
        from transformers import AutoTokenizer

        from training.models import load_causal_lm
        from training.trainer import check_model_folder

        self.model_path = Path(model)
        check_model_folder(self.model_path)
        self.name = name or self.model_path.name
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        # quantised at load time, before any adapter: peft puts its LoRA layers around the int8 linear layers
        self.base = load_causal_lm(self.model_path, dtype, quantization).eval()
        self.quantization = quantization
        self.net = self.base
        self.context_length = int(getattr(self.base.config, "max_position_embeddings", 2048) or 2048)
        self.adapters: dict[str, Adapter] = {}
        self.max_batch, self.batch_wait = max_batch, batch_wait
        self._queue: queue.Queue[Request] = queue.Queue(maxsize=max_queue)
        self._model_lock = threading.Lock()
        # a fast tokenizer's Rust state is not safe to use from several threads at once ("Already borrowed")
        self._tok_lock = threading.Lock()
        self._stop = threading.Event()
        self.stats = {"requests": 0, "batches": 0, "batched_requests": 0}
        for adapter_name, path in (adapters or {}).items():
            self.load_adapter(adapter_name, Path(path))
        self._worker = threading.Thread(target=self._run, name="cpu-engine", daemon=True)
        self._worker.start()

    # adapters -----------------------------------------------------------------------------------------
    def load_adapter(self, name: str, path: Path) -> Adapter:
        """Load a peft LoRA adapter under ``name`` (refused: a name in use, a folder that is not an adapter)."""
        path = Path(path)
        cfg_file = path / "adapter_config.json"
        if not name or name == self.name:
            raise EngineError(f"adapter name {name!r} is empty or the base model's name")
        if name in self.adapters:
            raise EngineError(f"an adapter named {name!r} is already loaded (unload it first)")
        if not cfg_file.is_file():
            raise EngineError(f"{path}: not a LoRA adapter folder (no adapter_config.json)")
        cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
        snapshot = content = None
        mf = path / "train_manifest.json"
        if mf.is_file():  # written by curate train: the snapshot the adapter was trained on
            m = json.loads(mf.read_text(encoding="utf-8"))
            snapshot, content = m.get("snapshot_id"), m.get("content_hash")
        from peft import PeftModel

        with self._model_lock:
            try:
                if self.net is self.base:
                    self.net = PeftModel.from_pretrained(self.base, path, adapter_name=name).eval()
                else:
                    self.net.load_adapter(path, adapter_name=name)
            except Exception as e:  # peft raises several kinds for a mismatched adapter
                raise EngineError(f"{path}: cannot load the adapter onto {self.name}: {e}") from e
            adapter = self.adapters[name] = Adapter(name, path, int(cfg.get("r", 0)), snapshot, content)
        return adapter

    def unload_adapter(self, name: str) -> None:
        if name not in self.adapters:
            raise UnknownModel(f"no adapter named {name!r} is loaded")
        with self._model_lock:
            self.net.delete_adapter(name)
            del self.adapters[name]

    def check_model(self, model: str) -> None:
        if model != self.name and model not in self.adapters:
            raise UnknownModel(f"The model `{model}` does not exist. Served: {', '.join([self.name, *self.adapters])}")

    # requests -----------------------------------------------------------------------------------------
    def chat_prompt(self, messages: list[dict]) -> list[int]:
        """Token ids of a conversation through the model's chat template, ready for the assistant's answer."""
        if getattr(self.tokenizer, "chat_template", None) is None:
            raise EngineError(f"{self.name} has no chat template: use /v1/completions")
        with self._tok_lock:
            ids = self.tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return list(ids)

    def text_prompt(self, text: str) -> list[int]:
        with self._tok_lock:
            return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def check_length(self, prompt_tokens: int, max_tokens: int, where: str = "messages") -> None:
        if prompt_tokens + max_tokens > self.context_length:
            raise EngineError(
                f"This model's maximum context length is {self.context_length} tokens. However, you requested "
                f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the {where}, {max_tokens} in the "
                "completion). Please reduce the length of the messages or completion.")

    def submit(self, req: Request) -> Request:
        """Queue a request (raises :class:`Overloaded` when the queue is full)."""
        self.check_model(req.model)
        try:
            self._queue.put_nowait(req)
        except queue.Full as e:
            raise Overloaded(f"the server is busy: {self._queue.maxsize} requests are waiting; retry later") from e
        return req

    def result(self, req: Request, timeout: float | None = None) -> Request:
        if not req.done.wait(timeout):
            raise Overloaded("the request timed out in the queue")
        if req.error is not None:
            raise req.error
        return req

    def stream(self, req: Request) -> Iterator[str]:
        """The answer's text pieces as they are generated."""
        while True:
            piece = req.chunks.get()
            if piece is None:
                break
            yield piece
        if req.error is not None:
            raise req.error

    def queue_size(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        self._stop.set()
        self._worker.join(timeout=10)

    # the worker ---------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            waiting = [first]
            deadline = time.monotonic() + self.batch_wait
            while len(waiting) < self.max_batch * 4:
                try:
                    waiting.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            groups: dict[tuple, list[Request]] = {}
            alone: list[Request] = []
            for r in waiting:
                if r.stream or r.seed is not None:
                    alone.append(r)
                else:
                    groups.setdefault(r.key(), []).append(r)
            batches = [[r] for r in alone]
            for members in groups.values():
                batches += [members[k:k + self.max_batch] for k in range(0, len(members), self.max_batch)]
            for batch in batches:
                self._generate(batch)

    def _generate(self, batch: list[Request]) -> None:
        import torch

        first = batch[0]
        try:
            with self._model_lock:
                self.stats["batches"] += 1
                self.stats["requests"] += len(batch)
                self.stats["batched_requests"] += len(batch) if len(batch) > 1 else 0
                width = max(len(r.prompt_ids) for r in batch)
                pad = self.tokenizer.pad_token_id
                ids = torch.tensor([[pad] * (width - len(r.prompt_ids)) + r.prompt_ids for r in batch])
                mask = torch.tensor([[0] * (width - len(r.prompt_ids)) + [1] * len(r.prompt_ids) for r in batch])
                sampled = first.temperature > 0
                kwargs = {"max_new_tokens": max(r.max_tokens for r in batch), "do_sample": sampled,
                          "pad_token_id": pad}
                if sampled:
                    kwargs.update(temperature=first.temperature, top_p=first.top_p)
                stops = sorted({s for r in batch for s in r.stop if s})
                if stops:
                    kwargs.update(stop_strings=stops, tokenizer=self.tokenizer)
                if first.seed is not None:
                    torch.manual_seed(first.seed)
                streamer = _Streamer(self.tokenizer, first, self._tok_lock) if first.stream else None
                if streamer is not None:
                    kwargs["streamer"] = streamer
                with torch.no_grad(), self._adapter(first.model):
                    out = self.net.generate(input_ids=ids, attention_mask=mask, **kwargs)
            eos = set(self._eos_ids())
            self._tok_lock.acquire()
            try:
                self._finish(batch, out[:, width:].tolist(), eos)
            finally:
                self._tok_lock.release()
            if streamer is not None:
                streamer.finish(first.text)
        except Exception as e:  # noqa: BLE001 - reported to the waiting request, never kills the worker
            for r in batch:
                r.error = e
                r.chunks.put(None)
        finally:
            for r in batch:
                r.done.set()

    def _finish(self, batch: list[Request], rows: list[list[int]], eos: set[int]) -> None:
        """Each request's answer from its generated ids: cut at end-of-sequence or a stop sequence."""
        for r, row in zip(batch, rows):
            row = row[: r.max_tokens]
            ended = next((k for k, t in enumerate(row) if t in eos), None)
            gen = row[:ended] if ended is not None else row
            text, stopped = _cut_at_stop(self.tokenizer.decode(gen, skip_special_tokens=True), r.stop)
            r.text = text
            r.completion_tokens = len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if stopped else len(gen)
            r.finish_reason = "stop" if (ended is not None or stopped) else "length"
            r.batch_size = len(batch)

    def _eos_ids(self) -> list[int]:
        eos = self.base.generation_config.eos_token_id if self.base.generation_config else None
        eos = eos if eos is not None else self.tokenizer.eos_token_id
        return list(eos) if isinstance(eos, (list, tuple)) else [eos]

    def _adapter(self, model: str):  # noqa: ANN202
        import contextlib

        if self.net is self.base:
            return contextlib.nullcontext()
        if model == self.name:
            return self.net.disable_adapter()
        self.net.set_adapter(model)
        return contextlib.nullcontext()


class _Streamer:
    """transformers' streamer protocol: new tokens in, text pieces out to the request (a stop sequence's
    beginning is held back until it is known not to be one)."""

    def __init__(self, tokenizer, req: Request, lock: threading.Lock) -> None:  # noqa: ANN001
        self.tokenizer, self.req, self.lock = tokenizer, req, lock
        self.ids: list[int] = []
        self.sent = 0
        self.prompt_seen = False
        self.hold = max((len(s) for s in req.stop), default=1) - 1

    def put(self, value) -> None:  # noqa: ANN001
        if not self.prompt_seen:  # the first call carries the prompt
            self.prompt_seen = True
            return
        self.ids += value.reshape(-1).tolist()
        with self.lock:
            text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # half of a multi-byte character
            return
        text, _ = _cut_at_stop(text, self.req.stop)
        upto = max(self.sent, len(text) - self.hold)
        if upto > self.sent:
            self.req.chunks.put(text[self.sent:upto])
            self.sent = upto

    def end(self) -> None:
        pass

    def finish(self, final: str) -> None:
        if len(final) > self.sent:
            self.req.chunks.put(final[self.sent:])
        self.req.chunks.put(None)


def parse_adapters(specs: list[str]) -> dict[str, Path]:
    """``NAME=DIR`` options as a dict (a bare ``DIR`` is named after its folder)."""
    out: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec).name, spec
        if not name or not path:
            raise UsageError(f"--adapter {spec!r}: expected NAME=DIR")
        out[name] = Path(path)
    return out
