from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from models import save_checkpoint
from tests.helpers import tiny


def test_healthz_and_models_from_a_checkpoint_folder(tmp_path):
    save_checkpoint(tmp_path / "tiny-dec", tiny("decoder").float(), card={"title": "Tiny"})
    app = create_app(Settings(checkpoint_dir=tmp_path, device="cpu"))
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        models = client.get("/api/v1/models").json()["models"]
        assert [m["id"] for m in models] == ["tiny-dec"]
        assert models[0]["kind"] == "decoder" and models[0]["d_head"] == 8


def test_empty_checkpoint_dir_lists_no_models(tmp_path):
    with TestClient(create_app(Settings(checkpoint_dir=tmp_path, device="cpu"))) as client:
        assert client.get("/api/v1/models").json() == {"models": []}


def test_several_checkpoint_folders_are_served_side_by_side(tmp_path, monkeypatch):
    for folder, model_id in (("shipped", "a-model"), ("imported", "b-model"), ("more", "a-model")):
        save_checkpoint(
            tmp_path / folder / model_id, tiny("decoder").float(), card={"title": folder}
        )
    dirs = ":".join(str(tmp_path / f) for f in ("shipped", "imported", "more", "missing"))
    monkeypatch.setenv("ATTNVIZ_CHECKPOINT_DIR", dirs)
    settings = Settings(device="cpu")
    assert len(settings.checkpoint_dir) == 4
    with TestClient(create_app(settings)) as client:
        models = {m["id"]: m["title"] for m in client.get("/api/v1/models").json()["models"]}
    assert models == {"a-model": "shipped", "b-model": "imported"}  # the first a-model wins
