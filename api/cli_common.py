"""What every ``copilot`` command shares: consoles, the exit codes of errors, settings and stores."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from api.store import Store, open_database
from copilot.errors import CopilotError, IndexMismatch, ServiceUnavailable
from copilot.settings import Settings
from knowledge.base import KnowledgeBase
from knowledge.ingest import IngestReport
from knowledge.ingest import Progress as IngestProgress
from knowledge.registry import Registry

err = Console(stderr=True)
out = Console()

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]
TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="The tenant (brand).")]


def _exit_code(exc: CopilotError) -> int:
    if isinstance(exc, IndexMismatch):
        return 4
    if isinstance(exc, ServiceUnavailable):
        return 3
    return 2


def _fail(exc: CopilotError, as_json: bool) -> NoReturn:
    if as_json:
        print(json.dumps({"error": {"type": exc.type, "message": exc.message}}))
    # soft_wrap: a message piped to a log or a script is not cut at 80 columns (commands in it stay whole)
    err.print(f"[red]error:[/red] {exc.message}", highlight=False, soft_wrap=True)
    raise typer.Exit(_exit_code(exc))


@contextmanager
def _errors(as_json: bool) -> Iterator[None]:
    try:
        yield
    except CopilotError as exc:
        _fail(exc, as_json)


def _settings() -> Settings:
    return Settings()


def _kb(settings: Settings | None = None) -> KnowledgeBase:
    """The knowledge base on the service database, migrated first (the CLI and the API share it)."""
    settings = settings or _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = open_database(settings.resolved_database_url)
    return KnowledgeBase(settings, registry=Registry(engine, create_schema=False))


def _store() -> Store:
    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Store(open_database(settings.resolved_database_url))


def _registry() -> Registry:
    """The registry alone, for commands that need no model or index (tenants, keys)."""
    return Registry(_store().engine, create_schema=False)


@contextmanager
def _progress(label: str, enabled: bool) -> Iterator[Callable[[IngestProgress], None] | None]:
    if not enabled or not err.is_terminal:
        yield None
        return
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.description}"), console=err, transient=True) as bar:
        task = bar.add_task("", total=None)

        def update(event: IngestProgress) -> None:
            bar.update(task, total=event.total, completed=event.done, description=Path(event.path).name)

        yield update


def _print_failures(report: IngestReport) -> None:
    for failure in report.failed:
        err.print(f"[red]failed:[/red] {failure['path']}: {failure['error']}", highlight=False, soft_wrap=True)


def _print_flagged(report: IngestReport) -> None:
    """The documents whose passages read as prompt injection (stored text: escaped, never read as markup)."""
    for flag in report.flagged:
        out.print(f"[yellow]flagged:[/yellow] {escape(flag['document_id'])}: {flag['passages']} passage(s) read as "
                  f"prompt injection ({escape(', '.join(flag['cues']))}); they are left out of suggestions until "
                  "the document is fixed", highlight=False, soft_wrap=True)


def _emit(as_json: bool, payload: Any, render: Callable[[], None]) -> None:
    if as_json:
        print(json.dumps(payload, default=str))
    else:
        render()
