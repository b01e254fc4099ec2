"""An embedded search engine for argilla-server 2.8: SQLite (documents, FTS5 full text) and numpy (vectors), so
that Argilla runs on one machine without Elasticsearch or OpenSearch.

This file runs inside Argilla's own virtual environment (it imports ``argilla_server``, never ``curation``):
``curate_argilla.py`` beside it imports it before Argilla builds its app, in every Argilla process (server,
worker, reindex), and ``ARGILLA_SEARCH_ENGINE=curate-sqlite`` selects it.

How: Argilla's Elasticsearch and OpenSearch engines share one implementation
(``BaseElasticAndOpenSearchEngine``) that turns every call (records indexed, responses and suggestions
updated, searches with filters and sorts, progress metrics, metadata metrics, similarity search) into
Elasticsearch requests through a handful of request methods. This engine subclasses it and answers those
requests itself: documents are JSON rows of one SQLite file shared by Argilla's processes (WAL mode), text goes
to an FTS5 table with the trigram tokenizer (substring matches, Chinese included), and the query DSL that
Argilla builds (bool, terms, term, range, exists, ids, nested, simple_query_string, match_all, function_score's
seeded random order, sorts, terms / value_count / stats aggregations, kNN) is evaluated in Python over the
index's documents. So Argilla's own semantics (what "pending" means for a user, progress, sorting by a
response) are kept exactly, and only the storage differs.

Limits: one machine; searches read every document of the dataset (measured: see the README), so it is meant
for review datasets (thousands to tens of thousands of records), not millions; text search is substring
(trigram) matching of each word of the query (words under three characters are matched with LIKE), not
Elasticsearch's analysers and scoring. Production runs Elasticsearch (compose.yaml).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import sqlite3
import threading
from datetime import datetime
from typing import Any
from uuid import UUID

import numpy as np
from argilla_server.models import VectorSettings
from argilla_server.search_engine import SearchEngine
from argilla_server.search_engine.commons import BaseElasticAndOpenSearchEngine

ENGINE_NAME = "curate-sqlite"
DB_ENV = "CURATE_ARGILLA_SEARCH_DB"
_LOCAL = threading.local()


def db_path() -> str:
    """The engine's SQLite file: ``CURATE_ARGILLA_SEARCH_DB``, else ``search.sqlite3`` in Argilla's home."""
    if os.environ.get(DB_ENV):
        return os.environ[DB_ENV]
    home = os.environ.get("ARGILLA_HOME_PATH") or os.path.expanduser("~/.argilla")
    return os.path.join(home, "search.sqlite3")


def _connect() -> sqlite3.Connection:
    """One connection per thread and process (the server and the worker write the same file)."""
    pid = os.getpid()
    con = getattr(_LOCAL, "con", None)
    if con is not None and getattr(_LOCAL, "pid", None) == pid:
        return con
    path = db_path()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    con = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA busy_timeout=30000")
    con.execute("PRAGMA synchronous=NORMAL")
    # documents without their vectors (read by every search), vectors apart (read by similarity search), and one
    # row per text field whose rowid is its row in the FTS5 index (so a document's text is replaced by rowid)
    con.executescript("""
        CREATE TABLE IF NOT EXISTS indexes (name TEXT PRIMARY KEY, mappings TEXT NOT NULL, settings TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS docs (index_name TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
                                         doc TEXT NOT NULL, PRIMARY KEY (index_name, id));
        CREATE INDEX IF NOT EXISTS docs_by_seq ON docs (index_name, seq);
        CREATE TABLE IF NOT EXISTS vectors (index_name TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL,
                                            value BLOB NOT NULL, PRIMARY KEY (index_name, name, id));
        CREATE TABLE IF NOT EXISTS doc_fields (rowid INTEGER PRIMARY KEY, index_name TEXT NOT NULL, id TEXT NOT NULL,
                                               field TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS doc_fields_by_doc ON doc_fields (index_name, id);
        CREATE VIRTUAL TABLE IF NOT EXISTS docs_text USING fts5(text, tokenize = 'trigram');
    """)
    _LOCAL.con, _LOCAL.pid = con, pid
    return con


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if hasattr(value, "value"):  # str enums (record and response status)
        return value.value
    raise TypeError(f"cannot store {type(value).__name__} in a document")


def _plain(value: Any) -> Any:
    """A document as JSON would give it back (enums as their values, datetimes as ISO text)."""
    return json.loads(json.dumps(value, default=_json_default))


# ---------------------------------------------------------------------------------------------- documents
def _get(doc: Any, path: str) -> list:
    """The values at a dotted ``path`` of ``doc``, lists flattened (as Elasticsearch sees arrays of objects)."""
    values = [doc]
    for part in path.split("."):
        nxt = []
        for v in values:
            for x in (v if isinstance(v, list) else [v]):
                if isinstance(x, dict) and part in x:
                    nxt.append(x[part])
        values = nxt
    out: list = []
    for v in values:
        out.extend(x for x in (v if isinstance(v, list) else [v]) if x is not None)
    return out


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(_text_of(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(_text_of(v) for v in value.values())
    return "" if value is None else str(value)


def _field_texts(doc: dict) -> dict[str, str]:
    return {name: _text_of(value) for name, value in (doc.get("fields") or {}).items() if value is not None}


def _comparable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _in_range(value: Any, spec: dict) -> bool:
    try:
        if "gte" in spec and spec["gte"] is not None and not value >= _comparable(spec["gte"]):
            return False
        if "lte" in spec and spec["lte"] is not None and not value <= _comparable(spec["lte"]):
            return False
        if "gt" in spec and spec["gt"] is not None and not value > _comparable(spec["gt"]):
            return False
        if "lt" in spec and spec["lt"] is not None and not value < _comparable(spec["lt"]):
            return False
    except TypeError:
        return False
    return True


@dataclasses.dataclass
class _Matcher:
    """Evaluates Argilla's query DSL on one index's documents; full text through FTS5."""

    con: sqlite3.Connection
    index: str

    def text_ids(self, fields: list[str], query: str) -> set[str]:
        """Ids of documents whose named fields (``fields.*``, ``fields.name``, ``fields.name.*``) contain every word
        of ``query`` (case-insensitive substring: FTS5 trigrams for words of three characters or more)."""
        names: list[str] | None = []
        for f in fields:
            f = f.removeprefix("fields.")
            if f in ("*", ""):
                names = None
                break
            names.append(f.removesuffix(".*"))
        # the words of the query, without simple_query_string's operators (+ | - * " ( ))
        words = [w for w in (t.strip('"+|-*()') for t in query.split()) if w]
        where, params = "f.index_name = ?", [self.index]
        if names is not None:
            where += f" AND f.field IN ({', '.join('?' for _ in names)})"
            params += names
        long_words = [w for w in words if len(w) >= 3]
        # words under three characters (a Chinese word is often two) have no trigram: checked in Python
        short = [w.lower() for w in words if len(w) < 3]
        if long_words:  # FTS5's trigram index: each word a case-insensitive substring of the field
            # the MATCH runs once, materialised, then joins: as a join condition SQLite would probe the index once
            # per field row (2.4 s for a common word at 10,000 records)
            match = " AND ".join('"' + w.replace('"', '""') + '"' for w in long_words)
            rows = self.con.execute(
                "WITH t AS MATERIALIZED (SELECT rowid, text FROM docs_text WHERE docs_text MATCH ?) "
                f"SELECT f.id, t.text FROM t JOIN doc_fields f ON f.rowid = t.rowid WHERE {where}",
                [match, *params]).fetchall()
        else:
            rows = self.con.execute(f"SELECT f.id, t.text FROM docs_text t JOIN doc_fields f ON f.rowid = t.rowid "
                                    f"WHERE {where}", params).fetchall()
        return {i for i, text in rows if all(w in text.lower() for w in short)}

    def match(self, q: dict, doc: dict, root: dict | None = None) -> bool:  # noqa: C901 (one branch per clause)
        root = root if root is not None else doc
        (kind, body), = q.items()
        if kind == "match_all":
            return True
        if kind == "bool":
            must = body.get("must") or []
            must = must if isinstance(must, list) else [must]
            flt = body.get("filter") or []
            flt = flt if isinstance(flt, list) else [flt]
            must_not = body.get("must_not") or []
            must_not = must_not if isinstance(must_not, list) else [must_not]
            should = body.get("should") or []
            if not all(self.match(c, doc, root) for c in must + flt):
                return False
            if any(self.match(c, doc, root) for c in must_not):
                return False
            if should:
                need = int(body.get("minimum_should_match") or (0 if must or flt else 1))
                return sum(self.match(c, doc, root) for c in should) >= need
            return True
        if kind == "function_score":
            return self.match(body["query"], doc, root)
        if kind == "terms":
            (field, values), = body.items()
            wanted = {str(_plain(v)) for v in values}
            return any(str(v) in wanted for v in _get(doc, field))
        if kind == "term":
            (field, value), = body.items()
            value = value.get("value") if isinstance(value, dict) else value
            return any(str(v) == str(_plain(value)) for v in _get(doc, field))
        if kind == "range":
            (field, spec), = body.items()
            return any(_in_range(v, spec) for v in _get(doc, field))
        if kind == "exists":
            return bool(_get(doc, body["field"]))
        if kind == "ids":
            return doc.get("id") in {str(v) for v in body["values"]}
        if kind == "nested":
            path = body["path"]
            items = doc.get(path) or []
            # inside the nested query, fields are named from the root ("responses.status"): give each item alone
            return any(self.match(body["query"], {path: [item]}, root) for item in items)
        if kind == "simple_query_string":
            key = (tuple(body["fields"]), body["query"])
            cache = self.__dict__.setdefault("_text_cache", {})
            if key not in cache:
                cache[key] = self.text_ids(list(body["fields"]), body["query"])
            return root.get("id") in cache[key]
        raise ValueError(f"query clause {kind!r} is not supported by the embedded search engine")


def _sort_key(doc: dict, spec: dict) -> tuple:
    keys = []
    for item in spec:
        (field, how), = item.items()
        order = how if isinstance(how, str) else how.get("order", "asc")
        if isinstance(how, dict) and "nested" in how:
            nested = how["nested"]
            path = nested["path"]
            items = doc.get(path) or []
            if "filter" in nested:
                (_, flt), = nested["filter"].items()
                (ffield, fvalues), = flt.items()
                sub = ffield.split(".", 1)[1]
                items = [x for x in items if str(x.get(sub)) in {str(v) for v in fvalues}]
            values = [x.get(field.split(".", 1)[1]) for x in items]
            values = [v for v in values if isinstance(v, (int, float))]
            value = sum(values) / len(values) if values else None
        else:
            values = _get(doc, field)
            value = values[0] if values else None
        missing = value is None
        if order == "desc":
            value = _Desc(value)
        keys.append((missing, value if not missing else 0))
    return tuple(keys)


class _Desc:
    """Reverses the order of a value inside a sort key."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: "_Desc") -> bool:
        return other.v < self.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and other.v == self.v


def _terms_buckets(values: list, size: int) -> list[dict]:
    counts: dict = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return [{"key": k, "doc_count": n} for k, n in ordered[:size]]


@SearchEngine.register(engine_name=ENGINE_NAME)
@dataclasses.dataclass
class CurateSqliteEngine(BaseElasticAndOpenSearchEngine):
    """Argilla's Elasticsearch engine, answered by SQLite and numpy (see the module docstring)."""

    number_of_shards: int = 1
    number_of_replicas: int = 0

    def __post_init__(self) -> None:
        self.client = None  # no remote engine

    @classmethod
    async def new_instance(cls) -> "CurateSqliteEngine":
        return cls()

    async def close(self) -> None:
        return None

    async def ping(self) -> bool:
        _connect().execute("SELECT 1").fetchall()
        return True

    async def info(self) -> dict:
        return {"engine": ENGINE_NAME, "version": sqlite3.sqlite_version, "path": db_path()}

    # ------------------------------------------------------------------------------------------ indexes
    def _mapping_for_vector_settings(self, vector_settings: VectorSettings) -> dict:
        return {f"vectors.{vector_settings.id}": {"type": "dense_vector", "dims": vector_settings.dimensions}}

    async def _create_index_request(self, index_name: str, mappings: dict, settings: dict) -> None:
        con = _connect()
        con.execute("INSERT OR REPLACE INTO indexes VALUES (?, ?, ?)",
                    [index_name, json.dumps(mappings, default=_json_default), json.dumps(settings, default=_json_default)])

    async def _delete_index_request(self, index_name: str) -> None:
        con = _connect()
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute("DELETE FROM docs_text WHERE rowid IN (SELECT rowid FROM doc_fields WHERE index_name = ?)",
                        [index_name])
            for table in ("indexes", "docs", "vectors", "doc_fields"):
                col = "name" if table == "indexes" else "index_name"
                con.execute(f"DELETE FROM {table} WHERE {col} = ?", [index_name])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    async def _index_exists_request(self, index_name: str) -> bool:
        return bool(_connect().execute("SELECT 1 FROM indexes WHERE name = ?", [index_name]).fetchall())

    async def put_index_mapping_request(self, index: str, mappings: dict) -> None:
        con = _connect()
        row = con.execute("SELECT mappings FROM indexes WHERE name = ?", [index]).fetchall()
        current = json.loads(row[0][0]) if row else {"properties": {}}
        current.setdefault("properties", {}).update(_plain(mappings))
        con.execute("UPDATE indexes SET mappings = ? WHERE name = ?", [json.dumps(current), index])

    # ------------------------------------------------------------------------------------------ documents
    @staticmethod
    def _remove(con: sqlite3.Connection, index: str, doc_id: str, keep_doc: bool = False) -> None:
        con.execute("DELETE FROM docs_text WHERE rowid IN (SELECT rowid FROM doc_fields WHERE index_name = ? AND id = ?)",
                    [index, doc_id])
        con.execute("DELETE FROM doc_fields WHERE index_name = ? AND id = ?", [index, doc_id])
        con.execute("DELETE FROM vectors WHERE index_name = ? AND id = ?", [index, doc_id])
        if not keep_doc:
            con.execute("DELETE FROM docs WHERE index_name = ? AND id = ?", [index, doc_id])

    @classmethod
    def _write(cls, con: sqlite3.Connection, index: str, doc_id: str, doc: dict) -> None:
        """Store ``doc`` (a whole document, vectors included) in place of the one with its id."""
        seq = con.execute("SELECT seq FROM docs WHERE index_name = ? AND id = ?", [index, doc_id]).fetchall()
        seq = seq[0][0] if seq else (con.execute("SELECT coalesce(max(seq), 0) + 1 FROM docs WHERE index_name = ?",
                                                 [index]).fetchall()[0][0])
        cls._remove(con, index, doc_id, keep_doc=True)
        vectors = doc.pop("vectors", None) or {}
        con.executemany("INSERT INTO vectors VALUES (?, ?, ?, ?)",
                        [(index, doc_id, name, np.asarray(v, dtype=np.float32).tobytes())
                         for name, v in vectors.items() if v is not None])
        doc["_vectors"] = sorted(vectors)  # which vectors the document has (for exists filters and re-writes)
        con.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?)", [index, doc_id, seq, json.dumps(doc)])
        for name, text in _field_texts(doc).items():
            rowid = con.execute("INSERT INTO doc_fields (index_name, id, field) VALUES (?, ?, ?)",
                                [index, doc_id, name]).lastrowid
            con.execute("INSERT INTO docs_text (rowid, text) VALUES (?, ?)", [rowid, text])

    @staticmethod
    def _read(con: sqlite3.Connection, index: str, doc_id: str) -> dict | None:
        """A stored document with its vectors (for a partial update, which writes it whole again)."""
        row = con.execute("SELECT doc FROM docs WHERE index_name = ? AND id = ?", [index, doc_id]).fetchall()
        if not row:
            return None
        doc = json.loads(row[0][0])
        doc.pop("_vectors", None)
        vecs = con.execute("SELECT name, value FROM vectors WHERE index_name = ? AND id = ?", [index, doc_id]).fetchall()
        if vecs:
            doc["vectors"] = {name: np.frombuffer(value, dtype=np.float32).tolist() for name, value in vecs}
        return doc

    async def _bulk_op_request(self, actions: list[dict[str, Any]]) -> None:
        con = _connect()
        con.execute("BEGIN IMMEDIATE")
        try:
            for action in actions:
                op, index, doc_id = action.get("_op_type", "index"), action["_index"], str(action["_id"])
                if op == "delete":
                    self._remove(con, index, doc_id)
                elif op in ("index", "create"):
                    doc = _plain({k: v for k, v in action.items() if not k.startswith("_")})
                    self._write(con, index, doc_id, doc)
                else:
                    raise ValueError(f"bulk operation {op!r} is not supported by the embedded search engine")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    async def _update_document_request(self, index_name: str, id: str, body: dict) -> None:  # noqa: A002
        con = _connect()
        con.execute("BEGIN IMMEDIATE")
        try:
            doc = self._read(con, index_name, str(id))
            if doc is None:
                raise ValueError(f"document {id} is not in index {index_name}")
            self._apply_update(doc, body)
            self._write(con, index_name, str(id), doc)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    @staticmethod
    def _apply_update(doc: dict, body: dict) -> None:
        """A partial update (``doc``, merged one level deep as Elasticsearch merges objects) or one of the three
        scripts Argilla sends: add or replace a response, remove a response, remove a suggestion."""
        if "doc" in body:
            for key, value in _plain(body["doc"]).items():
                if isinstance(value, dict) and isinstance(doc.get(key), dict):
                    doc[key].update(value)
                else:
                    doc[key] = value
            return
        script = body.get("script")
        if isinstance(script, str):
            m = re.fullmatch(r'ctx\._source\["suggestions"\]\.remove\("(.+)"\)', script.strip())
            if not m:
                raise ValueError(f"update script {script!r} is not supported by the embedded search engine")
            (doc.get("suggestions") or {}).pop(m.group(1), None)
            return
        source, params = script["source"], _plain(script.get("params") or {})
        response = params.get("response") or {}
        responses = [r for r in (doc.get("responses") or []) if r.get("id") != response.get("id")]
        if "add(params.response)" in source.replace(" ", ""):
            responses.append(response)
        elif "remove(i)" not in source:
            raise ValueError("update script is not supported by the embedded search engine")
        doc["responses"] = responses

    # ------------------------------------------------------------------------------------------ search
    def _docs(self, con: sqlite3.Connection, index: str) -> list[dict]:
        rows = con.execute("SELECT doc, seq FROM docs WHERE index_name = ? ORDER BY seq", [index]).fetchall()
        out = []
        for text, seq in rows:
            doc = json.loads(text)
            doc["_seq_no"] = seq
            out.append(doc)
        return out

    async def _index_search_request(self, index: str, query: dict, size: int | None = None, from_: int | None = None,
                                    sort: dict | list | None = None, aggregations: dict | None = None) -> dict:
        con = _connect()
        matcher = _Matcher(con, index)
        hits = [d for d in self._docs(con, index) if matcher.match(query, d)]
        if sort:
            hits.sort(key=lambda d: _sort_key(d, sort))
        elif "function_score" in query:  # Argilla's per-user order: random, seeded by the user, stable
            seed = next((f["random_score"]["seed"] for f in query["function_score"].get("functions", [])
                         if "random_score" in f), "")
            hits.sort(key=lambda d: hashlib.sha256(f"{seed}:{d['id']}".encode()).hexdigest())
        out: dict[str, Any] = {"hits": {"total": {"value": len(hits), "relation": "eq"}, "hits": []}}
        start = from_ or 0
        page = hits[start:start + size] if size is not None else hits[start:]
        out["hits"]["hits"] = [{"_id": d["id"], "_score": 1.0, "_source": d} for d in page]
        if aggregations:
            out["aggregations"] = {}
            for name, agg in aggregations.items():
                (kind, spec), = agg.items()
                values = [v for d in hits for v in _get(d, spec["field"])]
                if kind == "terms":
                    out["aggregations"][name] = {"buckets": _terms_buckets(values, int(spec.get("size", 10)))}
                elif kind == "value_count":
                    out["aggregations"][name] = {"value": len(values)}
                elif kind == "stats":
                    nums = [float(v) for v in values if isinstance(v, (int, float))]
                    out["aggregations"][name] = {
                        "count": len(nums), "min": min(nums) if nums else None, "max": max(nums) if nums else None,
                        "avg": sum(nums) / len(nums) if nums else None, "sum": sum(nums)}
                else:
                    raise ValueError(f"aggregation {kind!r} is not supported by the embedded search engine")
        return out

    async def _request_similarity_search(self, index: str, vector_settings: VectorSettings, value: list[float], k: int,
                                         excluded_id: UUID | None = None, query_filters: list[dict] | None = None) -> dict:
        con = _connect()
        matcher = _Matcher(con, index)
        key = str(vector_settings.id)
        stored = dict(con.execute("SELECT id, value FROM vectors WHERE index_name = ? AND name = ?", [index, key]).fetchall())
        docs = [d for d in self._docs(con, index) if d["id"] in stored and str(d["id"]) != str(excluded_id)
                and all(matcher.match(f, d) for f in (query_filters or []))]
        if not docs:
            return {"hits": {"total": {"value": 0, "relation": "eq"}, "hits": []}}
        matrix = np.stack([np.frombuffer(stored[d["id"]], dtype=np.float32) for d in docs])
        q = np.asarray(value, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(q) or 1.0)
        cos = matrix @ q / np.where(norms == 0, 1.0, norms)
        score = (1.0 + cos) / 2.0  # Elasticsearch's cosine similarity score
        top = np.argsort(-score, kind="stable")[:k]
        hits = [{"_id": docs[i]["id"], "_score": float(score[i])} for i in top]
        return {"hits": {"total": {"value": len(hits), "relation": "eq"}, "hits": hits}}
