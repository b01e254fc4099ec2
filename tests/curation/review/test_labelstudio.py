"""The review loop against a real Label Studio (started once per test session on 127.0.0.1).

Simulated reviewers are Label Studio users who annotate through its API; their verdicts come from the
bundled sample's planted truth (with 2% noise where a test says so). Every test's store is a copy of one curated store given an
id of its own, so the tests share the server as different stores would: each in projects of its own.
"""

from __future__ import annotations

import hashlib
import json
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from curation.cli.app import app
from curation.errors import UsageError
from curation.review.apply import apply_reviews
from curation.review.backends import ProjectKey, round_key, snapshot_key
from curation.review.backends.labelstudio import LabelStudioBackend, project_title
from curation.review.loop import pull_review, push_review
from curation.review.status import error_summary
from curation.review.verdicts import add_answer_items, record_verdicts
from curation.snapshots import approve, create_snapshot, export_snapshot, get_snapshot
from tests.curation.review.conftest import eval_round
from tests.curation.review.test_loop import _bad_samples


@pytest.fixture
def store(store):  # noqa: ANN001, ANN201 (the review conftest's copy of one curated store)
    """The copy, with a store id of its own (copies of a store file share the original's id)."""
    _new_store_id(store)
    return store


def _new_store_id(store) -> str:  # noqa: ANN001
    with store.writer() as con:
        con.execute("UPDATE store_info SET store_id = CAST(uuid() AS VARCHAR)")
    return store.store_id


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


def _review(backend: LabelStudioBackend, key: ProjectKey, bad: set[str], users: list[int], noise: float, seed: int,
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
    assert pushed["created"] == pushed["items"] == plan["items"] >= plan["reviews"] > 0  # the plan: test_loop, test_stats
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
    key = snapshot_key(snap.snapshot_id, store_id=store.store_id)
    assert _review(backend, key, bad, users, noise=0.0, seed=1) == 3 * pushed["items"]
    pulled = pull_review(store, snap.snapshot_id, backend)
    assert pulled["pulled"] == pulled["new"] == 3 * pushed["items"]
    assert pull_review(store, snap.snapshot_id, backend)["new"] == 0  # a re-pull stores nothing twice
    cert = pulled["certification"]
    assert cert["counts"]["reviewed"] == pushed["items"], cert
    assert pulled["agreement"]["items_with_overlap"] == pushed["items"]
    assert pulled["agreement"]["percent_agreement"] > 0.9 and pulled["agreement"]["fleiss_kappa"] > 0.5
    with store.reader() as con:
        who = {r[0] for r in con.execute("SELECT DISTINCT reviewer FROM reviews WHERE status = 'submitted'").fetchall()}
    assert who == {f"reviewer{i}@example.com" for i in range(3)}
    errors = error_summary(store, snap.snapshot_id)
    assert any(r["by"] == "source" and r["rejected"] and r["categories"].get("incomplete") for r in errors)

    # what the parent's figure is belongs to test_loop (the same draw and verdicts there, without Label Studio):
    # the child, with the rejections applied, certifies through its lineage and is approved and exported
    assert cert["counts"]["rejected"] > 0 and cert["verdict"] != "certified", cert
    child = apply_reviews(store, snap.snapshot_id)
    done = approve(store, child.snapshot_id)
    assert done.state == "approved" and not done.forced and done.certification["verdict"] == "certified"
    out = export_snapshot(store, child.snapshot_id, tmp_path / "export", seed=3)
    manifest = json.loads((out.path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["certification"]["verdict"] == "certified" and manifest["store_id"] == store.store_id
    assert manifest["samples"] == child.n_samples < snap.n_samples


def test_a_snapshot_with_four_percent_errors_does_not_certify_through_label_studio(store, backend) -> None:
    snap = create_snapshot(store)
    with store.reader() as con:
        ids = [r[0] for r in con.execute("SELECT sample_id FROM snapshot_samples WHERE snapshot_id = ? ORDER BY sample_id",
                                         [snap.snapshot_id]).fetchall()]
    bad = set(random.Random(3).sample(ids, int(0.04 * len(ids))))
    pushed = push_review(store, snap.snapshot_id, backend, seed=11)
    _review(backend, snapshot_key(snap.snapshot_id, store_id=store.store_id), bad, _users(backend, 1), noise=0.02, seed=4)
    pulled = pull_review(store, snap.snapshot_id, backend)
    assert pulled["new"] == pushed["items"]
    assert pulled["certification"]["verdict"] != "certified", pulled["certification"]


def test_two_stores_pushing_snapshot_1_to_one_server_get_projects_of_their_own(store, curated, tmp_path,
                                                                              backend) -> None:
    import shutil

    from curation.store import Store

    other = Store(tmp_path / "other" / "curate.duckdb")
    other.path.parent.mkdir()
    shutil.copy(curated, other.path)
    _new_store_id(other)
    assert other.store_id != store.store_id
    stores = {"a": store, "b": other}
    pushed = {}
    for name, s in stores.items():
        assert create_snapshot(s).snapshot_id == 1  # snapshot ids restart at 1 in every store
        pushed[name] = push_review(s, 1, backend, reviews=40, seed=5)
    assert pushed["a"]["project"] != pushed["b"]["project"]
    keys = {name: snapshot_key(1, store_id=s.store_id) for name, s in stores.items()}
    for name, s in stores.items():
        project = backend.client.projects.get(int(pushed[name]["project"]))
        assert project.title == f"llm-curate {s.store_id[:8]} snapshot 1" == project_title(keys[name])
        assert f"llm-curate store: {s.store_id}" in project.description.splitlines()
        assert backend.project_id(keys[name], "sample") == int(pushed[name]["project"])
        assert len(backend.item_ids(int(pushed[name]["project"]))) == pushed[name]["items"]
    # store a's reviewer accepts everything, store b's rejects everything, each in its own project
    users = _users(backend, 2)
    everything = {i.split(":")[1] for i in backend.item_ids(int(pushed["b"]["project"]))}
    _review(backend, keys["a"], set(), users[:1], noise=0.0, seed=1)
    _review(backend, keys["b"], everything, users[1:], noise=0.0, seed=1)
    for name, s, verdict, reviewer in (("a", store, "accept", "reviewer0"), ("b", other, "reject", "reviewer1")):
        pulled = pull_review(s, 1, backend)
        assert pulled["pulled"] == pulled["new"] == pushed[name]["items"]
        with s.reader() as con:
            got = set(con.execute("SELECT verdict, reviewer FROM reviews WHERE status = 'submitted'").fetchall())
        assert got == {(verdict, f"{reviewer}@example.com")}
    # a key that names no store is refused before anything is asked of the server
    for bad_key in ("snapshot 1", snapshot_key(1), round_key("r")):
        with pytest.raises(UsageError, match="store"):
            backend.push(bad_key, "sample", [])
        with pytest.raises(UsageError, match="store"):
            backend.pull(bad_key, "sample")


def test_a_project_with_our_title_but_another_store_or_an_old_title_is_refused_not_shared(store, backend) -> None:
    sid = store.store_id
    key = round_key("refusals", store_id=sid)
    # another store whose id starts alike (the title has 8 characters of it): same title, another description
    backend.client.projects.create(title=project_title(key), description="llm-curate store: " + sid[:8] + "-else\n"
                                   "llm-curate review: ratings refusals")
    with pytest.raises(UsageError, match="does not name this store"):
        backend.push(key, "answer", [])
    # a project made before titles named their store: whose it is cannot be told, so it is refused with the fix
    old = round_key("legacy", store_id=sid)
    legacy = backend.client.projects.create(title="llm-curate ratings legacy", description="made by an old version")
    with pytest.raises(UsageError, match="from before project titles named their store") as e:
        backend.pull(old, "answer")
    assert project_title(old) in str(e.value) and f"llm-curate store: {sid}" in str(e.value)
    # the fix it names works: renamed and marked, the project is this store's
    backend.client.projects.update(legacy.id, title=project_title(old),
                                   description="old\nllm-curate store: " + sid + "\nllm-curate review: ratings legacy")
    assert backend.project_id(old, "answer", create=False) == int(legacy.id)
    assert backend.pull(old, "answer") == []


def test_a_long_round_name_keeps_the_title_within_label_studio_s_50_characters() -> None:
    sid = "0123456789abcdef-store"
    short = project_title(round_key("eval-a", store_id=sid))
    assert short == "llm-curate 01234567 ratings eval-a"
    long_a = project_title(round_key("x" * 60 + "a", store_id=sid))
    long_b = project_title(round_key("x" * 60 + "b", store_id=sid))
    assert len(long_a) == len(long_b) == 50 and long_a != long_b and long_a.startswith("llm-curate 01234567 ratings xx")


def test_rating_items_round_trip(store, backend) -> None:
    answers = [{"item_id": f"eval-a:{i}", "prompt": f"把这句话翻译成英文 {i}", "answer": f"Translate this {i}",
                "model": "lora-a"} for i in range(6)]
    add_answer_items(store, "eval-a", answers)
    from curation.review.items import answer_items

    key = round_key("eval-a", store_id=store.store_id)
    res = backend.push(key, "answer", answer_items(store, "eval-a"))
    assert res.created == 6 and backend.push(key, "answer", answer_items(store, "eval-a")).created == 0
    pid = backend.project_id(key, "answer")
    uid = _users(backend, 1)[0]
    for _item, task in sorted(backend.item_ids(pid).items())[:4]:
        backend.client.annotations.create(id=task, completed_by=uid, result=[
            {"from_name": "overall", "to_name": "answer", "type": "rating", "value": {"rating": 4}},
            {"from_name": "correct", "to_name": "answer", "type": "choices", "value": {"choices": ["partly"]}}])
    got = backend.pull(key, "answer")
    assert len(got) == 4 and all(v["ratings"] == {"overall": 4, "correct": "partly"} for v in got)
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
    snap = create_snapshot(store)  # snapshot 1, as in other tests' stores: the store id keeps the projects apart
    base = ["--db", str(store.path), "review"]
    res = runner.invoke(app, [*base, "push", str(snap.snapshot_id), "--reviews", "50", "--seed", "3"])
    assert res.exit_code == 0, res.output
    pushed = json.loads(res.stdout[res.stdout.index("{"):])
    assert pushed["created"] == pushed["items"] > 50
    res = runner.invoke(app, [*base, "pull", str(snap.snapshot_id), "--json"])
    assert res.exit_code == 0, res.output
    pulled = json.loads(res.stdout[res.stdout.index("{"):])
    assert pulled["pulled"] == 0 and pulled["certification"]["verdict"] == "undecided"
    res = runner.invoke(app, [*base, "status", str(snap.snapshot_id), "--json"])
    assert res.exit_code == 0, res.output
    status = json.loads(res.stdout[res.stdout.index("{"):])
    assert status["plan"]["rounds"] == 1 and status["items_pending"] == pushed["items"]


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


def test_the_evaluation_s_human_round(store, backend, tmp_path, runner, labelstudio, monkeypatch) -> None:  # noqa: ANN001
    """curate eval's generations pushed as rating items (factual, logic, style), rated in Label Studio, pulled
    and summarised per model beside the automatic scores (curate eval-report)."""
    from training.evaluate import push_human_round

    results, gens = eval_round(tmp_path, 3)
    pushed = push_human_round(store, "round-x", gens, url=labelstudio.url, results=results)
    # 6 answers to rate, and 3 prompts answered by both models to compare
    assert pushed.ratings.created == 6 and pushed.preference.created == 3
    assert push_human_round(store, "round-x", gens, url=labelstudio.url).created == 0
    key = round_key("round-x", store_id=store.store_id)
    pid = backend.project_id(key, "answer")
    config = backend.client.projects.get(id=pid).label_config
    assert all(f'name="{q}"' in config for q in ("factual", "logic", "style"))
    uid = _users(backend, 1)[0]
    for item, task in backend.item_ids(pid).items():
        good = ":lora-v1" in item
        backend.client.annotations.create(id=task, completed_by=uid, result=[
            {"from_name": q, "to_name": "answer", "type": "rating", "value": {"rating": 5 if good else 2}}
            for q in ("factual", "logic", "style")])
    monkeypatch.setenv("CURATE_LABEL_STUDIO_TOKEN", labelstudio.token)
    res = runner.invoke(app, ["--db", str(store.path), "eval-report", "round-x", "--url", labelstudio.url])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout[res.stdout.index("{"):])
    assert rep["pulled"] == 6, rep
    assert rep["models"]["lora-v1"]["ratings"]["factual"] == {"mean": 5.0, "n": 3}, rep
    assert rep["models"]["base"]["ratings"]["style"]["mean"] == 2.0 and rep["models"]["base"]["rated"] == 3
    assert rep["models"]["lora-v1"]["automatic"]["bleu4"] == 9.0
    assert rep["preference"] == {}  # not rated yet

    # the preference project: both answers, models hidden, in an order drawn per item
    ppid = backend.project_id(round_key("round-x preference", store_id=store.store_id), "answer")
    assert 'name="preferred"' in backend.client.projects.get(id=ppid).label_config
    tasks = backend.item_ids(ppid)
    orders = []
    for item, task in tasks.items():
        data = backend.client.tasks.get(id=task).data
        first = data["answer"].split("----------")[0]
        assert "lora-v1" not in data["model"] and "base" not in data["model"]
        lora_first = "lora-v1 answer" in first
        orders.append(lora_first)
        # the reviewer prefers the adapter's answer on two prompts and finds the third a tie
        choice = "Equally good" if item.endswith(":p2:base|lora-v1") else ("Answer A" if lora_first else "Answer B")
        backend.client.annotations.create(id=task, completed_by=uid, result=[
            {"from_name": "preferred", "to_name": "answer", "type": "choices", "value": {"choices": [choice]}}])
    assert len(set(orders)) == 2, "the answers' order is drawn per item"
    res = runner.invoke(app, ["--db", str(store.path), "eval-report", "round-x", "--url", labelstudio.url])
    rep = json.loads(res.stdout[res.stdout.index("{"):])
    pref = rep["preference"]["base vs lora-v1"]
    assert pref["lora-v1"] == 2 and pref["base"] == 0 and pref["equally good"] == 1 and pref["n"] == 3, pref
    assert pref["sign_test_p"] == pytest.approx(0.5)  # 2 of 2 decided: too few to tell
