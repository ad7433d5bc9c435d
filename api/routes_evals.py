"""What QA teams call: eval runs of a suite on the tenant's live knowledge, as jobs, with their reports."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, JSONResponse

from api.auth import Permission, Principal
from api.deps import caller, problems
from api.schemas_evals import EvalAccepted, EvalComparison, EvalList, EvalRequest, EvalSummary, EvalView
from api.service import Service
from copilot.errors import NotFound
from evals.report import render
from evals.runs import compare
from evals.suite import SuiteMeta, build_suite

RunId = Annotated[str, Path(max_length=40, description="The run id (the job that ran it).")]


def router(service: Service) -> APIRouter:
    api = APIRouter(prefix="/v1")
    QA = Annotated[Principal, Depends(caller(service, Permission.EVALS))]

    @api.post("/evals", status_code=202, response_model=EvalAccepted, responses=problems(404, 413, 415),
              tags=["evals"], summary="Run a suite on the tenant's live knowledge (a job: poll its Location).")
    def start(body: EvalRequest, who: QA) -> JSONResponse:
        meta = SuiteMeta(name=body.name, tenant=who.tenant, description=body.description, engine=body.engine,
                         k=body.k, thresholds=body.thresholds)
        run_id = service.start_eval(who, build_suite(meta, body.cases), engine=body.engine,
                                    baseline_run_id=body.baseline_run_id)
        return JSONResponse(EvalAccepted(id=run_id).model_dump(mode="json"), status_code=202,
                            headers={"Location": f"/v1/evals/{run_id}"})

    @api.get("/evals", response_model=EvalList, responses=problems(), tags=["evals"],
             summary="The tenant's finished eval runs, newest first.")
    def list_runs(who: QA, limit: Annotated[int, Query(ge=1, le=500, description="At most.")] = 100) -> EvalList:
        return EvalList(runs=[EvalSummary(**r) for r in service.store.eval_runs(who.tenant, limit)])

    @api.get("/evals/compare", response_model=EvalComparison, responses=problems(404), tags=["evals"],
             summary="Which metrics moved from run a to run b beyond their 95% interval, case by case.")
    def compare_runs(who: QA, a: Annotated[str, Query(max_length=40, description="The baseline run id.")],
                     b: Annotated[str, Query(max_length=40, description="The run to compare with it.")]
                     ) -> EvalComparison:
        runs = []
        for run_id in (a, b):
            run = service.store.eval_run(who.tenant, run_id)
            if run is None:
                raise NotFound(f"no finished eval run {run_id!r}", run_id=run_id)
            runs.append(run)
        return EvalComparison(**compare(runs[0], runs[1]))

    @api.get("/evals/{run_id}", response_model=EvalView, responses=problems(404), tags=["evals"],
             summary="An eval run: progress while it runs, then the whole run with its metrics and cases.")
    def get_run(run_id: RunId, who: QA) -> EvalView:
        job = service.store.job(who.tenant, run_id)
        if job.kind != "eval":
            raise NotFound(f"no eval run {run_id!r}", run_id=run_id)
        run = service.store.eval_run(who.tenant, run_id) if job.status == "succeeded" else None
        return EvalView(id=job.id, status=job.status, done=job.done, total=job.total,
                        progress=round(job.done / job.total, 4) if job.total else 0.0, current=job.current,
                        error=job.error, passed=run["passed"] if run else None, run=run,
                        report_url=f"/v1/evals/{run_id}/report" if run else None)

    @api.get("/evals/{run_id}/report", response_class=HTMLResponse, responses=problems(404), tags=["evals"],
             summary="A finished eval run's HTML report (self-contained: charts, worst cases, comparison).")
    def report(run_id: RunId, who: QA) -> HTMLResponse:
        run = service.store.eval_run(who.tenant, run_id)
        if run is None:
            raise NotFound(f"no finished eval run {run_id!r}", run_id=run_id)
        baseline_id = (run.get("comparison") or {}).get("baseline", {}).get("id")
        baseline = service.store.eval_run(who.tenant, baseline_id) if baseline_id else None
        return HTMLResponse(render(run, baseline), headers={"Content-Security-Policy": "default-src 'none'; "
                                                             "style-src 'unsafe-inline'; img-src data:"})

    return api
