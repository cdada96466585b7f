import pytest

from paas import validation
from paas.errors import InvalidParams


@pytest.mark.parametrize("name", ["demo", "my-app-2", "a1"])
def test_accepts_dns_label_app_names(name: str) -> None:
    assert validation.app_name(name) == name


@pytest.mark.parametrize("name", ["../x", "A", "x", "1abc", "a_b", "a" * 31, "ab-", "a--b"])
def test_rejects_bad_app_names(name: str) -> None:
    with pytest.raises(InvalidParams, match="invalid app name"):
        validation.app_name(name)


@pytest.mark.parametrize("key", ["PORT", "DYNO", "PAAS_HOME", "1A", "A-B", "__X", ""])
def test_rejects_reserved_or_malformed_config_keys(key: str) -> None:
    with pytest.raises(InvalidParams):
        validation.config_key(key)


def test_config_changes_accept_strings_and_null() -> None:
    assert validation.config_changes({"A": "1", "B": None}) == {"A": "1", "B": None}


@pytest.mark.parametrize("body", [{}, [], {"A": 1}, "x"])
def test_config_changes_reject_non_string_values(body: object) -> None:
    with pytest.raises(InvalidParams):
        validation.config_changes(body)


@pytest.mark.parametrize("value", [-1, 101, "3", 1.5, True, None])
def test_quantity_is_a_whole_number_in_range(value: object) -> None:
    with pytest.raises(InvalidParams, match="invalid quantity"):
        validation.quantity(value)


def test_config_size_limit() -> None:
    with pytest.raises(InvalidParams, match="limit"):
        validation.config_size({"A": "x" * 40_000})
