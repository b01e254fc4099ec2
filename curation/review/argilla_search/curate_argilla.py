"""Argilla's command line with the embedded search engine registered first (runs in Argilla's environment).

``python curate_argilla.py start|worker|database ...|search-engine reindex`` is ``python -m argilla_server ...``
after ``import curate_search_engine``, so that every Argilla process (server, worker, reindex) finds the engine
that ``ARGILLA_SEARCH_ENGINE=curate-sqlite`` names.

``python curate_argilla.py owner`` makes (or updates) the owner account from the environment
(``ARGILLA_USERNAME``, ``ARGILLA_PASSWORD``, ``ARGILLA_API_KEY``, ``ARGILLA_WORKSPACE``), printing no secret:
Argilla's own ``database users create`` takes them on its command line, which every user of the machine can
read, and echoes the API key.

Fixes of argilla-server 2.8.0's record upsert, same results (:func:`_faster_record_upserts`): they took most of
its time per record on this engine.
"""

import asyncio
import os
import sys

import curate_search_engine  # noqa: F401  (registers the engine before argilla_server builds its app)


def _faster_record_upserts() -> None:
    """Two per-record costs of argilla-server 2.8.0's bulk upsert, removed without changing what it does:

    * ``MetadataProperty.parsed_settings`` and ``Question.parsed_settings`` built a new pydantic ``TypeAdapter``
      on every call, that is per record and metadata property (or suggestion) when records are validated: one
      adapter each, built once, validates the same way;
    * ``notify_record_event`` loaded the dataset with five relationships and serialised the record for a
      webhook event before asking whether any webhook is enabled: it now asks first (one query), and builds
      and enqueues the event exactly as before when one is.

    Profiled on pushes of 1,000 and 2,000 records: the adapters 48% (metadata) and 64% (suggestions) of the
    upsert handler's time, the events 38%. Checked against the pinned
    version: a missing name fails the start instead of silently running unpatched.
    """
    from pydantic import TypeAdapter

    from argilla_server.bulk import records_bulk
    from argilla_server.contexts import distribution, webhooks
    from argilla_server.models import database
    from argilla_server.webhooks.v1 import records

    metadata_settings = TypeAdapter(database.MetadataPropertySettings)
    question_settings = TypeAdapter(database.QuestionSettings)
    database.MetadataProperty.parsed_settings = property(lambda self: metadata_settings.validate_python(self.settings))
    database.Question.parsed_settings = property(lambda self: question_settings.validate_python(self.settings))

    original = records.notify_record_event

    async def notify_record_event(db, record_event, record):  # noqa: ANN001, ANN202
        if not await webhooks.list_enabled_webhooks(db):
            return []
        return await original(db, record_event, record)

    for module in (records, records_bulk, distribution):
        name = "notify_record_event" if module is records else "notify_record_event_v1"
        if not hasattr(module, name):
            raise RuntimeError(f"argilla-server changed: {module.__name__}.{name} is gone; update curate_argilla.py")
        setattr(module, name, notify_record_event)


_faster_record_upserts()


async def _owner() -> str:
    from argilla_server.cli.database.users.utils import get_or_new_workspace
    from argilla_server.contexts import accounts
    from argilla_server.database import AsyncSessionLocal
    from argilla_server.models import User, UserRole

    username, password = os.environ["ARGILLA_USERNAME"], os.environ["ARGILLA_PASSWORD"]
    api_key, workspace = os.environ["ARGILLA_API_KEY"], os.environ.get("ARGILLA_WORKSPACE", "curate")
    async with AsyncSessionLocal() as session:
        user = await accounts.get_user_by_username(session, username)
        if user is None:
            await User.create(session, first_name=username.split("@")[0], username=username, role=UserRole.owner,
                              password_hash=accounts.hash_password(password), api_key=api_key,
                              workspaces=[await get_or_new_workspace(session, workspace)])
            return "created"
        changed = {}
        if user.api_key != api_key:
            changed["api_key"] = api_key
        if not accounts.verify_password(password, user.password_hash):
            changed["password_hash"] = accounts.hash_password(password)
        if changed:
            await user.update(session, **changed)
            return "updated"
        return "unchanged"


if __name__ == "__main__":
    if sys.argv[1:] == ["owner"]:
        print(f"owner {os.environ['ARGILLA_USERNAME']}: {asyncio.run(_owner())}")
    else:
        from argilla_server.cli import app

        app()
