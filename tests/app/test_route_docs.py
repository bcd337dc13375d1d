"""A route's OpenAPI summary and description come from its docstring (app/routes/jobs.py)."""

from app.routes.jobs import from_docstring


def test_from_docstring_joins_wrapped_lines_and_keeps_paragraphs_and_list_items():
    doc = """Split text into tokens

    The exact sequence, wrapped
    over two lines.

    * **RoPE**: an item,
      continued
    * another item

    **Rules**: last.
    """
    assert from_docstring(doc) == (
        "Split text into tokens",
        "The exact sequence, wrapped over two lines.\n\n"
        "* **RoPE**: an item, continued\n* another item\n\n**Rules**: last.",
    )
