"""Settings, read from the environment with the prefix ATTNVIZ_ (e.g. ATTNVIZ_DEVICE=cuda)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATTNVIZ_", extra="ignore")

    device: Literal["auto", "cpu", "cuda"] = "auto"
    checkpoint_dir: Path = ROOT / "checkpoints"
    torch_threads: int = 0  # 0: let the engine choose (cores / workers)
    host: str = "127.0.0.1"
    port: int = 8000


@lru_cache
def get_settings() -> Settings:
    return Settings()
