"""``curate eval``: the base model and its adapters side by side on an export's eval split.

Each model answers every eval prompt (the conversation up to its last assistant turn, through the model's
chat template; greedy by default, the settings recorded); the answers are scored against the reference
answer with BLEU-4 (sacrebleu; ``tokenize="zh"`` for Chinese references), ROUGE-L (rouge-score with a
tokenizer that keeps CJK characters, one token each: its default drops every non-ASCII character) and
BERTScore F1 (bert-score on a local model: the all-MiniLM-L6-v2 the project installs, an English model,
so the report says that its Chinese scores are not meaningful). Scores per model, per language and per
source, the eval loss on the assistant's tokens, as JSON and a table; the generations as JSONL.

A ``<think>...</think>`` block in an answer (R1-style models) is left out before scoring.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from training.data import IGNORE_INDEX, ExportData, to_messages, tokenize_rows

_THINK = re.compile(r"<think>.*?</think>\s*", re.S)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]|[^\W_]+", re.U)
BERTSCORE_LANGUAGES = ("en",)  # what the default scoring model (all-MiniLM-L6-v2) was trained on


@dataclass
class GenerationSettings:
    """How answers are generated (recorded in the results)."""

    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    batch_size: int = 8
    seed: int = 0


def prompt_and_reference(row: dict) -> tuple[list[dict], str]:
    """The conversation up to the last assistant turn, and that turn's answer (its reasoning left out)."""
    messages = to_messages(row, reasoning="drop")
    last = max(k for k, m in enumerate(messages) if m["role"] == "assistant")
    return messages[:last], messages[last]["content"]


def cjk_tokens(text: str) -> list[str]:
    """Lower-cased words, and every CJK character as a token of its own (for ROUGE-L)."""
    return _TOKEN.findall(text.lower())


class _CJKTokenizer:
    def tokenize(self, text: str) -> list[str]:
        return cjk_tokens(text)


def is_chinese(text: str) -> bool:
    letters = sum(ch.isalpha() for ch in text)
    return bool(letters) and len(_CJK.findall(text)) >= 0.3 * letters


def bleu4(hyps: list[str], refs: list[str]) -> float:
    """Corpus BLEU-4 (0-100) with sacrebleu: its Chinese tokenizer when the references are mostly Chinese."""
    import sacrebleu

    if not hyps:
        return float("nan")
    zh = sum(is_chinese(r) for r in refs) * 2 > len(refs)
    return float(sacrebleu.corpus_bleu(hyps, [refs], tokenize="zh" if zh else "13a").score)


def rouge_l(hyps: list[str], refs: list[str]) -> float:
    """Mean ROUGE-L F1 (0-100) with rouge-score and a CJK-keeping tokenizer."""
    from rouge_score import rouge_scorer

    if not hyps:
        return float("nan")
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_CJKTokenizer())
    return 100.0 * sum(scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hyps, refs)) / len(hyps)


def bertscore_model() -> str:
    """The local scoring model: the packaged all-MiniLM-L6-v2 (its hub id where the package is missing)."""
    from curation.dedup.semantic import resolve_model

    return resolve_model(None)


def bertscore_f1(hyps: list[str], refs: list[str], model: str | None = None) -> list[float]:
    """BERTScore F1 per pair (bert-score, layer 6 of the scoring model, no baseline rescaling)."""
    if not hyps:
        return []
    from bert_score import BERTScorer

    scorer = BERTScorer(model_type=model or bertscore_model(), num_layers=6, lang="en", batch_size=32)
    _, _, f1 = scorer.score(hyps, refs)
    return [float(x) for x in f1]


def generate(model, tokenizer, prompts: list[list[dict]], settings: GenerationSettings,  # noqa: ANN001
             progress=None) -> list[str]:  # noqa: ANN001
    """Answers to the prompts, in batches (left padding), decoded without special tokens.

    ``progress``: called ``(description, done, total, unit)`` after each batch."""
    import torch

    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(settings.seed)
    out: list[str] = []
    for k in range(0, len(prompts), settings.batch_size):
        texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
                 for p in prompts[k:k + settings.batch_size]]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            ids = model.generate(**enc, max_new_tokens=settings.max_new_tokens, do_sample=settings.do_sample,
                                 temperature=settings.temperature if settings.do_sample else None,
                                 top_p=settings.top_p if settings.do_sample else None,
                                 pad_token_id=tokenizer.pad_token_id)
        for row in ids[:, enc["input_ids"].shape[1]:]:
            out.append(tokenizer.decode(row, skip_special_tokens=True).strip())
        if progress is not None:
            progress("generating", len(out), len(prompts), "prompts")
    return out


def eval_loss(model, tokenizer, rows: list[dict], max_seq_length: int = 2048, progress=None) -> float:  # noqa: ANN001
    """Mean cross-entropy over the assistant's tokens of the eval rows (teacher forcing)."""
    import torch

    examples, _ = tokenize_rows(tokenizer, rows, max_seq_length, reasoning="drop")
    total, count = 0.0, 0
    with torch.no_grad():
        for k, ex in enumerate(examples):
            ids = torch.tensor([ex.input_ids])
            labels = torch.tensor([ex.labels])
            logits = model(ids).logits[:, :-1]
            target = labels[:, 1:]
            mask = target != IGNORE_INDEX
            loss = torch.nn.functional.cross_entropy(logits[mask], target[mask], reduction="sum")
            total += float(loss)
            count += int(mask.sum())
            if progress is not None:
                progress("eval loss", k + 1, len(examples), "samples")
    return total / count if count else float("nan")


def _scores(hyps: list[str], refs: list[str], f1: list[float]) -> dict:
    return {"n": len(hyps), "bleu4": bleu4(hyps, refs), "rougeL": rouge_l(hyps, refs),
            "bertscore_f1": sum(f1) / len(f1) if f1 else float("nan")}


def evaluate_models(data: ExportData, model_path: Path, adapters: list[Path], out: Path,
                    max_samples: int | None = None, settings: GenerationSettings | None = None,
                    scorer_model: str | None = None, progress=None, quantization: str | None = None) -> dict:  # noqa: ANN001
    """Generate and score for the base model and each adapter; write ``eval_results.json`` and
    ``generations.jsonl`` into ``out``; the results as a dict. ``quantization`` (int8, int8-dynamic): the base
    model's weights quantised before generating, as ``curate serve --quantization`` serves it. ``progress``: ``(description, done, total,
    unit)`` per batch of answers and per eval-loss sample, the description prefixed with the model's name."""
    from transformers import AutoTokenizer

    from curation.language import detect
    from training.models import load_causal_lm, weight_bytes

    from training.models import QUANTIZATIONS

    if quantization is not None and quantization not in QUANTIZATIONS:
        from curation.errors import UsageError

        raise UsageError(f"quantization {quantization!r}: one of {', '.join(QUANTIZATIONS)}")
    settings = settings or GenerationSettings()
    rows = data.eval[:max_samples] if max_samples else data.eval
    if not rows:
        from curation.errors import UsageError

        raise UsageError(f"{data.path}: the eval split is empty; export with a larger --eval-share")
    out.mkdir(parents=True, exist_ok=True)
    pairs = [prompt_and_reference(r) for r in rows]
    prompts, refs = [p for p, _ in pairs], [r for _, r in pairs]
    langs = [r.lang for r in detect(refs)]
    sources = [str(r.get("source") or "") for r in rows]
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    results: dict = {"snapshot_id": data.manifest.snapshot_id, "content_hash": data.manifest.content_hash,
                     "base_model": str(model_path), "samples": len(rows), "generation": settings.__dict__,
                     "quantization": quantization,
                     "scorer": {"bertscore_model": scorer_model or bertscore_model(), "bertscore_layer": 6,
                                "bertscore_languages": list(BERTSCORE_LANGUAGES),
                                "note": "BERTScore uses an English model: its scores on other languages are not "
                                        "meaningful (see by_language)"}, "models": {}}
    started = time.time()
    gens_file = open(out / "generations.jsonl", "w", encoding="utf-8")  # noqa: SIM115
    try:
        for name, adapter in [("base", None)] + [(Path(a).name, Path(a)) for a in adapters]:
            net = load_causal_lm(model_path, "float32", quantization)
            weights = weight_bytes(net)
            if adapter is not None:
                from peft import PeftModel

                net = PeftModel.from_pretrained(net, adapter)
            net.eval()
            t0 = time.time()
            step = (lambda d, n, t, u, _m=name: progress(f"{_m}: {d}", n, t, u)) if progress else None  # noqa: E731
            hyps = [_THINK.sub("", h).strip() for h in generate(net, tokenizer, prompts, settings, step)]
            gen_seconds = time.time() - t0
            f1 = bertscore_f1(hyps, refs, scorer_model)
            entry = {"adapter": str(adapter) if adapter else None, **_scores(hyps, refs, f1),
                     "eval_loss": eval_loss(net, tokenizer, rows, progress=step), "generation_seconds": round(gen_seconds, 2),
                     "weight_bytes": weights,
                     "by_language": {}, "by_source": {}}
            for key, values in (("by_language", langs), ("by_source", sources)):
                for v in sorted(set(values)):
                    idx = [k for k, x in enumerate(values) if x == v]
                    entry[key][v] = _scores([hyps[k] for k in idx], [refs[k] for k in idx], [f1[k] for k in idx])
            results["models"][name] = entry
            for row, p, r, h in zip(rows, prompts, refs, hyps):
                gens_file.write(json.dumps({"model": name, "sample_id": row.get("sample_id"), "prompt": p,
                                            "reference": r, "answer": h}, ensure_ascii=False) + "\n")
    finally:
        gens_file.close()
    results["wall_seconds"] = round(time.time() - started, 1)
    (out / "eval_results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    return results


def results_table(results: dict):  # noqa: ANN201
    """A rich table: one row per model, BLEU-4, ROUGE-L, BERTScore F1, eval loss."""
    from rich.table import Table

    quant = f", weights {results['quantization']}" if results.get("quantization") else ""
    t = Table(title=f"snapshot {results['snapshot_id']}: {results['samples']} eval samples{quant}")
    for col in ("model", "BLEU-4", "ROUGE-L", "BERTScore F1", "eval loss", "gen s"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for name, m in results["models"].items():
        t.add_row(name, f"{m['bleu4']:.2f}", f"{m['rougeL']:.2f}", f"{m['bertscore_f1']:.4f}", f"{m['eval_loss']:.4f}",
                  f"{m['generation_seconds']:.1f}")
    return t


def _transcript(prompt: list[dict]) -> str:
    """A conversation as a reviewer reads it: one block per turn, its role first."""
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in prompt)


@dataclass
class HumanRoundPush:
    """What :func:`push_human_round` pushed: the rating items, and the preference items (None with one model)."""

    ratings: object
    preference: object | None

    @property
    def created(self) -> int:
        return self.ratings.created + (self.preference.created if self.preference else 0)

    @property
    def existing(self) -> int:
        return self.ratings.existing + (self.preference.existing if self.preference else 0)

    @property
    def url(self) -> str:
        return self.ratings.url


def preference_items(round_name: str, generations: list[dict]) -> list[dict]:
    """One item per prompt and pair of models that answered it: both answers, models hidden, as "Answer A" and
    "Answer B" in an order drawn from the item id (the same on every push); the order is kept in the payload."""
    import itertools
    import random

    from curation.review.items import PREFERENCE_QUESTIONS

    by_sample: dict[str, dict[str, dict]] = {}
    for g in generations:
        by_sample.setdefault(g["sample_id"], {})[g["model"]] = g
    items = []
    for sid, answers in by_sample.items():
        for a, b in itertools.combinations(sorted(answers), 2):
            item_id = f"{round_name}:{sid}:{a}|{b}"
            order = [a, b]
            random.Random(item_id).shuffle(order)
            text = (f"Answer A\n\n{answers[order[0]]['answer'] or '(empty answer)'}\n\n----------\n\n"
                    f"Answer B\n\n{answers[order[1]]['answer'] or '(empty answer)'}")
            items.append({"item_id": item_id, "prompt": _transcript(answers[a]["prompt"]), "answer": text,
                          "model": "two answers to one prompt, in random order", "order": order, "pair": [a, b],
                          "sample_id": sid, "questions": PREFERENCE_QUESTIONS})
    return items


def push_human_round(store, round_name: str, generations: list[dict], backend: str = "labelstudio",  # noqa: ANN001
                     url: str | None = None, results: Path | None = None) -> HumanRoundPush:
    """Push the generations (``generations.jsonl`` rows) as items of the human round ``round_name``.

    Each model answer is one item rated on :data:`curation.review.items.EVAL_QUESTIONS` (factual accuracy,
    logical consistency, style match; 1-5), with the conversation as its prompt and the model's name beside it.
    Where two or more models answered one prompt, each pair is also one item of a second project (the round's
    preference project, stratum ``NAME/preference``): which answer is better, the models hidden, in random
    order (:func:`preference_items`). Idempotent by item id (round, sample, model or pair).
    """
    from curation.review.backends import get_backend, round_key
    from curation.review.items import EVAL_QUESTIONS, answer_items
    from curation.review.verdicts import add_answer_items

    answers = [{"item_id": f"{round_name}:{g['sample_id']}:{g['model']}", "prompt": _transcript(g["prompt"]),
                "answer": g["answer"] or "(empty answer)", "model": g["model"], "reference": g.get("reference"),
                "sample_id": g["sample_id"], "questions": EVAL_QUESTIONS, "results": str(results) if results else None}
               for g in generations]
    add_answer_items(store, round_name, answers, backend)
    be = get_backend(backend, **({"url": url} if url else {}))
    ratings = be.push(round_key(round_name, store_id=store.store_id), "answer", answer_items(store, round_name))
    pairs = preference_items(round_name, generations)
    preference = None
    if pairs:
        add_answer_items(store, f"{round_name}/preference", pairs, backend)
        preference = be.push(round_key(f"{round_name} preference", store_id=store.store_id), "answer",
                             answer_items(store, f"{round_name}/preference"))
    return HumanRoundPush(ratings, preference)


def _round_rows(store, stratum: str) -> list[tuple]:  # noqa: ANN001
    """``(item_id, reviewer, ratings JSON, payload JSON)`` of a round's answer items: the item's pending row holds
    its payload, each reviewer's verdict is a row of its own (reviewer NULL on the pending row)."""
    with store.reader() as con:
        return con.execute(
            """SELECT r.item_id, r.reviewer, CAST(r.ratings AS VARCHAR), CAST(i.payload AS VARCHAR) FROM reviews r
               JOIN (SELECT item_id, any_value(payload) AS payload FROM reviews
                     WHERE item_kind = 'answer' AND payload IS NOT NULL GROUP BY item_id) i USING (item_id)
               WHERE r.item_kind = 'answer' AND r.stratum = ?""", [stratum]).fetchall()


def _sign_test(wins: int, losses: int) -> float | None:
    """Two-sided sign test of wins against losses (ties left out): the chance of a split this uneven if
    neither model were better."""
    if wins + losses == 0:
        return None
    from scipy.stats import binomtest

    return float(binomtest(wins, wins + losses, 0.5).pvalue)


def _preference_summary(store, round_name: str, be) -> dict:  # noqa: ANN001
    from curation.review.backends import round_key
    from curation.review.verdicts import record_verdicts

    stratum = f"{round_name}/preference"
    with store.reader() as con:
        pushed = con.execute("SELECT count(*) FROM reviews WHERE item_kind = 'answer' AND stratum = ?", [stratum]).fetchone()[0]
    if not pushed:
        return {}
    record_verdicts(store, be.pull(round_key(f"{round_name} preference", store_id=store.store_id), "answer"), be.name)
    out: dict[str, dict] = {}
    for _, reviewer, ratings, payload in _round_rows(store, stratum):
        if reviewer is None:
            continue
        p = json.loads(payload)
        choice = (json.loads(ratings) if ratings else {}).get("preferred")
        a, b = p["pair"]
        s = out.setdefault(f"{a} vs {b}", {a: 0, b: 0, "equally good": 0, "both bad": 0, "n": 0})
        if choice in ("Answer A", "Answer B"):
            s[p["order"][0 if choice == "Answer A" else 1]] += 1
        elif choice == "Equally good":
            s["equally good"] += 1
        elif choice == "Both bad":
            s["both bad"] += 1
        else:
            continue
        s["n"] += 1
    for name, s in out.items():
        a, b = name.split(" vs ")
        s["sign_test_p"] = _sign_test(s[a], s[b])
    return out


def human_round_report(store, round_name: str, backend: str = "labelstudio", url: str | None = None) -> dict:  # noqa: ANN001
    """Pull the round's ratings into the store and summarise them per model, beside the automatic scores.

    Per model and question: the mean rating and how many ratings it rests on; items rated / pushed. Per pair of
    models (``preference``): how often each was preferred, ties ("equally good", "both bad"), and a two-sided
    sign test over the decided items.
    """
    from curation.review.backends import get_backend, round_key
    from curation.review.verdicts import record_verdicts

    be = get_backend(backend, **({"url": url} if url else {}))
    pulled = be.pull(round_key(round_name, store_id=store.store_id), "answer")
    new = record_verdicts(store, pulled, backend)
    models: dict[str, dict] = {}
    results_file = None
    for item_id, reviewer, ratings, payload in _round_rows(store, round_name):
        p = json.loads(payload) if payload else {}
        m = models.setdefault(p.get("model") or "?", {"items": set(), "rated": set(), "ratings": {}})
        m["items"].add(item_id)
        results_file = results_file or p.get("results")
        if ratings and reviewer:
            m["rated"].add(item_id)
            for q, v in json.loads(ratings).items():
                if isinstance(v, (int, float)):
                    m["ratings"].setdefault(q, []).append(float(v))
    auto = {}
    if results_file and Path(results_file).is_file():
        auto = json.loads(Path(results_file).read_text(encoding="utf-8")).get("models", {})
    out = {"round": round_name, "pulled": len(pulled), "new": new, "models": {}}
    for name, m in sorted(models.items()):
        out["models"][name] = {
            "items": len(m["items"]), "rated": len(m["rated"]),
            "ratings": {q: {"mean": sum(v) / len(v), "n": len(v)} for q, v in sorted(m["ratings"].items())},
            "automatic": {k: auto.get(name, {}).get(k) for k in ("bleu4", "rougeL", "bertscore_f1", "eval_loss")},
        }
    out["preference"] = _preference_summary(store, round_name, be)
    return out
