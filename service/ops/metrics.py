"""GET /metrics: the Prometheus scrape (service.core.metrics says what it holds)."""

from fastapi import APIRouter, Request, Response

from service.core.metrics import exposition

router = APIRouter(tags=["metrics"])

# An excerpt of each format, for the docs.
PROMETHEUS_EXAMPLE = """\
# HELP backprop_jobs Jobs in the database by state
# TYPE backprop_jobs gauge
backprop_jobs{state="queued"} 2.0
backprop_jobs{state="running"} 1.0
backprop_jobs{state="succeeded"} 40.0
# HELP backprop_job_claims_total Jobs claimed from the queue by workers
# TYPE backprop_job_claims_total counter
backprop_job_claims_total 43.0
"""
OPENMETRICS_EXAMPLE = """\
# HELP backprop_jobs Jobs in the database by state
# TYPE backprop_jobs gauge
backprop_jobs{state="queued"} 2.0
# HELP backprop_job_claims Jobs claimed from the queue by workers
# TYPE backprop_job_claims counter
backprop_job_claims_total 43.0
# EOF
"""


@router.get(
    "/metrics",
    summary="Prometheus metrics: jobs by state, queue depth, claims, durations",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text format (OpenMetrics when the Accept header asks "
            "for application/openmetrics-text)",
            "content": {
                "text/plain": {"schema": {"type": "string"}, "example": PROMETHEUS_EXAMPLE},
                "application/openmetrics-text": {
                    "schema": {"type": "string"},
                    "example": OPENMETRICS_EXAMPLE,
                },
            },
        }
    },
)
def get_metrics(request: Request) -> Response:
    """The figures of the jobs table (read now) and of the API and worker processes.

    Under `backprop serve` the counters and histograms sum the API's and its workers';
    the job gauges come from the database, so they cover every worker on every machine.
    With API keys configured it needs one (a read-only key is enough).
    """
    body, content_type = exposition(request.app.state.database, request.headers.get("accept"))
    return Response(body, media_type=content_type)
