"""`curate review ...`: plan, push a sample to reviewers, pull verdicts, status, apply, serve a review tool."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from curation.cli.common import (
    BackendOpt,
    ConfidenceOpt,
    ExpectedOpt,
    JsonOpt,
    PowerOpt,
    RoundsOpt,
    SnapshotArg,
    TargetOpt,
    UrlOpt,
    handle_errors,
    open_cli_store,
)
from curation.errors import UsageError

review_app = typer.Typer(
    help="The review gate: plan, push a sample to reviewers, pull verdicts, status, apply the reviews, serve a "
         "review tool.\n\nExample: curate review push 1 --overlap 2 && curate review pull 1",
    no_args_is_help=True, rich_markup_mode=None)


def _backend(name: str, url: Optional[str]):  # noqa: ANN202
    from curation.review.backends import get_backend

    return get_backend(name, url=url)


@review_app.command("plan")
@handle_errors
def review_plan(target: TargetOpt = 0.98, confidence: ConfidenceOpt = 0.95, power: PowerOpt = 0.95,
                expected: ExpectedOpt = 0.995, rounds: RoundsOpt = 1) -> None:
    """How many reviews a snapshot needs for the target at the confidence, with the stated power.

    Example: curate review plan --rounds 4
    """
    from curation.cli.render import out
    from curation.review.sampling import review_plan as plan

    out.print_json(data=plan(target, confidence, power, expected, rounds))


@review_app.command("certify")
@handle_errors
def review_certify(reviewed: Annotated[int, typer.Argument(help="Samples reviewed.")],
                   correct: Annotated[int, typer.Argument(help="Of those, judged correct.")],
                   population: Annotated[Optional[int], typer.Option(help="Samples the reviewed ones were drawn from.")] = None,
                   target: TargetOpt = 0.98, confidence: ConfidenceOpt = 0.95) -> None:
    """One look: estimate, exact bounds, verdict and further reviews needed for given counts.

    Example: curate review certify 600 598 --population 20000
    """
    from curation.cli.render import out
    from curation.review.stats import certify

    if not 0 <= correct <= reviewed:
        raise UsageError(f"correct ({correct}) must be between 0 and reviewed ({reviewed})")
    if population is not None and population < reviewed:
        raise UsageError(f"population ({population}) is smaller than the sample ({reviewed})")
    out.print_json(data=certify(reviewed, correct, population, target, confidence).as_dict())


@review_app.command("push")
@handle_errors
def review_push(snapshot_id: SnapshotArg, backend: BackendOpt = "labelstudio", url: UrlOpt = None,
                reviews: Annotated[Optional[int], typer.Option(help="Samples to review (default: planned from target, confidence, power, expected).")] = None,
                rounds: RoundsOpt = 1,
                overlap: Annotated[int, typer.Option(help="Reviewers per sample.")] = 1,
                target: TargetOpt = 0.98, confidence: ConfidenceOpt = 0.95, power: PowerOpt = 0.95,
                expected: ExpectedOpt = 0.995,
                seed: Annotated[int, typer.Option(help="Seed of the stratified draw.")] = 0) -> None:
    """Draw the review sample of a snapshot (first time: stratified by source and language, flagged samples all)
    and push it to the review tool. Repeatable: nothing is pushed twice. Exit 4 when the tool is unreachable or
    refuses the token (the store is left unchanged).

    Example: curate review push 1 --overlap 2
    """
    from curation.cli.render import out, progress_bar
    from curation.review.loop import push_review

    with progress_bar() as progress:
        res = push_review(open_cli_store(), snapshot_id, _backend(backend, url), progress=progress, reviews=reviews,
                          rounds=rounds, overlap=overlap, target=target, confidence=confidence, power=power,
                          expected=expected, seed=seed)
    out.print_json(data=res)


@review_app.command("pull")
@handle_errors
def review_pull(snapshot_id: SnapshotArg, backend: BackendOpt = "labelstudio", url: UrlOpt = None,
                as_json: JsonOpt = False) -> None:
    """Pull the verdicts given so far, store the new ones, and print the certification and the agreement.

    Example: curate review pull 1
    """
    from curation.cli.render import out, review_summary
    from curation.review.loop import pull_review

    res = pull_review(open_cli_store(), snapshot_id, _backend(backend, url))
    if as_json:
        out.print_json(data=res)
        return
    out.print(f"pulled {res['pulled']} verdicts, {res['new']} new", highlight=False)
    review_summary({"snapshot": snapshot_id, "certification": res["certification"], "agreement": res["agreement"]})


@review_app.command("status")
@handle_errors
def review_status(snapshot_id: SnapshotArg, as_json: JsonOpt = False) -> None:
    """Certification (counts and estimates apart), agreement between reviewers and errors by source, language and
    filter, from the verdicts stored so far; --json for the whole record.

    Example: curate review status 1
    """
    from curation.cli.render import out, review_summary
    from curation.review.status import review_status as status

    data = status(open_cli_store(), snapshot_id)
    if as_json:
        out.print_json(data=data)
    else:
        review_summary(data)


@review_app.command("apply")
@handle_errors
def review_apply(snapshot_id: SnapshotArg) -> None:
    """Make the child snapshot with the reviews applied: rejected samples left out, corrections in (a new text
    version; for a dialogue, the last assistant turn). The child inherits the certification with its lineage;
    approve and export the child.

    Example: curate review apply 1 && curate snapshot approve 2 && curate snapshot export 2
    """
    from curation.cli.render import err, out
    from curation.review.apply import apply_reviews

    child = apply_reviews(open_cli_store(), snapshot_id)
    err.print(f"snapshot {child.snapshot_id}: {child.note}; next: curate snapshot approve {child.snapshot_id}",
              highlight=False)
    out.print_json(data=child.summary())


@review_app.command("serve")
@handle_errors
def review_serve(tool: Annotated[str, typer.Argument(help="Review tool to start: labelstudio or argilla.")],
                 host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
                 port: Annotated[Optional[int], typer.Option(help="Port (default: 8080 for Label Studio, 6900 for Argilla).")] = None,
                 data_dir: Annotated[Optional[Path], typer.Option(help="The tool's data (SQLite, uploads; Argilla's search index); default: <store folder>/<tool>.")] = None,
                 venv: Annotated[Optional[Path], typer.Option(help="The tool's own virtual environment (made when missing); default: env CURATE_LABEL_STUDIO_VENV / CURATE_ARGILLA_VENV, else .venv-labelstudio / .venv-argilla.")] = None) -> None:
    """Start a local review server in the foreground and print its URL and login.

    Label Studio: the admin user and API token come from LABEL_STUDIO_USERNAME, LABEL_STUDIO_PASSWORD and
    LABEL_STUDIO_USER_TOKEN. Argilla (with its embedded search engine and Redis, no Elasticsearch): the owner from
    ARGILLA_USERNAME, ARGILLA_PASSWORD and ARGILLA_API_KEY (placeholders such as argilla.apikey are refused).
    Ctrl-C or SIGTERM stops it.

    Example: curate review serve labelstudio --port 8080
    """
    from curation.cli.render import err

    store_dir = Path(open_cli_store().path).parent
    if tool == "labelstudio":
        from curation.review.labelstudio_server import serve

        serve(host=host, port=port or 8080, data_dir=data_dir or store_dir / "labelstudio", venv=venv, console=err)
    elif tool == "argilla":
        from curation.review.argilla_server import serve as serve_argilla

        serve_argilla(host=host, port=port or 6900, data_dir=data_dir or store_dir / "argilla", venv=venv, console=err)
    else:
        raise UsageError(f"unknown review tool {tool!r}; known: labelstudio, argilla")


users_app = typer.Typer(help="Reviewer accounts that log in to the review tool.\n\nExample: curate review users add "
                             "ana@example.com --role annotator --backend argilla", no_args_is_help=True,
                        rich_markup_mode=None)
review_app.add_typer(users_app, name="users")


@users_app.command("add")
@handle_errors
def users_add(email: Annotated[str, typer.Argument(help="The reviewer's e-mail: their login.")],
              role: Annotated[str, typer.Option(help="annotator or lead (Argilla's admin; Label Studio Community has no roles).")] = "annotator",
              backend: BackendOpt = "argilla", url: UrlOpt = None,
              data_dir: Annotated[Optional[Path], typer.Option(help="Label Studio: its data folder (default: <store folder>/labelstudio).")] = None,
              venv: Annotated[Optional[Path], typer.Option(help="Label Studio: its virtual environment (default: env CURATE_LABEL_STUDIO_VENV, else .venv-labelstudio).")] = None) -> None:
    """Make a reviewer account that can log in. The password comes from CURATE_REVIEWER_PASSWORD or a hidden
    prompt, never an argument.

    Example: curate review users add ana@example.com --role annotator --backend argilla
    """
    import os

    from curation.cli.render import err, out
    from curation.review.accounts import add_reviewer, check_password

    password = os.environ.get("CURATE_REVIEWER_PASSWORD")
    if not password:
        password = typer.prompt(f"password for {email}", hide_input=True, confirmation_prompt=True)
    check_password(password)
    if backend == "labelstudio" and data_dir is None:
        data_dir = Path(open_cli_store().path).parent / "labelstudio"
    done = add_reviewer(backend, email, role, password, url=url, data_dir=data_dir, venv=venv)
    err.print(f"{done['user']} can log in to {backend} ({done['role']})", highlight=False)
    out.print_json(data=done)


@users_app.command("list")
@handle_errors
def users_list(backend: BackendOpt = "argilla", url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """The review tool's accounts: login, role and name.

    Example: curate review users list --backend argilla
    """
    import pyarrow as pa

    from curation.cli.render import arrow_table, out
    from curation.review.accounts import list_reviewers

    rows = list_reviewers(backend, url)
    if as_json:
        out.print_json(data=rows)
    else:
        arrow_table(pa.Table.from_pylist(rows, schema=pa.schema([("user", pa.string()), ("role", pa.string()),
                                                                  ("name", pa.string())])), title=f"{backend} accounts")
