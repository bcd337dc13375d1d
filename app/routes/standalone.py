"""POST /export/standalone: the web UI's "HTML (standalone)" export. One page that opens from
disk with nothing fetched, built by the notebook's own code (attnviz/: the /attention answer in
f16, the static/js modules inlined) for what the explorer shows: model, input, view, layer,
head and site. A page, not part of the REST API (nor of its OpenAPI document)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import Field

from app.deps import RunJob, SettingsDep
from app.errors import ApiError, invalid
from app.inputs import Inputs, InputsDep
from app.schemas import Index, ModelId, Request, Text, TokenIds
from attnviz import Output
from attnviz.payload import (
    ArgumentError,
    Payload,
    answer,
    attention_request,
    check_size,
    described,
    resolve,
)

router = APIRouter(include_in_schema=False)
HTML = "text/html; charset=utf-8"


class StandaloneRequest(Request):
    model: ModelId
    text: Text | None = None
    token_ids: TokenIds | None = None
    target: Text | None = None
    view: Literal["heads", "grid", "heatmap", "explorer"] = "explorer"
    layer: Index = 0
    head: Index = 0
    site: Literal["encoder.self", "decoder.self", "decoder.cross"] | None = Field(None)


@router.post("/export/standalone")
async def standalone(
    body: StandaloneRequest, inputs: InputsDep, settings: SettingsDep, run: RunJob
):
    try:
        req = attention_request(
            body.model,
            body.text,
            target=body.target,
            token_ids=body.token_ids,
            view=body.view,
            layer=body.layer,
            head=body.head,
        )
        inp = resolve(inputs, req)
        check_size(inp, body.view)
    except ArgumentError as e:
        raise ApiError(e.status, e.message, field=e.name, code=e.code) from None
    cfg = inp.entry.config
    Inputs.index(body.layer, max(cfg.sites.values()), "layer", "layer")
    Inputs.index(body.head, cfg.n_heads, "head", "head")
    if body.site is not None and body.site not in cfg.sites:
        raise invalid("site", f"{inp.entry.id} has {', '.join(cfg.sites)}", "unsupported_field")

    def job() -> bytes:
        shown = described(body.text, body.token_ids, body.target)
        payload = Payload(answer(inp, req, settings), inp.entry.id, shown)
        return Output(payload, body.view, body.site, body.layer, body.head).html().encode()

    return await run("standalone", None, job, HTML)
