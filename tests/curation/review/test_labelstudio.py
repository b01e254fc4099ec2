"""The review loop against a real Label Studio (started once per test session on 127.0.0.1).

Simulated reviewers are Label Studio users who annotate through its API; their verdicts come from the
bundled sample's planted truth, with 2% noise.
"""

from __future__ import annotations

import hashlib
import json
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from curation.cli.app import app
from curation.review.backends.labelstudio import LabelStudioBackend
from curation.review.export import export_snapshot
from curation.review.loop import (
    add_answer_items,
    apply_reviews,
    error_summary,
    pull_review,
    push_review,
)
from curation.review.snapshots import (
    approve,
    create_snapshot,
    get_snapshot,
    snapshot_certification,
)
from tests.curation.review.test_loop import _bad_samples


@pytest.fixture
def backend(labelstudio) -> LabelStudioBackend:
    return LabelStudioBackend(url=labelstudio.url, token=labelstudio.token)


def _users(backend: LabelStudioBackend, n: int) -> list[int]:
    """Ids of ``n`` reviewer accounts (made once)."""
    have = {u.email: int(u.id) for u in backend.client.users.list()}
    out = []
    for i in range(n):
        email = f"reviewer{i}@example.com"
        if email not in have:
            have[email] = int(backend.client.users.create(username=f"reviewer{i}", email=email, password="pw-" + "x" * 12).id)
        out.append(have[email])
    return out


def _review(backend: LabelStudioBackend, key: str, bad: set[str], users: list[int], noise: float, seed: int,
            only: int | None = None) -> int:
    """Each user judges each task of the project (or the first ``only`` tasks) through the API; returns the count."""
    pid = backend.project_id(key, "sample")
    tasks = sorted(backend.item_ids(pid).items())[:only]
    rng = random.Random(seed)
    jobs = []
    for item, task in tasks:
        right = "reject" if item.split(":")[1] in bad else "accept"
        for u in users:
            verdict = ({"accept": "reject", "reject": "accept"}[right]) if rng.random() < noise else right
            result = [{"from_name": "verdict", "to_name": "output", "type": "choices", "value": {"choices": [verdict]}}]
            if verdict == "reject":
                result.append({"from_name": "categories", "to_name": "output", "type": "choices",
                               "value": {"choices": ["incomplete"]}})
            jobs.append((task, result, u))

    def one(job) -> None:  # noqa: ANN001
        backend.client.annotations.create(id=job[0], result=job[1], completed_by=job[2])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, jobs))
    return len(jobs)


def _fingerprint(store) -> str:  # noqa: ANN001
    with store.reader() as con:
        rows = con.execute("SELECT (SELECT count(*) FROM reviews), (SELECT count(*) FROM snapshots), "
                           "(SELECT string_agg(coalesce(review_plan::VARCHAR, '-'), ',') FROM snapshots)").fetchall()
    return hashlib.sha1(json.dumps(rows, default=str).encode()).hexdigest()


def test_create_push_review_pull_certify_apply_approve_export(store, backend, truth, tmp_path) -> None:
    snap = create_snapshot(store)
    pushed = push_review(store, snap.snapshot_id, backend, seed=7, overlap=3)
    plan = pushed["plan"]
    assert pushed["created"] == pushed["items"] == plan["items"] >= plan["reviews"] == 523
    assert get_snapshot(store, snap.snapshot_id).state == "in_review"
    # a re-push creates nothing: Label Studio has no upsert, the item ids are checked first
    again = push_review(store, snap.snapshot_id, backend, seed=7)
    assert again["created"] == 0 and again["already_there"] == pushed["items"]
    pid = int(pushed["project"])
    assert len(backend.item_ids(pid)) == pushed["items"]
    # the tasks carry the sample and our filters' view as a prediction
    task = backend.client.tasks.list(project=pid, fields="all", page=1, page_size=1).items[0]
    assert task.data["item_id"].startswith(f"{snap.snapshot_id}:") and task.data["hints"].startswith("source: ")

    bad = _bad_samples(store, truth)
    users = _users(backend, 3)
    # three reviewers per item (the plan's overlap); the majority verdict counts
    assert _review(backend, f"snapshot {snap.snapshot_id}", bad, users, noise=0.02, seed=1) == 3 * pushed["items"]
    pulled = pull_review(store, snap.snapshot_id, backend)
    assert pulled["pulled"] == pulled["new"] == 3 * pushed["items"]
    assert pull_review(store, snap.snapshot_id, backend)["new"] == 0  # a re-pull stores nothing twice
    cert = pulled["certification"]
    assert cert["verdict"] == "certified", cert
    assert pulled["agreement"]["items_with_overlap"] == pushed["items"]
    assert pulled["agreement"]["percent_agreement"] > 0.9 and pulled["agreement"]["fleiss_kappa"] > 0.5
    with store.reader() as con:
        who = {r[0] for r in con.execute("SELECT DISTINCT reviewer FROM reviews WHERE status = 'submitted'").fetchall()}
    assert who == {f"reviewer{i}@example.com" for i in range(3)}
    errors = error_summary(store, snap.snapshot_id)
    assert any(r["by"] == "source" and r["rejected"] and r["categories"].get("incomplete") for r in errors)

    child = apply_reviews(store, snap.snapshot_id)
    done = approve(store, snap.snapshot_id, snapshot_certification(store, snap.snapshot_id))
    assert done.state == "approved" and not done.forced
    out = export_snapshot(store, snap.snapshot_id, tmp_path / "export", seed=3)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["review"]["verdict"] == "certified" and manifest["samples"] == snap.n_samples
    assert get_snapshot(store, child).n_samples < snap.n_samples


def test_a_snapshot_with_four_percent_errors_does_not_certify_through_label_studio(store, backend) -> None:
    snap = create_snapshot(store)
    with store.reader() as con:
        ids = [r[0] for r in con.execute("SELECT sample_id FROM snapshot_samples WHERE snapshot_id = ? ORDER BY sample_id",
                                         [snap.snapshot_id]).fetchall()]
    bad = set(random.Random(3).sample(ids, int(0.04 * len(ids))))
    # a distinct project: this store's snapshot ids restart at 1, so name it apart
    pushed = push_review(store, snap.snapshot_id, _Renamed(backend, "4pct"), seed=11)
    _review(backend, "4pct snapshot 1", bad, _users(backend, 1), noise=0.02, seed=4)
    pulled = pull_review(store, snap.snapshot_id, _Renamed(backend, "4pct"))
    assert pulled["new"] == pushed["items"]
    assert pulled["certification"]["verdict"] != "certified", pulled["certification"]


class _Renamed:
    """The same backend with its project keys prefixed (two test stores both have a snapshot 1)."""

    def __init__(self, backend: LabelStudioBackend, prefix: str) -> None:
        self.b, self.prefix, self.name = backend, prefix, backend.name

    def check(self) -> None:
        self.b.check()

    def push(self, key, kind, items, overlap=1, progress=None):  # noqa: ANN001, ANN201
        return self.b.push(f"{self.prefix} {key}", kind, items, overlap, progress)

    def pull(self, key, kind):  # noqa: ANN001, ANN201
        return self.b.pull(f"{self.prefix} {key}", kind)


def test_rating_items_round_trip(store, backend) -> None:
    answers = [{"item_id": f"eval-a:{i}", "prompt": f"把这句话翻译成英文 {i}", "answer": f"Translate this {i}",
                "model": "lora-a"} for i in range(6)]
    add_answer_items(store, "eval-a", answers)
    from curation.review.items import answer_items

    res = backend.push("ratings eval-a", "answer", answer_items(store, "eval-a"))
    assert res.created == 6 and backend.push("ratings eval-a", "answer", answer_items(store, "eval-a")).created == 0
    pid = backend.project_id("ratings eval-a", "answer")
    uid = _users(backend, 1)[0]
    for _item, task in sorted(backend.item_ids(pid).items())[:4]:
        backend.client.annotations.create(id=task, completed_by=uid, result=[
            {"from_name": "overall", "to_name": "answer", "type": "rating", "value": {"rating": 4}},
            {"from_name": "correct", "to_name": "answer", "type": "choices", "value": {"choices": ["partly"]}}])
    got = backend.pull("ratings eval-a", "answer")
    assert len(got) == 4 and all(v["ratings"] == {"overall": 4, "correct": "partly"} for v in got)
    from curation.review.loop import record_verdicts

    assert record_verdicts(store, got, "labelstudio") == 4


def test_push_to_a_stopped_server_or_with_a_wrong_token_exits_4_and_changes_nothing(store, runner, labelstudio,
                                                                                     monkeypatch) -> None:
    snap = create_snapshot(store)
    before = _fingerprint(store)
    monkeypatch.setenv("CURATE_LABEL_STUDIO_TOKEN", "not-the-token")
    res = runner.invoke(app, ["--db", str(store.path), "review", "push", str(snap.snapshot_id),
                              "--url", labelstudio.url])
    assert res.exit_code == 4 and "refused the API token" in res.output, res.output
    monkeypatch.setenv("CURATE_LABEL_STUDIO_TOKEN", labelstudio.token)
    from tests.conftest import _free_port

    dead = f"http://127.0.0.1:{_free_port()}"
    res = runner.invoke(app, ["--db", str(store.path), "review", "push", str(snap.snapshot_id), "--url", dead])
    assert res.exit_code == 4 and "cannot reach Label Studio" in res.output and dead in res.output, res.output
    assert _fingerprint(store) == before


def test_cli_push_status_pull(store, runner, labelstudio, monkeypatch) -> None:
    monkeypatch.setenv("CURATE_LABEL_STUDIO_TOKEN", labelstudio.token)
    monkeypatch.setenv("CURATE_LABEL_STUDIO_URL", labelstudio.url)
    # a store of its own name space: prefix-free keys collide with other tests' "snapshot 1", so make snapshot 2
    create_snapshot(store)
    snap = create_snapshot(store, note="second")
    base = ["--db", str(store.path), "review"]
    res = runner.invoke(app, [*base, "push", str(snap.snapshot_id), "--reviews", "50", "--seed", "3"])
    assert res.exit_code == 0, res.output
    pushed = json.loads(res.stdout[res.stdout.index("{"):])
    assert pushed["created"] == pushed["items"] > 50
    res = runner.invoke(app, [*base, "pull", str(snap.snapshot_id)])
    assert res.exit_code == 0, res.output
    pulled = json.loads(res.stdout[res.stdout.index("{"):])
    assert pulled["pulled"] == 0 and pulled["certification"]["verdict"] == "undecided"
    res = runner.invoke(app, [*base, "status", str(snap.snapshot_id)])
    assert res.exit_code == 0 and '"rounds": 1' in res.stdout


def test_serve_without_credentials_says_which_are_missing(runner, tmp_path, monkeypatch) -> None:
    for k in ("LABEL_STUDIO_USERNAME", "LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_USER_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    res = runner.invoke(app, ["--db", str(tmp_path / "c.duckdb"), "review", "serve", "labelstudio", "--port", "1"])
    assert res.exit_code == 2 and "LABEL_STUDIO_USER_TOKEN" in res.output


def test_the_filters_view_is_a_prediction_that_never_prefills_the_verdict() -> None:
    from curation.review.backends.labelstudio_config import task_of
    from curation.review.items import ReviewItem

    task = task_of(ReviewItem(item_id="1:a:0", kind="sample", sample_id="a", version=0, instruction="Q?", output="A.",
                              source="x.jsonl", lang="en", quality_score=0.42, flags=["quality: too short"]))
    (pred,) = task["predictions"]
    assert pred["score"] == 0.42 and {r["from_name"] for r in pred["result"]} == {"filter_notes"}
    assert "reject (flagged)" in pred["result"][0]["value"]["text"][0]
    assert task["data"]["messages"] == [] and task["data"]["reasoning"] == "(none)"  # every $variable present


def test_a_taken_port_is_refused_not_silently_moved(monkeypatch, tmp_path) -> None:
    import socket

    from curation.errors import UsageError
    from curation.review.labelstudio_server import start

    for k, v in {"LABEL_STUDIO_USERNAME": "a@example.com", "LABEL_STUDIO_PASSWORD": "pw-12345678",
                 "LABEL_STUDIO_USER_TOKEN": "token-12345"}.items():
        monkeypatch.setenv(k, v)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(UsageError, match="in use"):
            start(tmp_path, port=s.getsockname()[1])
