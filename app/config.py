"""Settings, read from the environment with the prefix ATTNVIZ_ (e.g. ATTNVIZ_DEVICE=cuda).

Every limit the API enforces lives here, so a teacher can tune a classroom server with
environment variables alone, e.g. ``ATTNVIZ_MAX_CONCURRENCY=4 ATTNVIZ_CACHE_SIZE=1024``.
"""

from __future__ import annotations

import os
import site
import sys
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _root() -> Path:
    """The folder that holds static/, templates/ and checkpoints/: the clone this code runs
    from, else where a non-editable install put them (setup.py: <prefix>/share/attnviz)."""
    here = Path(__file__).resolve().parent.parent
    if (here / "static").is_dir():
        return here
    for base in (sys.prefix, site.getuserbase()):
        installed = Path(base) / "share" / "attnviz"
        if (installed / "static").is_dir():
            return installed
    return here


ROOT = _root()

#: The UI is served from this origin only: no inline script, no third-party host. Plotly sets
#: element styles through the CSSOM (allowed by style-src 'self'); `img-src data: blob:` lets
#: it export PNG / SVG.
DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATTNVIZ_", extra="ignore")

    # --- models and hardware
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when available
    # One folder of checkpoint folders, or several separated by ":" (e.g. the shipped models
    # and the ones `attnviz import` wrote: ATTNVIZ_CHECKPOINT_DIR=checkpoints:imported).
    checkpoint_dir: Annotated[list[Path], NoDecode] = [ROOT / "checkpoints"]
    # bfloat16: the blocks' linear layers multiply in bfloat16 (on this CPU's AMX the products
    # ~4x faster, SmolLM2's forward pass 1.4-1.8x); attention math, norms, the residual stream
    # and the unembedding stay float32 (models/precision.py). Accuracy: bench/RESULTS.md.
    dtype: Literal["float32", "bfloat16"] = "float32"
    torch_threads: int = Field(0, ge=0)  # 0: cores / max_concurrency (at least 1)
    host: str = "127.0.0.1"
    port: int = 8000

    # --- input limits (each violation is a 422 naming the field)
    max_input_tokens: int = Field(2048, ge=1)  # and never more than a model's own max_len
    max_new_tokens: int = Field(128, ge=1)
    # Past this much context, a decoding step's attention rows are pooled to 64 blocks unless
    # the request picks its layers and heads: never every head's full row at every step.
    stream_full_rows_tokens: int = Field(256, ge=1)
    max_text_chars: int = Field(32768, ge=1)  # checked before tokenizing
    # What one /attention request may hold in memory: its forward pass's widest attention
    # (scores, masked scores, pattern of every head) plus the tensors of its answer. More is
    # a 422 that says what would fit; a request never takes the process out of memory.
    memory_budget_mb: int = Field(1536, ge=1)
    # What the models' weights may take together; a model past it is not served (logged, and
    # named in /readyz's `refused`). 0: the memory available at start less the workers'
    # request budgets (app/memory.py weights_budget_bytes).
    models_memory_mb: int = Field(0, ge=0)
    # What forward passes leave for the next request on the same input (each attention
    # module's input): another head or layer then costs no forward pass. 0 turns it off.
    # 192 MB holds two 2048-token inputs of a GPT-2-small shape (75 MB each, float32) or
    # ~700 of 128 tokens on a shipped model. bench_api's server (every shipped model, 304 MB
    # loaded) peaked at 868 MB with 512 here, 762 MB with 192, 338 MB with both caches off.
    trace_cache_mb: int = Field(192, ge=0)
    trace_cache_min_tokens: int = Field(64, ge=0)  # shorter inputs: a forward pass is as cheap
    max_body_bytes: int = Field(1 << 20, ge=1024)  # larger request bodies get 413

    # --- the inference engine
    max_concurrency: int = Field(2, ge=1)  # worker threads running forward passes
    # The queue holds seconds of work, not a number of jobs (app/engine.py): a job is admitted
    # while the work queued ahead of it, per worker, is under queue_budget_s (estimated from
    # measured service times); else 503. One still waiting after queue_deadline_s gets 503.
    queue_budget_s: float = Field(1.0, gt=0)
    queue_deadline_s: float = Field(1.5, gt=0)
    max_queue: int = Field(256, ge=0)  # and never more than this many jobs waiting
    retry_after_s: int = Field(1, ge=1)  # the Retry-After of a 503
    request_timeout_s: float = Field(60.0, gt=0)  # a job still unfinished then gets 504
    cache_size: int = Field(256, ge=0)  # LRU entries of recent results (0: no cache)
    cache_max_bytes: int = Field(64 << 20, ge=0)  # and at most this many bytes of them

    # --- slow and idle clients (app/server.py, app/middleware.py)
    header_timeout_s: float = Field(10.0, gt=0)  # request line + headers within this, else closed
    body_timeout_s: float = Field(10.0, gt=0)  # the whole body within this after them, else 408
    max_connections: int = Field(512, ge=1)  # per process; more are refused (503) at once

    # --- responses
    gzip_min_bytes: int = Field(1024, ge=0)
    gzip_level: int = Field(1, ge=1, le=9)  # ISA-L levels: 1 is fast; 3 and more: its level 3
    cors_origins: Annotated[list[str], NoDecode] = []  # empty: CORS off
    csp: str = DEFAULT_CSP
    log_level: str = "info"

    @field_validator("checkpoint_dir", mode="before")
    @classmethod
    def _split_dirs(cls, value):
        if isinstance(value, (str, Path)):
            return [Path(p) for p in str(value).split(os.pathsep) if p]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value):
        """ATTNVIZ_CORS_ORIGINS="https://a.example,https://b.example" or a JSON list."""
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                import json

                return json.loads(value)
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    def threads_per_worker(self, cpu_count: int) -> int:
        if self.torch_threads:
            return self.torch_threads
        return max(1, cpu_count // self.max_concurrency)


@lru_cache
def get_settings() -> Settings:
    return Settings()
