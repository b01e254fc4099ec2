"""One error hierarchy for every command and route, and the one table of exit codes.

Exit codes (the same for every ``curate`` command):

====  ==========================================================================================
0     done
1     done, but problems were found: some inputs of an ingest could not be read (the others were loaded),
      or what ``--strict`` makes fatal (rows quarantined, a gate not passed)
2     bad usage, or input that cannot be read at all (missing file, unknown format; for an ingest: no input)
3     refused by a rule (a write through ``curate sql``, an unapproved snapshot)
4     an external service failed (a review server down, a bad token), or the store stayed busy
70    internal error: a bug, not a problem with the input (the traceback is written to a log file
      whose path the message gives; please report it)
====  ==========================================================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_EXTERNAL = 4
EXIT_INTERNAL = 70  # EX_SOFTWARE in sysexits.h


class CurateError(Exception):
    """Base of every error this package raises on purpose. ``exit_code`` maps it for the CLI."""

    exit_code = EXIT_USAGE


class UsageError(CurateError):
    """Bad arguments or options."""

    exit_code = EXIT_USAGE


class InputError(CurateError):
    """An input that cannot be read at all: missing file, unknown format, unreadable encoding."""

    exit_code = EXIT_USAGE


class RefusedError(CurateError):
    """A request that a rule refuses: a write through the read-only SQL surface, and the like."""

    exit_code = EXIT_REFUSED


class ProblemsFound(CurateError):
    """The work was done but problems were found; fatal only under ``--strict``."""

    exit_code = EXIT_PROBLEMS


class ExternalServiceError(CurateError):
    """A service we depend on failed."""

    exit_code = EXIT_EXTERNAL


class StoreBusyError(ExternalServiceError):
    """Another process held the store for longer than the lock timeout."""


class StoreError(CurateError):
    """The store file is missing, damaged, or of a newer schema than this code."""

    exit_code = EXIT_USAGE


class MissingExtraError(UsageError):
    """A command needs an optional extra that is not installed; the message names it."""

    def __init__(self, extra: str, what: str) -> None:
        super().__init__(f"{what} needs the '{extra}' extra: pip install 'llm-curate[{extra}]'")
        self.extra = extra
