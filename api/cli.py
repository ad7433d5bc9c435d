"""The ``copilot`` command line: tenants, knowledge, benchmarks, the server and the demo.

Exit codes: 0 success; 1 some files failed (the rest was ingested); 2 invalid input; 3 a backing
service is unavailable (or its disk is full or read-only); 4 the index was built with another embedding
model (reindex), or `knowledge check` found it out of step with the registry; 70 an internal error (a bug:
please report it); 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from api.auth import open_rate_limit_storage
from api.cli_common import (
    JsonOpt,
    TenantOpt,
    _emit,
    _errors,
    _fail,
    _kb,
    _print_failures,
    _print_flagged,
    _progress,
    _registry,
    _settings,
    _store,
    err,
    out,
)
from api.cli_evals import eval_app
from api.store import Store
from api.wiring import Engines, read_thread, thread_tenant
from copilot.conversation import Thread
from copilot.errors import InvalidInput
from knowledge.embeddings import embedder_from_settings
from knowledge.registry import Registry

app = typer.Typer(help="Agent-assist copilot: grounded reply suggestions, summaries and next-best actions.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
tenants_app = typer.Typer(help="Create and list tenants (brands).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)
knowledge_app = typer.Typer(help="Ingest, list, search and maintain a tenant's knowledge.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.add_typer(knowledge_app, name="knowledge")
app.add_typer(eval_app, name="eval")


# --- tenants ----------------------------------------------------------------------------------

@tenants_app.command("create")
def tenants_create(name: Annotated[str, typer.Argument(help="Short name: a-z, 0-9, '-', '_'.")],
                   display_name: Annotated[str | None, typer.Option(help="Name shown to people.")] = None,
                   as_json: JsonOpt = False) -> None:
    """Create a tenant (a brand with its own knowledge, voice and data)."""
    with _errors(as_json):
        _registry().create_tenant(name, display_name)
    _emit(as_json, {"tenant": name}, lambda: out.print(f"created tenant {name}"))


@tenants_app.command("list")
def tenants_list(as_json: JsonOpt = False) -> None:
    """List the tenants."""
    with _errors(as_json):
        names = _registry().tenants()
    _emit(as_json, {"tenants": names}, lambda: out.print("\n".join(names) or "no tenants yet"))


# --- keys -------------------------------------------------------------------------------------

RoleOpt = Annotated[str, typer.Option("--role", "-r", help="agent, content, qa or admin.")]


@keys_app.command("create")
def keys_create(tenant: TenantOpt, role: RoleOpt,
                name: Annotated[str, typer.Option(help="A label: the console or person it is for.")] = "",
                as_json: JsonOpt = False) -> None:
    """Create an API key. The key is printed this once; only its hash is stored."""
    with _errors(as_json):
        store = _store()
        Registry(store.engine, create_schema=False).require_tenant(tenant)
        record, secret = store.create_key(tenant, role, name)
    payload = {"id": record.id, "key": secret, "tenant": record.tenant, "role": record.role}

    def render() -> None:
        out.print(secret, highlight=False, soft_wrap=True)
        err.print(f"key {record.id} ({record.role} of {record.tenant}); store it now, it is not shown again")

    _emit(as_json, payload, render)


@keys_app.command("list")
def keys_list(tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="Only this tenant.")] = None,
              as_json: JsonOpt = False) -> None:
    """List API keys (never their secrets)."""
    with _errors(as_json):
        keys = _store().keys(tenant)
    rows = [{"id": k.id, "tenant": k.tenant, "role": k.role, "name": k.name, "created_at": k.created_at,
             "revoked_at": k.revoked_at} for k in keys]

    def render() -> None:
        table = Table("id", "tenant", "role", "name", "created", "revoked")
        for r in rows:
            table.add_row(str(r["id"]), str(r["tenant"]), str(r["role"]), str(r["name"]),
                          f"{r['created_at']:%Y-%m-%d %H:%M}",
                          f"{r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else "")
        out.print(table)

    _emit(as_json, {"keys": rows}, render)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id (key_...), not the secret.")],
                as_json: JsonOpt = False) -> None:
    """Revoke an API key: the next request with it is refused."""
    with _errors(as_json):
        record = _store().revoke_key(key_id)
    _emit(as_json, {"id": record.id, "revoked_at": record.revoked_at},
          lambda: out.print(f"revoked {record.id}"))


# --- knowledge --------------------------------------------------------------------------------

@knowledge_app.command("ingest")
def knowledge_ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to ingest.")],
    tenant: TenantOpt,
    prune: Annotated[bool, typer.Option(help="Remove documents of the tenant that are no longer present.")] = False,
    by: Annotated[str, typer.Option(help="Who made this change (recorded with each version).")] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Ingest Markdown, HTML, PDF, DOCX, text, FAQ CSV/JSON, brand voice, macros and playbooks.

    Unchanged documents are skipped; changed ones replace all their chunks; a file that fails is reported
    and skipped (exit code 1) while the rest goes on.
    """
    with _errors(as_json):
        kb = _kb()
        with _progress("ingesting", not as_json) as progress:
            report = kb.ingest(tenant, paths, prune=prune, by=by, progress=progress)
        if report.added or report.updated or report.removed:
            kb.retriever.index(tenant)  # saves the BM25 index, so the next process to start loads it (8 s at 100k)

    def render() -> None:
        out.print(f"[bold]{tenant}[/bold]: {report.added} added, {report.updated} updated, "
                  f"{report.unchanged} unchanged, {report.removed} removed documents; "
                  f"{report.chunks} chunks indexed, {report.chunks_removed} removed"
                  + (f"; {report.ignored} files of other types ignored" if report.ignored else ""))
        if report.repaired:
            err.print(f"[yellow]repaired:[/yellow] the vector index was out of step with the registry (an "
                      f"interrupted ingest or a lost file): {report.repaired['orphans']} vectors of no live chunk "
                      f"removed, {report.repaired['missing']} missing and {report.repaired['unreachable']} "
                      "unreachable ones embedded again", highlight=False, soft_wrap=True)
        _print_flagged(report)
        _print_failures(report)

    _emit(as_json, report.as_json(), render)
    if report.failed:
        raise typer.Exit(1)


@knowledge_app.command("list")
def knowledge_list(tenant: TenantOpt,
                   kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
                   as_json: JsonOpt = False) -> None:
    """List a tenant's documents with their version, chunks and last change."""
    with _errors(as_json):
        docs = _kb().documents(tenant, kind)

    def render() -> None:
        flagged = any(d.flagged for d in docs)  # the column shows only when needed: it costs width
        table = Table("document", "kind", "title", "version", "chunks", "updated", "by", *(["flag"] * flagged))
        for d in docs:
            table.add_row(d.document_id, d.kind, d.title, str(d.version), str(d.chunk_count),
                          d.updated_at.strftime("%Y-%m-%d %H:%M"), d.updated_by,
                          *([Text("!" if d.flagged else "", style="bold yellow")] * flagged))
        out.print(table)
        if flagged:
            out.print("flag !: passages read as prompt injection and are left out of suggestions "
                      "(copilot knowledge show DOCUMENT_ID for the cues and excerpts)", highlight=False, soft_wrap=True)

    _emit(as_json, {"documents": [_doc_json(d) for d in docs]}, render)


def _doc_json(d: Any) -> dict[str, Any]:
    return {"document_id": d.document_id, "title": d.title, "kind": d.kind, "source": d.source,
            "locale": d.locale, "tags": d.tags, "version": d.version, "chunks": d.chunk_count,
            "content_hash": d.content_hash, "updated_at": d.updated_at.isoformat(), "updated_by": d.updated_by,
            "flagged": d.flagged}


@knowledge_app.command("show")
def knowledge_show(document_id: str, tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """Show one document and its version history (who, when, hash)."""
    with _errors(as_json):
        kb = _kb()
        doc = kb.document(tenant, document_id)
        history = kb.history(tenant, document_id)
    payload = _doc_json(doc) | {"history": [
        {"version": h.version, "action": h.action, "content_hash": h.content_hash, "chunks": h.chunk_count,
         "at": h.at.isoformat(), "by": h.by} for h in history]}

    def render() -> None:
        out.print(f"[bold]{doc.title}[/bold] ({doc.kind}) {doc.document_id}\nsource: {doc.source}\n"
                  f"version {doc.version}, {doc.chunk_count} chunks, tags: {', '.join(doc.tags) or '-'}")
        for h in history:
            out.print(f"  v{h.version} {h.action:8} {h.at:%Y-%m-%d %H:%M} by {h.by} {h.content_hash[:12]}")
        if doc.flagged:
            out.print(Text(f"flagged: {doc.flagged['passages']} passage(s) read as prompt injection "
                           f"({', '.join(doc.flagged['cues'])}); left out of suggestions", style="yellow"))
            for excerpt in doc.flagged["excerpts"]:
                out.print(Text(f"  [{excerpt['section'] or '-'}] {excerpt['text']}"), soft_wrap=True)

    _emit(as_json, payload, render)


@knowledge_app.command("remove")
def knowledge_remove(document_id: str, tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """Remove a document and all of its chunks."""
    with _errors(as_json):
        chunks = _kb().remove(tenant, document_id)
    _emit(as_json, {"removed": document_id, "chunks": chunks},
          lambda: out.print(f"removed {document_id} ({chunks} chunks)"))


@knowledge_app.command("reindex")
def knowledge_reindex(tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """Rebuild the tenant's vector index from the registry (after a model change or a lost index)."""
    with _errors(as_json):
        kb = _kb()
        with _progress("re-embedding", not as_json) as progress:
            count = kb.reindex(tenant, progress)
    _emit(as_json, {"tenant": tenant, "chunks": count}, lambda: out.print(f"reindexed {count} chunks"))


@knowledge_app.command("check")
def knowledge_check(tenant: TenantOpt,
                    repair: Annotated[bool, typer.Option(help="Mend what disagrees from the registry.")] = False,
                    as_json: JsonOpt = False) -> None:
    """Compare the vector index with the registry, its source of truth: vectors missing, of no live chunk, or
    that no query reaches (Chroma's graph files lost in a crash). Exit code 4 when they disagree; with --repair
    the index is mended (every ingest also does it first) and checked again."""
    with _errors(as_json):
        kb = _kb()
        if repair:
            with _progress("re-embedding", not as_json) as progress:
                found = kb.repair(tenant, progress)
            now = kb.check(tenant)
        else:
            found = now = kb.check(tenant)
    payload = {"tenant": tenant, "ok": now.ok, "kinds": [k.as_json() for k in now.kinds]}
    if repair:
        payload["before"] = found.as_json()["kinds"]

    def render() -> None:
        table = Table("kind", "chunks", "vectors", "missing", "orphans", "unreachable", "ok")
        for kind in found.kinds:  # as found: before the repair, if any
            table.add_row(kind.kind, str(kind.chunks), str(kind.vectors), str(len(kind.missing)),
                          str(len(kind.orphans)), str(kind.unreachable), "yes" if kind.ok else "NO")
        out.print(table)
        if repair and not found.ok and now.ok:
            out.print("repaired: the index matches the registry again", highlight=False)

    _emit(as_json, payload, render)
    if not now.ok:
        err.print(f"[red]error:[/red] the vector index of {tenant} is out of step with the registry: run "
                  f"`copilot knowledge check --tenant {tenant} --repair`", highlight=False, soft_wrap=True)
        raise typer.Exit(4)


@knowledge_app.command("search")
def knowledge_search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    tenant: TenantOpt,
    k: Annotated[int, typer.Option("-k", help="How many passages.", min=1, max=100)] = 5,
    kind: Annotated[list[str] | None, typer.Option(help="Kinds to search (article, faq, macro, playbook).")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Only passages with one of these tags.")] = None,
    locale: Annotated[str | None, typer.Option(help="Only passages in this language.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search a tenant's knowledge (hybrid dense + lexical retrieval)."""
    with _errors(as_json):
        passages = _kb().search(tenant, query, k, kinds=kind, tags=tag, locale=locale)
    payload = {"results": [{"document_id": p.document_id, "title": p.title, "section": p.section,
                            "text": p.text, "score": p.score, "source": p.source, "kind": p.kind}
                           for p in passages]}

    def render() -> None:
        if not passages:
            out.print("no results")
        for rank, p in enumerate(passages, start=1):
            where = f"{p.title} > {p.section}" if p.section else p.title
            out.print(f"[bold]{rank}. {where}[/bold]  [dim]{p.score:.4f} {p.source}[/dim]", highlight=False)
            out.print(p.text, highlight=False)
            out.print()

    _emit(as_json, payload, render)


# --- engines -----------------------------------------------------------------------------------

ThreadArg = Annotated[Path, typer.Argument(help="A thread JSON file, as a console sends it.")]
EngineOpt = Annotated[str | None, typer.Option(
    "--engine", help="grounded (no LLM) or llm; default: llm when COPILOT_LLM_* is set, else grounded.")]
ThreadTenantOpt = Annotated[str | None, typer.Option(
    "--tenant", "-t", help="The tenant (brand); default: the thread's own 'tenant' field.")]


def _thread_and_tenant(path: Path, tenant: str | None) -> tuple[Thread, str]:
    thread = read_thread(path)
    return thread, thread_tenant(thread, tenant, how_to_name="pass --tenant or set 'tenant' in the thread file")


@app.command()
def suggest(thread_file: ThreadArg, tenant: ThreadTenantOpt = None, engine: EngineOpt = None,
            n: Annotated[int, typer.Option("-n", help="How many suggestions, 1 to 10.")] = 3,
            as_json: JsonOpt = False) -> None:
    """Reply suggestions for a thread, grounded in the tenant's knowledge, in its voice."""
    with _errors(as_json):
        thread, tenant_name = _thread_and_tenant(thread_file, tenant)
        settings = _settings()
        result = Engines(_kb(settings), settings).suggest(tenant_name, thread, engine=engine, n=n)

    def render() -> None:
        if result.fallback_from:
            err.print(f"[yellow]note:[/yellow] {result.note}", highlight=False, soft_wrap=True)
        elif result.note:
            out.print(f"[dim]{result.note}[/dim]", highlight=False, soft_wrap=True)
        for number, item in enumerate(result.suggestions, start=1):
            out.print(f"[bold]{number}. {item.source}[/bold] (confidence {item.confidence:.2f}"
                      + (f", {item.sms_segments} SMS segment(s)" if item.sms_segments else "") + ")",
                      highlight=False)
            out.print(item.text, highlight=False, soft_wrap=True)
            for citation in item.citations:
                where = f"{citation.title} > {citation.section}" if citation.section else citation.title
                out.print(f"   [dim]source: {citation.document_id} ({where})[/dim]", highlight=False)
            for check in item.checks:
                for line in [*check.changes, *check.violations]:
                    out.print(f"   [dim]{check.name}: {line}[/dim]", highlight=False, soft_wrap=True)

    _emit(as_json, result.model_dump(mode="json"), render)


@app.command()
def summarize(thread_file: ThreadArg, tenant: ThreadTenantOpt = None,
              style: Annotated[str, typer.Option(help="catch_up, handoff or after_contact.")] = "after_contact",
              engine: EngineOpt = None, as_json: JsonOpt = False) -> None:
    """A structured summary of a thread: intent, facts (masked), actions, status, next steps, sentiment."""
    with _errors(as_json):
        thread, tenant_name = _thread_and_tenant(thread_file, tenant)
        settings = _settings()
        result = Engines(_kb(settings), settings).summarize(tenant_name, thread, style=style,
                                                                      engine=engine)

    def render() -> None:
        out.print(result.abstract, highlight=False, soft_wrap=True)
        table = Table(show_header=False, box=None)
        table.add_row("status", str(result.status or "-"))
        table.add_row("intent", result.intent.name if result.intent else "-")
        table.add_row("issue", result.issue or "-")
        table.add_row("facts", ", ".join(f"{f.kind} {f.value}" for f in result.facts) or "-")
        table.add_row("done", "\n".join(result.actions) or "-")
        table.add_row("next", "\n".join(f"{s.owner}: {s.text}" for s in result.next_steps) or "-")
        if result.sentiment:
            table.add_row("sentiment", f"{result.sentiment.direction} ({result.sentiment.start:+.2f} -> "
                                       f"{result.sentiment.end:+.2f})")
        out.print(table)

    _emit(as_json, result.model_dump(mode="json"), render)


@app.command("next-actions")
def next_actions(thread_file: ThreadArg, tenant: ThreadTenantOpt = None,
                 done: Annotated[list[str] | None, typer.Option(
                     "--done", help="A step id or action the console already did (repeatable).")] = None,
                 n: Annotated[int, typer.Option("-n", help="How many actions, 1 to 10.")] = 3,
                 as_json: JsonOpt = False) -> None:
    """The next steps of the playbook that applies, what agents did next in similar past threads, and advice to
    escalate or change channel."""
    with _errors(as_json):
        if not 1 <= n <= 10:
            raise InvalidInput("-n must be between 1 and 10")
        thread, tenant_name = _thread_and_tenant(thread_file, tenant)
        settings = _settings()
        result = Engines(_kb(settings), settings).next_actions(tenant_name, thread,
                                                                         done_actions=done or (), n=n)

    def render() -> None:
        if result.playbook:
            done_steps = ", ".join(d.step_id for d in result.playbook.done) or "none yet"
            out.print(f"playbook: {result.playbook.name} (done: {done_steps})", highlight=False)
        else:
            out.print("no playbook applies", highlight=False)
        for number, action in enumerate(result.actions, start=1):
            out.print(f"[bold]{number}. {action.title or action.action}[/bold] [dim]({action.kind})[/dim]",
                      highlight=False)
            out.print(f"   {action.reason}", highlight=False, soft_wrap=True)

    _emit(as_json, result.model_dump(mode="json"), render)


WORKER_HEALTHCHECK_S = 60


@app.command()
def serve(host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port.")] = 8000,
          workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes (more than one needs "
                                                                   "COPILOT_CHROMA_URL: a Chroma server).")] = 1,
          ) -> None:
    """Run the HTTP API (JSON logs on stderr, one line per request)."""
    import uvicorn

    settings = _settings()
    if workers > 1 and not settings.chroma_url:
        _fail(InvalidInput("several workers cannot share the embedded Chroma index: set COPILOT_CHROMA_URL to a "
                           "Chroma server (chroma run --path DIR --port P)"), False)
    if workers > 1 and settings.rate_limit_storage.startswith("memory:"):
        err.print(f"warning: each of the {workers} workers counts the rate limit on its own, so a key gets "
                  f"{workers} times COPILOT_RATE_LIMIT; set COPILOT_RATE_LIMIT_STORAGE=redis://host:6379/0 to "
                  "share one budget", highlight=False)
    with _errors(False):
        _store().engine.dispose()  # migrate once, before any worker starts
        open_rate_limit_storage(settings.rate_limit_storage)  # a wrong or dead storage is told here, once
        # a misconfigured model is told here, not in a worker; the local model's ONNX export is made once
        embedder_from_settings(settings)
    if workers > 1:  # the supervisor's own lines (a worker that died and was started again) as JSON logs too
        from api.observability import configure_logging

        configure_logging(settings.log_level)
    # uvicorn kills a worker that does not answer its health check in 5 s: a worker still starting (the model,
    # the migrations) or busy on a loaded machine was killed and started again, over and over
    uvicorn.run("api.app:create_app_from_env", factory=True, host=host, port=port, workers=workers,
                access_log=False, log_config=None, timeout_worker_healthcheck=WORKER_HEALTHCHECK_S)


@app.command()
def demo(host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
         port: Annotated[int, typer.Option(help="Port.")] = 8000,
         serve_: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the API after loading.")] = True,
         ) -> None:
    """Load the sample brand (Brightwave Mobile) and start the service."""
    from api.wiring import SAMPLE_BRAND, sample_brand_dir

    with _errors(False):
        kb = _kb()
        kb.ensure_tenant(SAMPLE_BRAND)
        with _progress("loading sample brand", True) as progress:
            report = kb.ingest(SAMPLE_BRAND, [sample_brand_dir()], prune=True, by="demo", progress=progress)
    out.print(f"sample brand {SAMPLE_BRAND!r}: {report.added} added, {report.updated} updated, "
              f"{report.unchanged} unchanged documents ({report.chunks} chunks indexed)")
    _print_flagged(report)
    _print_failures(report)
    if report.failed:
        raise typer.Exit(1)
    with _errors(False):
        keys = _demo_keys(_store())
    out.print(f"agent key of {SAMPLE_BRAND}: {keys['agent']}\nadmin key: {keys['admin']}  "
              f"(kept in {_settings().data_dir / DEMO_KEYS})", highlight=False, soft_wrap=True)
    if serve_:
        out.print(f"try: curl -H 'Authorization: Bearer {keys['agent']}' "
                  f"'http://{host}:{port}/v1/knowledge/search?q=charged+twice'", highlight=False, soft_wrap=True)
        out.print(f"pages: http://{host}:{port}/app/ (sign in with one of the keys above)", highlight=False,
                  soft_wrap=True)
        serve(host, port)


DEMO_KEYS = "demo-keys.json"


def _demo_keys(store: Store) -> dict[str, str]:
    """The sample brand's agent and admin keys: made once and kept (mode 0600) in the data directory, so
    the demo can be restarted without a new key each time; a revoked one is replaced."""
    from api.wiring import SAMPLE_BRAND

    path = _settings().data_dir / DEMO_KEYS
    kept: dict[str, str] = {}
    if path.is_file():
        try:
            kept = {k: v for k, v in json.loads(path.read_text()).items() if isinstance(v, str)}
        except (OSError, ValueError):
            kept = {}
    for role in ("agent", "admin"):
        live = kept.get(role) and store.authenticate(kept[role])
        if not live:
            kept[role] = store.create_key(SAMPLE_BRAND, role, f"demo {role}")[1]
    path.write_text(json.dumps(kept))
    path.chmod(0o600)
    return kept


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted; documents already committed stay indexed, the rest can be ingested again")
        sys.exit(130)
    except Exception as exc:  # a bug of ours: say so plainly, with the type for the report
        if "--json" in sys.argv:
            print(json.dumps({"error": {"type": "internal", "message": f"{type(exc).__name__}: {exc}"}}))
        err.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc}", highlight=False, soft_wrap=True)
        sys.exit(70)


if __name__ == "__main__":
    main()
