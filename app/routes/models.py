"""GET /api/v1/models and /api/v1/models/{id}: what is loaded, and each model's card."""

from fastapi import APIRouter, Path

from app.deps import RegistryDep
from app.inputs import InputsDep
from app.registry import Entry
from app.schemas import ErrorResponse, ModelCard, ModelInfo, ModelList

router = APIRouter(tags=["models"])


def model_info(entry: Entry) -> ModelInfo:
    cfg = entry.config
    return ModelInfo(
        id=entry.id,
        kind=cfg.kind,
        architecture=cfg.architecture,
        cell=getattr(cfg, "cell", None),
        sites=cfg.sites,
        title=entry.card.get("title", entry.id),
        description=entry.card.get("description", ""),
        n_layers=cfg.n_layers,
        n_decoder_layers=cfg.n_decoder_layers,
        n_heads=cfg.n_heads,
        n_kv_heads=getattr(cfg, "n_kv_heads", None) or cfg.n_heads,
        d_model=cfg.d_model,
        d_head=cfg.d_head,
        d_ff=cfg.d_ff,
        positional=cfg.positional,
        norm=cfg.norm,
        norm_position=cfg.norm_position,
        activation=cfg.activation,
        attn_only=getattr(cfg, "attn_only", False),
        dtype=entry.dtype,
        vocab_size=cfg.vocab_size,
        max_len=cfg.max_len,
        n_params=entry.n_params,
        tasks=entry.card.get("tasks", default_tasks(entry)),
        labels=list(cfg.labels),
        snapshots=len(entry.snapshots["snapshots"]) if entry.snapshots else 0,
    )


def default_tasks(entry: Entry) -> list[str]:
    cfg = entry.config
    if cfg.kind == "encoder":
        return ["attention", "fill-mask"] + (["classify"] if cfg.n_classes else [])
    if cfg.kind == "decoder":
        return ["attention", "generate"]
    return ["attention", "translate"]


@router.get(
    "/models",
    response_model=ModelList,
    summary="The loaded models",
    description="Every checkpoint the server loaded at start-up, with its architecture: "
    "family (encoder, decoder, seq2seq), layers, heads, widths, positional scheme, "
    "normalisation and parameter count.",
)
def list_models(registry: RegistryDep) -> ModelList:
    return ModelList(models=[model_info(e) for e in registry])


@router.get(
    "/models/{model_id}",
    response_model=ModelCard,
    summary="One model and its card",
    description="The model's architecture plus its card: how it was trained, its metrics, "
    "and `card.parameters`, the parameter count of each component.",
    responses={404: {"model": ErrorResponse, "description": "Unknown model"}},
)
def get_model(
    inputs: InputsDep,
    model_id: str = Path(description="A model id", examples=["encoder-mini"]),
) -> ModelCard:
    entry = inputs.model(model_id)
    card = {**entry.card, "parameters": entry.parameters}
    return ModelCard(**model_info(entry).model_dump(), card=card)
