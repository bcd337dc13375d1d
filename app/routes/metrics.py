"""GET /metrics: Prometheus exposition of requests, latency, inference, cache and queue."""

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="`attnviz_requests_total`, `attnviz_request_duration_seconds` (per route), "
    "`attnviz_inference_seconds`, `attnviz_cache_hits_total`, `attnviz_coalesced_total`, "
    "`attnviz_queue_depth`, `attnviz_queue_wait_seconds`, `attnviz_rejected_total`, "
    "`attnviz_dropped_total` …",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
