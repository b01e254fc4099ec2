"""Reviewer accounts (`curate review users add|list`) that log in to the real review tools and answer there:
Argilla through its login (the token route its UI uses), Label Studio through its login form, each then
submitting a verdict the way its UI does, which `pull` brings back under the reviewer's login."""

from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest

from curation.cli.app import app
from curation.review.backends import snapshot_key
from curation.review.items import ReviewItem

PASSWORD = "a-reviewer-Passw0rd"


def _items(n: int = 2) -> list[ReviewItem]:
    return [ReviewItem(item_id=f"1:s{i}:1", kind="sample", snapshot_id=1, sample_id=f"s{i}", version=1, stratum="clean",
                       instruction=f"What is {i} plus 1?", output=str(i + 1), source="t.jsonl", lang="en") for i in range(n)]


def test_an_argilla_reviewer_logs_in_and_their_verdict_is_pulled(argilla, runner, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from curation.review.backends.argilla import ArgillaBackend

    monkeypatch.setenv("CURATE_ARGILLA_API_KEY", argilla.api_key)
    monkeypatch.setenv("CURATE_REVIEWER_PASSWORD", PASSWORD)
    db = ["--db", str(tmp_path / "s.duckdb")]
    email = f"ana-{uuid.uuid4().hex[:6]}@example.com"
    res = runner.invoke(app, [*db, "review", "users", "add", email, "--role", "annotator", "--backend", "argilla",
                              "--url", argilla.url])
    assert res.exit_code == 0, res.output
    again = runner.invoke(app, [*db, "review", "users", "add", email, "--backend", "argilla", "--url", argilla.url])
    assert again.exit_code == 2 and "already has a user" in again.output
    listed = runner.invoke(app, [*db, "review", "users", "list", "--backend", "argilla", "--url", argilla.url, "--json"])
    assert {"user": email, "role": "annotator", "name": email.split("@")[0]} in json.loads(listed.stdout)

    backend = ArgillaBackend(url=argilla.url, api_key=argilla.api_key)
    key = snapshot_key(1, store_id=uuid.uuid4().hex)
    backend.push(key, "sample", _items())
    # the login the web UI makes, then a submitted response as the UI sends it
    login = httpx.post(f"{argilla.url}/api/v1/token", data={"username": email, "password": PASSWORD})
    assert login.status_code == 201, login.text
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    ds = backend.dataset(key, "sample", create=False)
    record = next(r for r in ds.records() if r.id == "1:s0:1")
    sent = httpx.post(f"{argilla.url}/api/v1/records/{record._server_id}/responses", headers=auth,
                      json={"values": {"verdict": {"value": "reject"}, "categories": {"value": ["incomplete"]}},
                            "status": "submitted"})
    assert sent.status_code == 201, sent.text
    assert httpx.post(f"{argilla.url}/api/v1/token", data={"username": email, "password": "wrong-password"}).status_code == 401
    pulled = backend.pull(key, "sample")
    assert [(v["item_id"], v["reviewer"], v["verdict"], v["categories"]) for v in pulled] == \
        [("1:s0:1", email, "reject", ["incomplete"])]


def test_a_label_studio_reviewer_logs_in_through_the_form_and_their_annotation_is_pulled(labelstudio, runner, tmp_path,
                                                                                         monkeypatch) -> None:  # noqa: ANN001
    from curation.review.backends.labelstudio import LabelStudioBackend

    monkeypatch.setenv("CURATE_REVIEWER_PASSWORD", PASSWORD)
    email = f"bo-{uuid.uuid4().hex[:6]}@example.com"
    res = runner.invoke(app, ["--db", str(tmp_path / "s.duckdb"), "review", "users", "add", email, "--backend",
                              "labelstudio", "--data-dir", str(labelstudio.data_dir)])
    assert res.exit_code == 0, res.output

    backend = LabelStudioBackend(url=labelstudio.url, token=labelstudio.token)
    key = snapshot_key(1, store_id=uuid.uuid4().hex)
    backend.push(key, "sample", _items())
    pid = backend.project_id(key, "sample")
    task = backend.item_ids(pid)["1:s1:1"]
    with httpx.Client(base_url=labelstudio.url, follow_redirects=False, timeout=60) as web:
        form = web.get("/user/login/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        bad = web.post("/user/login/", data={"csrfmiddlewaretoken": csrf, "email": email, "password": "wrong-password"},
                       headers={"Referer": f"{labelstudio.url}/user/login/"})
        assert bad.status_code == 200 and web.get("/api/current-user/whoami").status_code in (401, 403)  # the form again
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', web.get("/user/login/").text).group(1)
        ok = web.post("/user/login/", data={"csrfmiddlewaretoken": csrf, "email": email, "password": PASSWORD},
                      headers={"Referer": f"{labelstudio.url}/user/login/"})
        assert ok.status_code == 302, (res.output, re.findall(r'class="[^"]*error[^"]*"[^>]*>([^<]+)', ok.text))
        assert web.get("/api/current-user/whoami").json()["email"] == email
        result = [{"from_name": "verdict", "to_name": "output", "type": "choices", "value": {"choices": ["accept"]}}]
        sent = web.post(f"/api/tasks/{task}/annotations/", json={"result": result},
                        headers={"X-CSRFToken": web.cookies["csrftoken"], "Referer": labelstudio.url})
        assert sent.status_code == 201, sent.text[:500]
    pulled = backend.pull(key, "sample")
    assert [(v["item_id"], v["reviewer"], v["verdict"]) for v in pulled] == [("1:s1:1", email, "accept")]


def test_weak_passwords_and_bad_logins_are_refused_and_no_password_option_exists(runner, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    db = ["--db", str(tmp_path / "s.duckdb")]
    monkeypatch.setenv("CURATE_REVIEWER_PASSWORD", "1234")
    res = runner.invoke(app, [*db, "review", "users", "add", "x@example.com", "--backend", "argilla"])
    assert res.exit_code == 2 and "at least 8 characters" in res.output
    monkeypatch.setenv("CURATE_REVIEWER_PASSWORD", PASSWORD)
    res = runner.invoke(app, [*db, "review", "users", "add", "not-an-email", "--backend", "labelstudio",
                              "--data-dir", str(tmp_path)])
    assert res.exit_code == 2 and "not an e-mail" in res.output
    helped = runner.invoke(app, ["review", "users", "add", "--help"])
    assert "--password" not in helped.output and "CURATE_REVIEWER_PASSWORD" in helped.output


@pytest.mark.parametrize("value", ["argilla.apikey", "short", "aaaaaaaaaaaaaaaaaaaa"])
def test_argilla_refuses_placeholder_owner_secrets(value, monkeypatch, tmp_path) -> None:  # noqa: ANN001
    from curation.errors import UsageError
    from curation.review.argilla_server import credentials

    monkeypatch.setenv("ARGILLA_USERNAME", "lead")
    monkeypatch.setenv("ARGILLA_PASSWORD", PASSWORD)
    monkeypatch.setenv("ARGILLA_API_KEY", value)
    with pytest.raises(UsageError, match="placeholder or too weak"):
        credentials()
    monkeypatch.delenv("ARGILLA_API_KEY")
    with pytest.raises(UsageError, match="ARGILLA_API_KEY"):
        credentials()
