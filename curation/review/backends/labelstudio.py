"""The Label Studio backend, through ``label-studio-sdk`` (2.x).

* One project per snapshot (``llm-curate <store> snapshot N``) or rating round (``llm-curate <store>
  ratings NAME``), ``<store>`` the first 8 characters of the store's id, so that stores sharing one server
  never share a project. The description carries the full store id and the review's name; a project is
  found by its exact title and those two description lines, and made with our labeling config when
  missing. Overlap (reviewers per item) is the project's ``maximum_annotations`` with every task in the
  overlap cohort.
* Push: Label Studio has no upsert, so the item ids already in the project are listed first (ids and
  data only, 1,000 a page) and only the missing items are imported, in batches, with our filters'
  suggestion as a prediction.
* Pull: one export of the whole project (Label Studio's export snapshot, JSON), never a request per task;
  annotations become our verdicts, the reviewer named by the Label Studio user's e-mail.

Connection: ``url`` (env ``CURATE_LABEL_STUDIO_URL``, default ``http://127.0.0.1:8080``) and a token
(env ``CURATE_LABEL_STUDIO_TOKEN``, else ``LABEL_STUDIO_API_KEY``, else ``LABEL_STUDIO_USER_TOKEN``): a
legacy token (``Authorization: Token``) or a personal access token, which the SDK exchanges itself.
"""

from __future__ import annotations

import hashlib
import json
import os

from curation.errors import ExternalServiceError, UsageError
from curation.review.backends import ProjectKey, PushResult, ReviewBackend, require_store
from curation.review.backends.labelstudio_config import (
    annotation_of,
    rating_config,
    sample_config,
    task_of,
    verdict_of,
)
from curation.review.items import ReviewItem

DEFAULT_URL = "http://127.0.0.1:8080"
TOKEN_ENV = ("CURATE_LABEL_STUDIO_TOKEN", "LABEL_STUDIO_API_KEY", "LABEL_STUDIO_USER_TOKEN")
IMPORT_BATCH = 2_000
PAGE = 1_000
TITLE_MAX = 50  # Label Studio's PROJECT_TITLE_MAX_LEN
STORE_LINE = "llm-curate store: "
REVIEW_LINE = "llm-curate review: "


def _token_from_env() -> str | None:
    for name in TOKEN_ENV:
        if os.environ.get(name):
            return os.environ[name]
    return None


def project_title(key: ProjectKey) -> str:
    """``llm-curate <store id[:8]> <review>``, within Label Studio's 50 characters (a long name is cut and
    ends with a hash of the whole name)."""
    key = require_store(key)
    head = f"llm-curate {key.store_id[:8]} "
    if len(head) + len(key.name) <= TITLE_MAX:
        return head + key.name
    tail = "~" + hashlib.sha1(key.name.encode()).hexdigest()[:6]
    return head + key.name[:TITLE_MAX - len(head) - len(tail)] + tail


def project_marks(key: ProjectKey) -> tuple[str, str]:
    """The description lines that say whose project it is: the full store id and the review's name."""
    key = require_store(key)
    return STORE_LINE + str(key.store_id), REVIEW_LINE + key.name


def is_project_of(description: str | None, key: ProjectKey) -> bool:
    """Whether a project's description names the store and review of ``key`` (whole lines, exactly)."""
    lines = {line.strip() for line in (description or "").splitlines()}
    return all(m in lines for m in project_marks(key))


class LabelStudioBackend(ReviewBackend):
    """Push review items to Label Studio and pull the annotations back."""

    name = "labelstudio"

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 120.0) -> None:
        self.url = (url or os.environ.get("CURATE_LABEL_STUDIO_URL") or DEFAULT_URL).rstrip("/")
        self.token = token or _token_from_env()
        self.timeout = timeout
        if not self.token:
            raise UsageError("no Label Studio API token: set CURATE_LABEL_STUDIO_TOKEN (or LABEL_STUDIO_API_KEY) to "
                             "the token of a Label Studio user (Account & Settings)")
        self._client = None
        self._projects: dict[str, int] = {}

    # ------------------------------------------------------------------ connection and errors

    @property
    def client(self):  # noqa: ANN201
        if self._client is None:
            try:
                from label_studio_sdk import LabelStudio
            except ImportError as e:
                raise UsageError("the Label Studio backend needs label-studio-sdk: pip install 'llm-curate[review]'") from e
            self._client = LabelStudio(base_url=self.url, api_key=self.token, timeout=self.timeout)
        return self._client

    def _call(self, what: str, fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        """Run one SDK call; a refused connection or an HTTP error becomes a clear ExternalServiceError."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        try:
            return fn(*args, **kwargs)
        except ApiError as e:
            if e.status_code in (401, 403):
                raise ExternalServiceError(
                    f"Label Studio at {self.url} refused the API token ({e.status_code}) while trying to {what}: "
                    "check CURATE_LABEL_STUDIO_TOKEN (legacy tokens must be enabled in the organization's settings)") from e
            raise ExternalServiceError(f"Label Studio at {self.url} failed to {what}: HTTP {e.status_code}: "
                                       f"{str(e.body)[:500]}") from e
        except httpx.HTTPError as e:
            raise ExternalServiceError(f"cannot reach Label Studio at {self.url} to {what}: {e.__class__.__name__}: {e} "
                                       "(is it running? `curate review serve labelstudio` starts one)") from e

    def check(self) -> None:
        """Fail with exit code 4 unless the server answers and accepts the token."""
        self._call("check the token", self.client.users.whoami)

    # ------------------------------------------------------------------ projects

    def project_id(self, key: ProjectKey, kind: str, overlap: int = 1, create: bool = True,
                   questions: dict | None = None) -> int | None:
        """The id of the project for ``key`` (made with our config when missing and ``create``).

        Found by its exact title and its description's store and review lines; a project with our title
        whose description names another store (or was edited) is refused, never shared.
        """
        key = require_store(key)
        if key in self._projects:
            return self._projects[key]
        title = project_title(key)
        same_title = [p for p in self._call("list projects", self.client.projects.list, title=title, page_size=100)
                      if p.title == title]
        found = [p for p in same_title if is_project_of(p.description, key)]
        if found:
            pid = int(min(p.id for p in found))
        elif same_title:
            ids = ", ".join(str(p.id) for p in same_title)
            raise UsageError(
                f"Label Studio at {self.url} has a project titled {title!r} (id {ids}) whose description does not name "
                f"this store: it belongs to another store, or its description was edited. Its description must "
                f"keep the lines {project_marks(key)[0]!r} and {project_marks(key)[1]!r}; rename the other project "
                "or restore those lines")
        elif legacy := [p for p in self._call("list projects", self.client.projects.list, title=f"llm-curate {key.name}",
                                              page_size=100) if p.title == f"llm-curate {key.name}"]:
            # made before titles named their store: whose it is cannot be told, so a person decides, once
            marks = project_marks(key)
            raise UsageError(
                f"Label Studio at {self.url} has a project titled 'llm-curate {key.name}' (id "
                f"{', '.join(str(p.id) for p in legacy)}) from before project titles named their store, and it may "
                f"hold this store's reviews. If it is this store's, rename it to {title!r} and add the lines "
                f"{marks[0]!r} and {marks[1]!r} to its description (Project settings); if it is another store's, "
                "its owner does the same with that store's id. Then run this again")
        elif not create:
            return None
        else:
            config = sample_config() if kind == "sample" else rating_config(questions)
            what = ("accept or reject each sample; a correction or error categories help. Suggestions come from "
                    "the curation filters." if kind == "sample" else "rate each answer.")
            description = f"Review of llm-curate {key.name}: {what}\n\n" + "\n".join(project_marks(key))
            project = self._call(
                "create a project", self.client.projects.create, title=title, label_config=config,
                description=description, maximum_annotations=overlap, overlap_cohort_percentage=100,
                show_collab_predictions=True, show_skip_button=True, show_instruction=False)
            pid = int(project.id)
        self._projects[key] = pid
        return pid

    def project_url(self, pid: int) -> str:
        return f"{self.url}/projects/{pid}/data"

    def item_ids(self, pid: int) -> dict[str, int]:
        """item_id -> task id of every task already in the project (ids and data only, paginated)."""
        out: dict[str, int] = {}
        page = 1
        while True:
            # pages one by one: the SDK's page iterator asks for the page after the last one, a 404 here
            try:
                got = self._call("list tasks", self.client.tasks.list, project=pid, fields="task_only",
                                 include="id,data", page=page, page_size=PAGE).items or []
            except ExternalServiceError as e:
                if page > 1 and "HTTP 404" in str(e):  # past the last page, when the last one was full
                    break
                raise
            for t in got:
                item = (t.data or {}).get("item_id")
                if item is not None:
                    out[str(item)] = int(t.id)
            if len(got) < PAGE:
                break
            page += 1
        return out

    # ------------------------------------------------------------------ push and pull

    def push(self, key: ProjectKey, kind: str, items: list[ReviewItem], overlap: int = 1, progress=None) -> PushResult:  # noqa: ANN001
        # a rating round's questions come with its items (the project is configured with them when made)
        questions = next((it.payload.get("questions") for it in items if it.payload and it.payload.get("questions")), None)
        pid = self.project_id(key, kind, overlap, questions=questions)
        there = self.item_ids(pid)
        todo = [it for it in items if it.item_id not in there]
        created = 0
        for i in range(0, len(todo), IMPORT_BATCH):
            batch = [task_of(it) for it in todo[i:i + IMPORT_BATCH]]
            # no retries: the SDK would re-send an import after a 5xx, and Label Studio would create the tasks twice
            res = self._call("import tasks", self.client.projects.import_tasks, pid, request=batch,
                             request_options={"max_retries": 0})
            created += int(getattr(res, "task_count", None) or len(batch))
            if progress:
                progress(f"push to Label Studio project {pid}", i + len(batch), len(todo), "items")
        return PushResult(created=created, existing=len(items) - len(todo), project=f"{pid}", url=self.project_url(pid))

    def export(self, pid: int) -> list[dict]:
        """Every annotated task of the project, with its annotations, in one export."""
        # Community edition's export is synchronous: one streamed JSON document of the annotated tasks
        body = self._call("export annotations", lambda: b"".join(self.client.projects.exports.download_sync(
            pid, export_type="JSON", download_all_tasks=False)))
        return json.loads(body)

    def reviewers(self) -> dict[int, str]:
        """Label Studio user id -> e-mail (or username)."""
        users = self._call("list users", self.client.users.list)
        return {int(u.id): (u.email or u.username or f"user{u.id}") for u in users}

    def user_id(self, email: str, name: str) -> int:
        """The id of the Label Studio account ``email`` (made when missing, with ``name`` as its first name).

        For accounts that annotate through the API, such as the scripted reviewer: Label Studio Community
        ignores a password given through its API, so such an account cannot log in to the web UI."""
        for u in self._call("list users", self.client.users.list):
            if (u.email or "").lower() == email.lower():
                return int(u.id)
        user = self._call("create a user", self.client.users.create, username=email.split("@")[0], email=email,
                          first_name=name)
        return int(user.id)

    def annotate(self, key: ProjectKey, kind: str, email: str, name: str, judgements: dict, progress=None) -> int:  # noqa: ANN001
        """Submit, as the account ``email``, a verdict on each item of ``judgements`` (item id -> an object with
        ``verdict`` and ``categories``) that this account has not answered yet; returns how many it submitted."""
        from concurrent.futures import ThreadPoolExecutor

        pid = self.project_id(key, kind, create=False)
        if pid is None:
            raise UsageError(f"Label Studio at {self.url} has no project for {key}: push it first")
        uid = self.user_id(email, name)
        tasks = self.item_ids(pid)
        answered = set()
        for task in self.export(pid):
            for ann in task.get("annotations") or []:
                who = ann.get("completed_by")
                if (who.get("id") if isinstance(who, dict) else who) == uid:
                    answered.add((task.get("data") or {}).get("item_id"))
        todo = [(tasks[item], annotation_of(j.verdict, j.categories)) for item, j in judgements.items()
                if item in tasks and item not in answered]
        missing = [item for item in judgements if item not in tasks]
        if missing:
            raise UsageError(f"{len(missing)} items are not in Label Studio project {pid} (first: {missing[0]}): push them first")
        done = 0

        def one(job: tuple[int, list[dict]]) -> None:
            self._call("submit an annotation", self.client.annotations.create, id=job[0], result=job[1], completed_by=uid)

        with ThreadPoolExecutor(4) as pool:
            for _ in pool.map(one, todo):
                done += 1
                if progress:
                    progress(f"{name} answers in Label Studio project {pid}", done, len(todo), "items")
        return done

    def pull(self, key: ProjectKey, kind: str) -> list[dict]:
        pid = self.project_id(key, kind, create=False)
        if pid is None:
            raise UsageError(f"Label Studio at {self.url} has no project for {key}: push it first")
        tasks = self.export(pid)
        names = self.reviewers()
        out = []
        for task in tasks:
            item = (task.get("data") or {}).get("item_id")
            if item is None:
                continue
            for ann in task.get("annotations") or []:
                who = ann.get("completed_by")
                if isinstance(who, dict):
                    reviewer = who.get("email") or who.get("username") or f"user{who.get('id')}"
                else:
                    reviewer = names.get(int(who), f"user{who}") if who is not None else "unknown"
                v = verdict_of(str(item), kind, ann, reviewer)
                if v is not None:
                    out.append(v)
        return out
