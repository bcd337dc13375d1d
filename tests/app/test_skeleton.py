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
