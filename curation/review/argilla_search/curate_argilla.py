"""Argilla's command line with the embedded search engine registered first (runs in Argilla's environment).

``python curate_argilla.py start|worker|database ...|search-engine reindex`` is ``python -m argilla_server ...``
after ``import curate_search_engine``, so that every Argilla process (server, worker, reindex) finds the engine
that ``ARGILLA_SEARCH_ENGINE=curate-sqlite`` names.

``python curate_argilla.py owner`` makes (or updates) the owner account from the environment
(``ARGILLA_USERNAME``, ``ARGILLA_PASSWORD``, ``ARGILLA_API_KEY``, ``ARGILLA_WORKSPACE``), printing no secret:
Argilla's own ``database users create`` takes them on its command line, which every user of the machine can
read, and echoes the API key.
"""

import asyncio
import os
import sys

import curate_search_engine  # noqa: F401  (registers the engine before argilla_server builds its app)


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
