import time

import pytest

from paas.domain import procfile
from paas.domain.errors import InvalidParams


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


def test_parsing_is_linear_in_the_line_length() -> None:
    # The old regex took ~15 s of CPU on such a line (backtracking over the blanks).
    line = "web: a" + " " * 80_000 + "b"
    started = time.perf_counter()
    assert procfile.parse(line) == {"web": "a" + " " * 80_000 + "b"}
    with pytest.raises(InvalidParams, match="line 1"):
        procfile.parse("web" + " \t" * 40_000 + "x: y")
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("web: x\n" + "# c\n" * 2000, "at most 2000"),
        ("x" * (128 * 1024 + 1), "larger than 128 KiB"),
        ("".join(f"t{i}: x\n" for i in range(101)), "101 process types; at most 100"),
        ("web\x0b: x", "line 1"),
        ("../x: y", "line 1"),
        ("we b: y", "line 1"),
    ],
)
def test_size_lines_and_names_are_bounded(text: str, message: str) -> None:
    with pytest.raises(InvalidParams, match=message):
        procfile.parse(text)


def test_same_results_as_before_on_ordinary_lines() -> None:
    text = "web :\tgunicorn app:app  \nworker:  python w.py --x=1:2\t\n"
    assert procfile.parse(text) == {"web": "gunicorn app:app", "worker": "python w.py --x=1:2"}
