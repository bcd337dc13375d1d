import pytest
pytestmark = pytest.mark.e2e
@pytest.mark.parametrize("path", ["/patch?model=induction-2l", "/patch?model=encoder-mini", "/patch?model=seq2seq-en-fr"])
def test_shot(ui, path):
    ui.goto(path)
    ui.wait("#top-cells a", state="attached")
    ui.page.wait_for_function("() => !document.querySelector('#status.busy')")
    print(ui.shot(path.split("=")[1]))
    print(ui.page.text_content("#explain"))
    print(ui.page.text_content("#status"))
