"""`curate api` (the HTTP service) and `curate token ...` (its API tokens)."""

from __future__ import annotations

from typing import Annotated

import typer

from curation.cli.common import JsonOpt, handle_errors, open_cli_store

token_app = typer.Typer(
    help="The HTTP API's tokens: create (shown once, stored hashed), list, revoke.\n\n"
         "Example: curate token create --role viewer --name dashboards",
    no_args_is_help=True, rich_markup_mode=None)


@handle_errors
def api_command(
    host: Annotated[str, typer.Option("--host", help="Interface to bind (default: loopback only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port.")] = 8700,
) -> None:
    """Run the HTTP API over the store: /health, /ready, and /v1 (batches, runs, samples, SQL, snapshots and
    review, training, jobs, tokens; the schema at /openapi.json). Every /v1 route needs a token
    (curate token create). Long work runs as jobs in this process, which is the store's writer while it runs.

    Example: curate token create --role admin --name me && curate api --port 8700
    """
    from curation.cli.render import err

    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:  # depends on the install
        from curation.errors import MissingExtraError

        raise MissingExtraError("serve", "the HTTP API (fastapi, uvicorn)") from e
    from curation.api.app import serve
    store = open_cli_store()
    err.print(f"llm-curate API on http://{host}:{port} over {store.path} (schema: /openapi.json)", highlight=False)
    serve(store, host, port)


@token_app.command("create")
@handle_errors
def token_create(
    role: Annotated[str, typer.Option("--role", help="viewer (read, SQL), lead (ingest, runs, snapshots, review), "
                                      "admin (approve, export, train, tokens).")],
    name: Annotated[str, typer.Option("--name", help="Who or what uses it (shown in the audit log).")],
) -> None:
    """Create an API token and print it once (only its hash is stored).

    Example: curate token create --role lead --name annotation-leads
    """
    from curation.api.tokens import create_token
    from curation.cli.render import err, out

    token, info = create_token(open_cli_store(), role, name)
    err.print(f"token {info.token_id} ({info.name}, {info.role}); shown once, keep it secret:", highlight=False)
    out.file.write(token + "\n")


@token_app.command("list")
@handle_errors
def token_list(as_json: JsonOpt = False) -> None:
    """List the API tokens (never the tokens themselves): id, name, role, created, revoked.

    Example: curate token list
    """
    import pyarrow as pa

    from curation.api.tokens import list_tokens
    from curation.cli.render import arrow_table, out

    rows = list_tokens(open_cli_store())
    if as_json:
        out.print_json(data=rows)
        return
    names = ("token_id", "name", "role", "created_at", "revoked_at")
    arrow_table(pa.Table.from_pylist(rows, schema=pa.schema([(n, pa.string()) for n in names])), title="API tokens")


@token_app.command("revoke")
@handle_errors
def token_revoke(token_id: Annotated[str, typer.Argument(help="The token's id (curate token list).")]) -> None:
    """Revoke an API token: it stops working at once (within 2 s for a running service).

    Example: curate token revoke 0b6f...
    """
    from curation.api.tokens import revoke_token
    from curation.cli.render import err
    from curation.errors import UsageError

    if not revoke_token(open_cli_store(), token_id):
        raise UsageError(f"no live token {token_id!r} (curate token list)")
    err.print(f"revoked {token_id}", highlight=False)
