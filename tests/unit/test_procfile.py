import pytest

from paas import procfile
from paas.errors import InvalidParams


def test_parses_types_comments_and_blank_lines() -> None:
    text = "# processes\nweb: gunicorn app:app --bind 0.0.0.0:$PORT\n\nworker:python w.py\n"
    assert procfile.parse(text) == {
        "web": "gunicorn app:app --bind 0.0.0.0:$PORT",
        "worker": "python w.py",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("web gunicorn app:app", "line 1"),
        ("web: a\nweb: b", "repeats process type 'web'"),
        ("ok: a\nweb.1: b", "line 2"),
        ("web:   ", "line 1"),
    ],
)
def test_rejects_bad_lines_naming_them(text: str, message: str) -> None:
    with pytest.raises(InvalidParams, match=message):
        procfile.parse(text)
