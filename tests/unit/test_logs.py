from pathlib import Path

from paas.state import logs
from paas.state.logs import LogStore


def test_lines_are_formatted_logplex_style_and_filtered(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs.db")
    store.append("demo", "app", "web.1", ["hello", "world"])
    store.event("demo", "web.1", "State changed from starting to up")
    store.append("other", "app", "web.1", ["not mine"])
    lines, cursor = store.read("demo")
    text = [line.format() for line in lines]
    assert text[0].endswith(" app[web.1]: hello")
    assert text[2].endswith(" paas[web.1]: State changed from starting to up")
    assert len(text) == 3
    assert [line.message for line in store.read("demo", source="paas")[0]] == [
        "State changed from starting to up"
    ]
    store.append("demo", "app", "web.2", ["later"])
    newer, _ = store.read("demo", after=cursor)
    assert [line.message for line in newer] == ["later"]
    assert store.read("demo", num=1)[0][0].message == "later"


def test_long_lines_are_split() -> None:
    pieces = logs.split_long("x" * 25_000)
    assert [len(p) for p in pieces] == [10_000, 10_000, 5_000]
