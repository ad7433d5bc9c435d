"""``copilot eval``: suites (init, run, compare, from-feedback), benchmarks on public datasets, calibration.

Exit codes as for every command (2 invalid input, 3 a backing service unavailable), and for ``eval run``
1 when the run fails its gates: a threshold, a case that could not run, or a regression from the baseline.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from api.cli_common import JsonOpt, TenantOpt, _emit, _errors, _kb, _progress, _settings, _store, err, out
from copilot.errors import InvalidInput, LLMError

if TYPE_CHECKING:
    from evals.contract import BenchmarkResult

# where the repository's datasets live beside a checkout (the default of ``eval benchmark perf --data``)
PERF_DATA = Path("../shared/datasets/doc2dial/doc2dial_rc_val_dmv_ssa_va.csv.gz")

eval_app = typer.Typer(help="Evaluations for QA teams: suites, runs, reports, comparisons; benchmarks.",
                       no_args_is_help=True)


@eval_app.command("benchmark")
def eval_benchmark(
    name: Annotated[str, typer.Argument(help="doc2dial, tweetsumm, banking77, star or perf")],
    data: Annotated[Path | None, typer.Option(help="doc2dial, tweetsumm: the dataset file; star: the dataset "
                                                   "folder (dialogues and tasks/); perf: the doc2dial file whose "
                                                   f"documents fill the tenants (default {PERF_DATA}).")] = None,
    train: Annotated[Path | None, typer.Option(help="banking77: the training file (text,category).")] = None,
    test: Annotated[Path | None, typer.Option(help="banking77: the test file (text,category).")] = None,
    system: Annotated[str, typer.Option(help="doc2dial: copilot, naive (the tutorial baseline), or all.")] = "all",
    engine: Annotated[str | None, typer.Option(
        help="tweetsumm: grounded, llm or both. Default: both when COPILOT_LLM_BASE_URL and COPILOT_LLM_MODEL are "
             "set (the llm engine's ROUGE beside the grounded engine's and Lead's, one model call per dialogue, "
             "with how many of its abstracts fell back to the grounded one), else grounded. llm scores the llm "
             "engine alone beside Lead, so that --out writes its cases. An endpoint that fails on 3 dialogues "
             "in a row stops the run (exit 3).")] = None,
    holdout: Annotated[str | None, typer.Option(help="star: tasks to test on, comma-separated (instead of "
                                                     "task folds).")] = None,
    folds: Annotated[int, typer.Option(min=2, help="star: folds of tasks, each tested on dialogues of tasks its "
                                                   "training never saw; the number of tasks (20) leaves one task "
                                                   "out at a time.")] = 5,
    chunks: Annotated[str, typer.Option(help="perf: tenant sizes in chunks, comma-separated (100000 takes hours "
                                             "on 2 cores).")] = "1000,10000,100000",
    queries: Annotated[int, typer.Option(min=1, max=5000, help="perf: requests per phase and size.")] = 200,
    http: Annotated[bool, typer.Option("--http/--no-http", help="perf: also time copilot serve over HTTP "
                                                                "(cold start, suggestion latency, server RSS).")]
    = True,
    naive: Annotated[bool, typer.Option("--naive/--no-naive", help="perf: also time the naive LangChain + Chroma "
                                                                   "baseline's search (it embeds the data again).")]
    = True,
    keep: Annotated[Path | None, typer.Option(help="perf: keep each size's tenant in this folder; a later run with "
                                                   "the same folder measures all but ingestion on it again "
                                                   "(minutes instead of an hour at 100k).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Also write run.json and report.html here (the "
                                                               "format of eval run); perf: perf.json and "
                                                               "perf.md.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a benchmark on a public dataset; progress on stderr, results on stdout."""
    from evals.benchmarks import banking77, doc2dial, perf, star
    from knowledge.embeddings import embedder_from_settings

    def log(message: str) -> None:
        err.print(message, highlight=False, soft_wrap=True)

    def existing(path: Path | None, option: str) -> Path:
        if path is None:
            raise InvalidInput(f"{name} needs {option} FILE")
        if not path.is_file():
            raise InvalidInput(f"no such file: {path}")
        return path

    def folder(path: Path | None) -> Path:
        if path is None:
            raise InvalidInput(f"{name} needs --data DIR")
        if not path.is_dir():
            raise InvalidInput(f"no such folder: {path}")
        return path

    with _errors(as_json):
        if engine is not None and name != "tweetsumm":
            raise InvalidInput(f"--engine is for tweetsumm, not {name}")
        if name == "doc2dial":
            if system not in ("copilot", "naive", "all"):
                raise InvalidInput(f"unknown system {system!r}; choose copilot, naive or all")
            result = doc2dial.run(existing(data, "--data"), system, embedder_from_settings(_settings()), log=log)
        elif name == "tweetsumm":
            result = _tweetsumm(existing(data, "--data"), engine, log)
        elif name == "banking77":
            result = banking77.run(existing(train, "--train"), existing(test, "--test"),
                                   embedder_from_settings(_settings()), log)
        elif name == "star":
            tasks = [t.strip() for t in holdout.split(",") if t.strip()] if holdout is not None else None
            result = star.run(folder(data), embedder_from_settings(_settings()), log, holdout=tasks, folds=folds)
        elif name == "perf":
            from api.wiring import sample_brand_dir

            sizes = perf.parse_sizes(chunks)
            result = perf.run(sizes, existing(data or PERF_DATA, "--data"), sample_brand_dir(),
                              embedder_from_settings(_settings()), queries=queries, http=http, naive=naive, log=log,
                              keep=keep)
        else:
            raise InvalidInput(f"unknown benchmark {name!r}; available: doc2dial, tweetsumm, banking77, star, perf")
        if out_dir is not None and name == "perf":
            paths = perf.write_report(result, out_dir)
            err.print(f"table: {paths[1]}\nfigures: {paths[0]}", highlight=False, soft_wrap=True)
        elif out_dir is not None:
            from evals.runs import write_run

            dataset = str(data or test)
            paths = write_run(result.to_run(dataset=dataset), out_dir)
            err.print(f"run: {paths[0]}\nreport: {paths[1]}", highlight=False, soft_wrap=True)
    payload = result.as_json()

    def render() -> None:
        if name == "perf":
            header, lines = perf.table(result)
            grid = Table(*header)
            for row in lines:
                verdict = {"pass": "[green]pass[/green]", "FAIL": "[red]FAIL[/red]"}.get(row[-1], "")
                grid.add_row(*row[:-1], verdict)
            out.print(grid)
            return
        rows = [result, *result.others] + ([result.baseline] if result.baseline else [])
        table = Table("system", *result.metrics, "p50 ms", "p95 ms")
        for r in rows:
            table.add_row(r.system, *(f"{v:.3f}" for v in r.metrics.values()),
                          f"{r.latency_ms['p50']:.1f}", f"{r.latency_ms['p95']:.1f}")
        out.print(table)
        for r in rows:  # tweetsumm: how often the llm engine's abstract was not used
            if "fallbacks" in r.details:
                out.print(f"{r.system} ({r.details['model']}): {r.details['fallbacks']} of {r.n} abstracts fell back "
                          f"to the grounded one ({r.details['refused']} refused for stating what the thread does "
                          f"not, {r.details['failed']} failed)", highlight=False, soft_wrap=True)
        for fold in result.details.get("folds", []):  # star: the held-out tasks of each fold
            out.print(f"{', '.join(fold['tasks'])}: n={fold['n']} top1 {fold['top1']:.3f} top3 {fold['top3']:.3f} "
                      f"(bigram {fold['baseline_top1']:.3f} / {fold['baseline_top3']:.3f})", highlight=False)

    _emit(as_json, payload, render)


def _tweetsumm(data: Path, engine: str | None, log: Callable[[str], None]) -> BenchmarkResult:
    """The TweetSumm benchmark with the llm engine beside the grounded one when an LLM is configured."""
    from copilot.drafting import LLMSummarizer
    from copilot.llm import OpenAIChatModel
    from evals.benchmarks import tweetsumm

    chat = OpenAIChatModel.from_settings(_settings()) if engine != "grounded" else None
    chosen = engine or ("both" if chat is not None else "grounded")
    try:
        return tweetsumm.run(data, log, llm=LLMSummarizer(chat) if chat is not None else None,
                             engines=chosen)
    except LLMError as exc:
        raise type(exc)(f"{exc.message}; check COPILOT_LLM_BASE_URL, COPILOT_LLM_MODEL and COPILOT_LLM_API_KEY, "
                       "or pass --engine grounded", **exc.fields) from exc
    finally:
        if chat is not None:
            chat.close()


@eval_app.command("calibrate")
def eval_calibrate(
    data: Annotated[Path, typer.Option("--data", help="A doc2dial file with a 'domain' column (several domains).")],
    limit: Annotated[int, typer.Option(help="Questions to sample (each is asked of its own and another domain).")]
    = 1500,
    as_json: JsonOpt = False,
) -> None:
    """Measure the grounded engine's confidence and its 'nothing fits' threshold on doc2dial."""
    from evals import calibration
    from knowledge.embeddings import embedder_from_settings

    with _errors(as_json):
        if limit < 50:
            raise InvalidInput("--limit must be at least 50 for the threshold to mean anything")
        result = calibration.run(data, embedder_from_settings(_settings()), lambda m: err.print(m, highlight=False),
                                 limit=limit)
    _emit(as_json, result, lambda: out.print_json(json.dumps(result)))


# --- suites ------------------------------------------------------------------------------------

def _sample_suite() -> Path:
    from api.wiring import sample_brand_dir

    return sample_brand_dir() / "evals" / "suite.jsonl"


@eval_app.command("init")
def eval_init(
    folder: Annotated[Path, typer.Argument(help="Where to write suite.jsonl and the knowledge it runs on.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite a suite already there.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write the sample brand's example suite (DIR/suite.jsonl) and its knowledge (DIR/knowledge/)."""
    from api.wiring import sample_brand_dir
    from evals.suite import load_suite

    suite_path = folder / "suite.jsonl"
    with _errors(as_json):
        if suite_path.exists() and not force:
            raise InvalidInput(f"{suite_path} exists; pass --force to overwrite it")
        suite = load_suite(_sample_suite())
        suite.meta.knowledge = "knowledge"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            knowledge = folder / "knowledge"
            if knowledge.exists():
                shutil.rmtree(knowledge)
            shutil.copytree(sample_brand_dir(), knowledge, ignore=shutil.ignore_patterns("evals"))
            suite_path.write_text(suite.to_jsonl(), encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot write to {folder}: {exc.strerror or exc}") from exc
    payload = {"suite": str(suite_path), "knowledge": str(folder / "knowledge"), "cases": len(suite.cases)}
    _emit(as_json, payload, lambda: out.print(
        f"wrote {suite_path} ({len(suite.cases)} cases) and the sample brand's knowledge in {folder / 'knowledge'}\n"
        f"run it: copilot eval run {suite_path}", highlight=False, soft_wrap=True))


def _case_bar(enabled: bool) -> Any:
    if not enabled or not err.is_terminal:
        return None
    return Progress(TextColumn("eval"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    TextColumn("{task.description}"), console=err, transient=True)


def _print_run(run: dict[str, Any], paths: tuple[Path, Path] | None) -> None:
    comparison = run.get("comparison", {}).get("metrics", {})
    gates = {g["metric"]: g for g in run.get("thresholds", [])}
    table = Table("metric", "value", "95% interval", "n", "threshold", "vs baseline")
    for name, m in run.get("metrics", {}).items():
        fmt = "{:.1f}" if m.get("unit") == "ms" else "{:.3f}"
        gate = gates.get(name)
        threshold = "" if gate is None else (f"{'≥' if gate['bound'] == 'min' else '≤'} {gate['threshold']:g} "
                                             f"{'ok' if gate['passed'] else 'FAIL'}")
        diff = comparison.get(name)
        moved = "" if diff is None else f"{diff['delta']:+.3f} {diff['direction']}"
        table.add_row(name, fmt.format(m["value"]), f"{fmt.format(m['ci'][0])} to {fmt.format(m['ci'][1])}",
                      str(m["n"]), threshold, moved)
    out.print(table)
    for gate in run.get("thresholds", []):
        if gate["metric"] not in run.get("metrics", {}):
            out.print(f"[red]FAIL[/red] {gate['metric']}: not measured by this suite", highlight=False)
    for case in run.get("cases", []):
        if case.get("error"):
            out.print(f"[red]error[/red] case {case['id']}: {case['error']}", highlight=False, soft_wrap=True)
    for name in run.get("comparison", {}).get("regressions", []):
        out.print(f"[red]regression[/red] {name}: worse than the baseline beyond its 95% interval", highlight=False)
    verdict = "[green]PASS[/green]" if run["passed"] else "[red]FAIL[/red]"
    out.print(f"{verdict} {run['name']}: {len(run.get('cases', []))} cases, {run.get('errors', 0)} errors",
              highlight=False)
    if paths:
        out.print(f"run: {paths[0]}\nreport: {paths[1]}", highlight=False, soft_wrap=True)


@eval_app.command("run")
def eval_run(
    suite_file: Annotated[Path, typer.Argument(help="The suite (JSONL: a metadata line, then cases).")],
    engine: Annotated[str | None, typer.Option(help="grounded or llm; default: the suite's engine.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for run.json and report.html; default "
                                                               "eval-runs/<run id>.")] = None,
    baseline: Annotated[Path | None, typer.Option(help="A run.json to compare with, case by case; a metric "
                                                       "significantly worse fails the run.")] = None,
    fail_under: Annotated[list[str] | None, typer.Option(
        "--fail-under", help="METRIC=VALUE: a threshold beside the suite's (repeatable); for *_ms metrics, the "
                             "most allowed.")] = None,
    url: Annotated[str | None, typer.Option(help="Run against this server instead of in this process.")] = None,
    key: Annotated[str | None, typer.Option(help="The API key for --url (agent or admin of the suite's tenant); "
                                                 "default: COPILOT_API_KEY.", envvar="COPILOT_API_KEY")] = None,
    judge: Annotated[bool, typer.Option("--judge", help="Also grade every offered reply with an LLM judge "
                                                        "(faithfulness, helpfulness) at COPILOT_LLM_*.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a suite through the engines; write run.json and report.html; exit 1 when its gates fail."""
    from api.evals import run_in_process
    from evals.remote import HttpTarget
    from evals.runner import CaseProgress, run_suite
    from evals.runs import check_threshold_names, parse_fail_under, read_run, write_run
    from evals.suite import load_suite

    with _errors(as_json):
        suite = load_suite(suite_file)
        extra = parse_fail_under(fail_under or [])
        check_threshold_names({**suite.meta.thresholds, **extra})
        if engine not in (None, "grounded", "llm"):
            raise InvalidInput(f"unknown engine {engine!r}; use grounded or llm")
        base = read_run(baseline) if baseline is not None else None
        grader = None
        if judge:
            from copilot.llm import OpenAIChatModel

            grader = OpenAIChatModel.from_settings(_settings())
            if grader is None:
                raise InvalidInput("--judge needs an LLM: set COPILOT_LLM_BASE_URL and COPILOT_LLM_MODEL")
        bar = _case_bar(not as_json)
        task = bar.add_task("", total=len(suite.cases)) if bar else None

        def progress(event: CaseProgress) -> None:
            if bar is not None and task is not None:
                bar.update(task, completed=event.done, description=event.case_id)

        if bar is not None:
            bar.start()
        try:
            if url is not None:
                if not key:
                    raise InvalidInput("--url needs --key (or COPILOT_API_KEY): an agent or admin key of the "
                                       f"tenant {suite.meta.tenant!r}")
                target = HttpTarget(url, key)
                try:
                    run = run_suite(suite, target, engine=engine, thresholds=extra, baseline=base, progress=progress,
                                    judge=grader)
                finally:
                    target.close()
            else:
                with _progress("indexing the suite's knowledge", not as_json) as ingest_progress:
                    run = run_in_process(suite, _settings(), engine=engine, thresholds=extra, baseline=base,
                                         progress=progress, make_kb=_kb, ingest_progress=ingest_progress,
                                         judge=grader)
        finally:
            if bar is not None:
                bar.stop()
        paths = write_run(run, out_dir or Path("eval-runs") / run["id"], base)
    if as_json:
        print(json.dumps({k: v for k, v in run.items() if k != "cases"} | {"run_file": str(paths[0]),
                                                                           "report": str(paths[1])}, default=str))
    else:
        _print_run(run, paths)
    if not run["passed"]:
        raise typer.Exit(1)


@eval_app.command("compare")
def eval_compare(
    a: Annotated[Path, typer.Argument(help="The baseline run.json (or its folder).")],
    b: Annotated[Path, typer.Argument(help="The new run.json (or its folder).")],
    fail_on_regression: Annotated[bool, typer.Option(help="Exit 1 when a metric got significantly worse.")]
    = False,
    as_json: JsonOpt = False,
) -> None:
    """Which metrics moved from A to B beyond their 95% interval (paired bootstrap over shared cases)."""
    from evals.runs import compare, read_run

    with _errors(as_json):
        result = compare(read_run(a), read_run(b))

    def render() -> None:
        table = Table("metric", "A", "B", "B - A", "95% interval", "n", "moved")
        for name, m in result["metrics"].items():
            ci = "" if m["ci"] is None else f"{m['ci'][0]:+.3f} to {m['ci'][1]:+.3f}"
            style = {"worse": "red", "better": "green"}.get(m["direction"], "")
            moved = f"[{style}]{m['direction']}[/{style}]" if style else m["direction"]
            table.add_row(name, f"{m['a']:.3f}", f"{m['b']:.3f}", f"{m['delta']:+.3f}", ci, str(m["n"] or ""), moved)
        out.print(table)
        out.print(f"{result['shared_cases']} shared cases; {len(result['cases'])} changed; only in A: "
                  f"{len(result['only_in_baseline'])}, only in B: {len(result['only_in_run'])}", highlight=False)
        for case in result["cases"][:20]:
            moves = ", ".join(f"{k} {v[0]:.2f}->{v[1]:.2f}" for k, v in case["scores"].items())
            out.print(f"  {case['id']}: {moves}", highlight=False, soft_wrap=True)
        if result["regressions"]:
            out.print(f"[red]worse:[/red] {', '.join(result['regressions'])}", highlight=False)
        if result["improvements"]:
            out.print(f"[green]better:[/green] {', '.join(result['improvements'])}", highlight=False)
        if not result["regressions"] and not result["improvements"]:
            out.print("no metric moved beyond its 95% interval")

    _emit(as_json, result, render)
    if fail_on_regression and result["regressions"]:
        raise typer.Exit(1)


@eval_app.command("from-feedback")
def eval_from_feedback(
    tenant: TenantOpt,
    out_file: Annotated[Path, typer.Option("--out", help="The suite file to write.")] = Path("feedback-suite.jsonl"),
    days: Annotated[int, typer.Option(min=1, max=3650, help="Feedback of the last N days.")] = 90,
    as_json: JsonOpt = False,
) -> None:
    """Turn accepted and edited suggestions into a regression suite (the final text is the reference)."""
    from api.feedback_suite import feedback_suite

    with _errors(as_json):
        suite = feedback_suite(_store(), tenant, days=days)
        try:
            out_file.parent.mkdir(parents=True, exist_ok=True)
            out_file.write_text(suite.to_jsonl(), encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot write {out_file}: {exc.strerror or exc}") from exc
    payload = {"suite": str(out_file), "cases": len(suite.cases)}
    _emit(as_json, payload, lambda: out.print(
        f"wrote {out_file}: {len(suite.cases)} cases from accepted and edited suggestions of the last {days} days",
        highlight=False, soft_wrap=True))
