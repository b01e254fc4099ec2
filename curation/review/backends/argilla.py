"""Argilla (SDK v2) as a review backend: a dataset per snapshot review (and per rating round) in a workspace.

A dataset is named ``llm-curate-<store id, 8 characters>-<review>`` ("llm-curate-1a2b3c4d-snapshot-3") and its
guidelines carry the store's whole id and the review, so that two stores sharing one Argilla never share a
dataset; a dataset with our name whose guidelines name another store is refused.

Sample items: the instruction, the input, the dialogue (a chat field), the answer and the reasoning trace (a
field of its own, apart from the answer); questions: the verdict (accept / reject, required), error categories
(multi-label), a corrected answer (text); metadata: source, language, stratum, quality score, the number of
flags and the near-duplicate cluster's size (1: in none), so that reviewers filter on them; our filters' view as a suggestion on the categories with the quality
score as its score, never on the verdict (a pre-filled verdict would let a reviewer submit without deciding);
the text's embedding as the vector ``embedding`` when the store holds one (a ``semantic_dedup`` step cached it),
so that reviewers find similar samples (its field's title names the model).
Task distribution: ``min_submitted`` is the plan's overlap. Answer items (rating rounds): the prompt, the
answer and the model (metadata ``answered_by``, to filter on); a rating question (1-5) or a label question per
rating question; a pair to compare names no model.

Push upserts by item id and always sends the whole record (Argilla replaces a record's metadata with what is
sent), in batches; items already there are not sent again. Pull reads every record with its responses: a
submitted response becomes a verdict dict exactly as Label Studio's (reviewer = the Argilla username); draft and
discarded responses are counted (``last_pull``), never stored as verdicts.
"""

from __future__ import annotations

import os
import re

from curation.errors import ExternalServiceError, UsageError
from curation.review.backends import ProjectKey, PushResult, ReviewBackend, require_store
from curation.review.items import CATEGORIES, RATING_QUESTIONS, VERDICTS, ReviewItem

BATCH = 200
DEFAULT_WORKSPACE = "curate"
VECTOR = "embedding"  # the vector field: the sample's embedding, for "find similar" in Argilla's UI
VECTOR_TITLE = "Text embedding ("  # its title: this, the embedding model, ")"


def item_vector(items: list[ReviewItem]) -> tuple[str, int] | None:
    """(model, dimensions) of the items' embeddings (the most common pair), None when no item has one."""
    from collections import Counter

    seen = Counter((it.embedding_model, len(it.embedding)) for it in items if it.embedding is not None)
    return seen.most_common(1)[0][0] if seen else None


def dataset_name(key: ProjectKey) -> str:
    """``llm-curate-<store id[:8]>-<review>``: Argilla's dataset names allow letters, digits, - and _."""
    key = require_store(key)
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", key.name).strip("-")
    return f"llm-curate-{key.store_id[:8]}-{slug}"


def guideline_marks(key: ProjectKey) -> tuple[str, str]:
    key = require_store(key)
    return f"llm-curate store: {key.store_id}", f"llm-curate review: {key.name}"


def _flag_categories(item: ReviewItem) -> list[str]:
    """Our filters' view as error categories (a suggestion for reviewers, never the verdict)."""
    out = []
    for flag in item.flags:
        f = flag.lower()
        cat = ("wrong language" if "lang" in f else "duplicate" if "dup" in f else "incomplete"
               if any(w in f for w in ("truncat", "empty", "short", "length")) else "unsafe" if "personal" in f
               else "formatting" if any(w in f for w in ("markup", "char", "think", "format")) else "other")
        if cat not in out:
            out.append(cat)
    return out


class ArgillaBackend(ReviewBackend):
    """Review in Argilla through its SDK v2 (``argilla`` on PyPI)."""

    name = "argilla"

    def __init__(self, url: str | None = None, api_key: str | None = None, workspace: str | None = None,
                 timeout: float = 120.0) -> None:
        self.url = (url or os.environ.get("CURATE_ARGILLA_URL") or "http://127.0.0.1:6900").rstrip("/")
        self.api_key = api_key or os.environ.get("CURATE_ARGILLA_API_KEY") or os.environ.get("ARGILLA_API_KEY")
        if not self.api_key:
            raise UsageError("no Argilla API key: set CURATE_ARGILLA_API_KEY (the owner's ARGILLA_API_KEY of "
                             "`curate review serve argilla`) or pass --token")
        self.workspace = workspace or os.environ.get("CURATE_ARGILLA_WORKSPACE") or DEFAULT_WORKSPACE
        self.timeout = timeout
        self._client = None
        self.last_pull: dict[str, int] = {}

    @property
    def client(self):  # noqa: ANN201
        if self._client is None:
            try:
                import argilla as rg
            except ImportError as e:
                from curation.errors import MissingExtraError

                raise MissingExtraError("review", "the Argilla backend (argilla)") from e
            self._client = self._call("connect", rg.Argilla, api_url=self.url, api_key=self.api_key, timeout=self.timeout)
        return self._client

    def _call(self, what: str, fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        import warnings

        try:
            with warnings.catch_warnings():  # the SDK warns when a lookup finds nothing: None is our answer
                warnings.filterwarnings("ignore", message=r".* not found", category=UserWarning)
                return fn(*args, **kwargs)
        except (UsageError, ExternalServiceError):
            raise
        except Exception as e:  # the SDK raises its own kinds, httpx's and pydantic's
            text = str(e)
            if self.api_key:
                text = text.replace(self.api_key, "***")
            raise ExternalServiceError(f"Argilla at {self.url}: {what} failed: {type(e).__name__}: {text[:500]}") from e

    def check(self) -> None:
        """Fail with exit code 4 unless the server answers and accepts the API key."""
        self._call("check the API key", lambda: self.client.me)

    # ------------------------------------------------------------------ datasets
    def _workspace(self):  # noqa: ANN202
        import argilla as rg

        ws = self._call("find the workspace", lambda: self.client.workspaces(self.workspace))
        if ws is None:
            ws = self._call("create the workspace", rg.Workspace(name=self.workspace, client=self.client).create)
        return ws

    def _settings(self, key: ProjectKey, kind: str, overlap: int, questions: dict | None,  # noqa: ANN202
                  vector: tuple[str, int] | None = None):
        import argilla as rg

        marks = "\n".join(guideline_marks(key))
        if kind == "sample":
            vectors = [] if vector is None else [
                rg.VectorField(name=VECTOR, title=f"{VECTOR_TITLE}{vector[0]})", dimensions=vector[1])]
            return rg.Settings(
                guidelines=f"Accept or reject each sample of llm-curate {key.name}; name the error categories when "
                           f"rejecting, and correct the answer where you can. The categories suggested come from the "
                           f"curation filters; the verdict is yours.\n\n{marks}",
                fields=[rg.TextField(name="instruction", title="Instruction", required=False),
                        rg.TextField(name="input", title="Input", required=False),
                        rg.ChatField(name="dialogue", title="Dialogue turns", required=False),
                        rg.TextField(name="output", title="Answer", required=False),
                        rg.TextField(name="reasoning", title="Reasoning trace (shown apart from the answer)",
                                     required=False)],
                questions=[rg.LabelQuestion(name="verdict", title="Verdict", labels=list(VERDICTS), required=True),
                           rg.MultiLabelQuestion(name="categories", title="Error categories (when rejecting)",
                                                 labels=list(CATEGORIES), required=False),
                           rg.TextQuestion(name="corrected_output", title="Corrected answer (optional)", required=False)],
                metadata=[rg.TermsMetadataProperty(name="source"), rg.TermsMetadataProperty(name="language"),
                          rg.TermsMetadataProperty(name="stratum"), rg.FloatMetadataProperty(name="quality_score"),
                          rg.IntegerMetadataProperty(name="flags"),
                          rg.IntegerMetadataProperty(name="duplicate_cluster_size")],
                vectors=vectors,
                distribution=rg.TaskDistribution(min_submitted=max(1, int(overlap))))
        qs = []
        for name, (question, choices) in (questions or RATING_QUESTIONS).items():
            if choices is None:
                qs.append(rg.RatingQuestion(name=name, title=question, values=[1, 2, 3, 4, 5], required=True))
            else:
                qs.append(rg.LabelQuestion(name=name, title=question, labels=list(choices), required=True))
        qs.append(rg.TextQuestion(name="comment", title="Comment (optional)", required=False))
        return rg.Settings(guidelines=f"Rate each answer of llm-curate {key.name}.\n\n{marks}",
                           fields=[rg.TextField(name="prompt", title="Prompt"), rg.TextField(name="answer", title="Answer"),
                                   rg.TextField(name="model", title="Model")],
                           questions=qs, metadata=[rg.TermsMetadataProperty(name="answered_by", title="Model")],
                           distribution=rg.TaskDistribution(min_submitted=max(1, int(overlap))))

    def dataset(self, key: ProjectKey, kind: str, overlap: int = 1, create: bool = True,  # noqa: ANN201
                questions: dict | None = None, vector: tuple[str, int] | None = None):
        """The dataset for ``key`` (made with our settings when missing and ``create``); None when missing.
        ``vector``: (embedding model, dimensions) of the items' embeddings, a vector field when the dataset is made."""
        import argilla as rg

        name = dataset_name(key)
        ws = self._workspace()
        ds = self._call("find the dataset", lambda: self.client.datasets(name=name, workspace=ws))
        if ds is not None:
            guidelines = ds.settings.guidelines or ""
            if not all(m in guidelines for m in guideline_marks(key)):
                raise UsageError(f"Argilla at {self.url} has a dataset {name!r} in workspace {self.workspace!r} whose "
                                 f"guidelines do not name this store and review ({' / '.join(guideline_marks(key))}): "
                                 "it belongs to another store, or they were edited; rename it or restore those lines")
            return ds
        if not create:
            return None
        ds = rg.Dataset(name=name, workspace=ws, settings=self._settings(key, kind, overlap, questions, vector), client=self.client)
        return self._call("create the dataset", ds.create)

    def dataset_url(self, ds) -> str:  # noqa: ANN001
        return f"{self.url}/dataset/{ds.id}/annotation-mode"

    def item_ids(self, ds) -> set[str]:  # noqa: ANN001
        """The ids (our item ids) of every record already in the dataset."""
        return self._call("list records", lambda: {str(r.id) for r in ds.records(batch_size=500)})

    # ------------------------------------------------------------------ push and pull
    def _record(self, item: ReviewItem, vector: tuple[str, int] | None = None):  # noqa: ANN202
        import argilla as rg

        if item.kind == "answer":
            p = item.payload or {}
            return rg.Record(id=item.item_id, fields={"prompt": p.get("prompt") or "", "answer": p.get("answer") or "(empty)",
                                                      "model": p.get("model") or "unnamed"},
                             metadata={"answered_by": p.get("model") or "unnamed"})
        messages = [{"role": m.get("role") or "user", "content": m.get("content") or ""} for m in (item.messages or [])]
        fields = {"instruction": item.instruction or None, "input": item.input or None,
                  "dialogue": messages or None, "output": item.output or None, "reasoning": item.reasoning or None}
        if not any(v for v in fields.values()):
            fields["output"] = "(empty)"
        metadata = {"source": item.source or "?", "language": item.lang or "und", "stratum": item.stratum or "?",
                    "flags": len(item.flags), "duplicate_cluster_size": item.cluster_size or 1}
        if item.quality_score is not None:
            metadata["quality_score"] = float(item.quality_score)
        suggestions = []
        cats = _flag_categories(item)
        if cats:
            suggestions.append(rg.Suggestion(question_name="categories", value=cats, agent="llm-curate filters",
                                             score=[float(item.quality_score or 0.0)] * len(cats), type="model"))
        vectors = {}
        if vector and item.embedding is not None and (item.embedding_model, len(item.embedding)) == vector:
            vectors[VECTOR] = [float(x) for x in item.embedding]
        return rg.Record(id=item.item_id, fields={k: v for k, v in fields.items() if v is not None},
                         metadata=metadata, suggestions=suggestions, vectors=vectors)

    def push(self, key: ProjectKey, kind: str, items: list[ReviewItem], overlap: int = 1, progress=None) -> PushResult:  # noqa: ANN001
        questions = next((it.payload.get("questions") for it in items if it.payload and it.payload.get("questions")), None)
        ds = self.dataset(key, kind, overlap, questions=questions, vector=item_vector(items))
        field = next((v for v in ds.settings.vectors if v.name == VECTOR), None)
        vector = None
        if field is not None and field.title.startswith(VECTOR_TITLE) and field.title.endswith(")"):
            vector = (field.title[len(VECTOR_TITLE):-1], field.dimensions)
        there = self.item_ids(ds)
        todo = [it for it in items if it.item_id not in there]
        for i in range(0, len(todo), BATCH):
            batch = [self._record(it, vector) for it in todo[i:i + BATCH]]
            self._call("log records", ds.records.log, batch, batch_size=BATCH)
            if progress:
                progress(f"push to Argilla dataset {ds.name}", i + len(batch), len(todo), "items")
        return PushResult(created=len(todo), existing=len(items) - len(todo), project=ds.name, url=self.dataset_url(ds))

    def usernames(self) -> dict[str, str]:
        """Argilla user id -> username."""
        return self._call("list users", lambda: {str(u.id): u.username for u in self.client.users})

    def pull(self, key: ProjectKey, kind: str) -> list[dict]:
        ds = self.dataset(key, kind, create=False)
        if ds is None:
            raise UsageError(f"Argilla at {self.url} has no dataset for {key}: push it first")
        names = self.usernames()
        out: list[dict] = []
        counts = {"submitted": 0, "draft": 0, "discarded": 0}
        records = self._call("read records", lambda: list(ds.records(with_responses=True, batch_size=500)))
        for record in records:
            by_user: dict[str, dict] = {}
            for response in record.responses:
                entry = by_user.setdefault(str(response.user_id), {"status": str(getattr(response.status, "value",
                                                                                          response.status)), "values": {}})
                entry["values"][response.question_name] = response.value
            for user_id, entry in by_user.items():
                status = entry["status"]
                counts[status] = counts.get(status, 0) + 1
                if status != "submitted":
                    continue
                v = self._verdict(str(record.id), kind, entry["values"], names.get(user_id, f"user {user_id}"))
                if v is not None:
                    out.append(v)
        self.last_pull = counts
        return out

    @staticmethod
    def _verdict(item_id: str, kind: str, values: dict, reviewer: str) -> dict | None:
        out = {"item_id": item_id, "reviewer": reviewer, "backend_record_id": None, "submitted_at": None}
        if kind == "answer":
            ratings = {k: v for k, v in values.items() if v not in (None, "")}
            return {**out, "ratings": ratings} if ratings else None
        verdict = values.get("verdict")
        if verdict not in VERDICTS:
            return None
        corrected = (values.get("corrected_output") or "").strip() or None
        return {**out, "verdict": verdict, "categories": list(values.get("categories") or []), "corrected_output": corrected}

    # ------------------------------------------------------------------ accounts that answer through the API
    def user_id(self, email: str, name: str, role: str = "annotator", password: str | None = None) -> str:
        """The id of the Argilla user ``email`` (username), made when missing with ``role`` and a member of the
        workspace. Without ``password`` a random one: such an account (the scripted reviewer) cannot log in."""
        import secrets

        import argilla as rg

        user = self._call("find a user", lambda: self.client.users(username=email))
        if user is None:
            user = self._call("create a user", rg.User(username=email, first_name=name, role=role,
                                                       password=password or secrets.token_urlsafe(24),
                                                       client=self.client).create)
        ws = self._workspace()
        if str(user.id) not in {str(u.id) for u in self._call("list workspace users", lambda: list(ws.users))}:
            self._call("add a user to the workspace", ws.add_user, user)
        return str(user.id)

    def annotate(self, key: ProjectKey, kind: str, email: str, name: str, judgements: dict, progress=None) -> int:  # noqa: ANN001
        """Submit, as the user ``email``, a verdict on each item of ``judgements`` (item id -> an object with
        ``verdict`` and ``categories``) it has not answered yet; returns how many it submitted."""
        import argilla as rg

        ds = self.dataset(key, kind, create=False)
        if ds is None:
            raise UsageError(f"Argilla at {self.url} has no dataset for {key}: push it first")
        uid = self.user_id(email, name)
        records = self._call("read records", lambda: list(ds.records(with_responses=True, batch_size=500)))
        have = {str(r.id): r for r in records}
        missing = [i for i in judgements if i not in have]
        if missing:
            raise UsageError(f"{len(missing)} items are not in Argilla dataset {ds.name} (first: {missing[0]}): push them first")
        todo = [have[i] for i in judgements if not any(str(x.user_id) == uid for x in have[i].responses)]
        done = 0
        for i in range(0, len(todo), BATCH):
            batch = todo[i:i + BATCH]
            for record in batch:
                j = judgements[str(record.id)]
                record.responses.add(rg.Response("verdict", j.verdict, user_id=uid, status="submitted"))
                if j.categories:
                    record.responses.add(rg.Response("categories", list(j.categories), user_id=uid, status="submitted"))
            self._call("submit responses", ds.records.log, batch, batch_size=BATCH)
            done += len(batch)
            if progress:
                progress(f"{name} answers in Argilla dataset {ds.name}", done, len(todo), "items")
        return done
