from fastapi import APIRouter, Request

from app.registry import Entry
from app.schemas import ModelInfo, ModelList

router = APIRouter(tags=["models"])


def model_info(entry: Entry) -> ModelInfo:
    cfg = entry.config
    return ModelInfo(
        id=entry.id,
        kind=cfg.kind,
        title=entry.card.get("title", entry.id),
        description=entry.card.get("description", ""),
        n_layers=cfg.n_layers,
        n_decoder_layers=cfg.n_decoder_layers,
        n_heads=cfg.n_heads,
        d_model=cfg.d_model,
        d_head=cfg.d_head,
        d_ff=cfg.d_ff,
        positional=cfg.positional,
        norm=cfg.norm,
        norm_position=cfg.norm_position,
        activation=cfg.activation,
        vocab_size=cfg.vocab_size,
        max_len=cfg.max_len,
        n_params=entry.n_params,
        tasks=entry.card.get("tasks", []),
    )


@router.get("/models", response_model=ModelList, summary="The loaded models")
def list_models(request: Request) -> ModelList:
    return ModelList(models=[model_info(e) for e in request.app.state.registry])
