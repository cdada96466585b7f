import pytest

from paas.domain import validation
from paas.domain.errors import InvalidParams


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


@pytest.mark.parametrize(
    "name", ["evil\n", "demo\r\n", "de\nmo", "ab-", "a--b", "\u212aab", "ab\x00"]
)
def test_app_names_are_matched_whole(name: str) -> None:
    with pytest.raises(InvalidParams, match="invalid app name"):
        validation.app_name(name)


@pytest.mark.parametrize("key", ["FOO\n", "FOO\r", "F\nOO", "FOO\x00", "A" * 257, 3])
def test_config_keys_are_matched_whole(key: object) -> None:
    with pytest.raises(InvalidParams, match="invalid config key"):
        validation.config_key(key)


def test_a_nul_byte_in_a_config_value_is_refused() -> None:
    with pytest.raises(InvalidParams, match="NUL"):
        validation.config_changes({"A": "x\x00y"})


@pytest.mark.parametrize("kind", ["web\n", "we b", "../x", "a/b", "", "x" * 64, None])
def test_process_types_are_matched_whole(kind: object) -> None:
    with pytest.raises(InvalidParams, match="invalid process type"):
        validation.process_type(kind)


@pytest.mark.parametrize(
    "host", ["a.b.-c", "a.b-.c", "-a.b", "a..b", "a.b\n", "\u212a.example.com", "a" * 64 + ".x"]
)
def test_hostnames_follow_the_routers_rule(host: str) -> None:
    with pytest.raises(InvalidParams, match="invalid hostname"):
        validation.hostname(host)


def test_hostnames_are_lowercased() -> None:
    assert validation.hostname("WWW.Example.COM") == "www.example.com"


@pytest.mark.parametrize("host", ["paas.localhost", "x.paas.localhost", "a.b.PAAS.localhost"])
def test_custom_domains_are_not_under_the_platform_domain(host: str) -> None:
    with pytest.raises(InvalidParams, match=r"under paas\.localhost"):
        validation.custom_domain(host, "paas.localhost")


def test_a_custom_domain_next_to_the_platform_domain_is_fine() -> None:
    assert validation.custom_domain("notpaas.localhost", "paas.localhost") == "notpaas.localhost"


@pytest.mark.parametrize(("given", "version"), [(3, 3), ("3", 3), ("v12", 12)])
def test_release_versions(given: object, version: int) -> None:
    assert validation.release_version(given) == version


@pytest.mark.parametrize("given", [0, -1, 2**31, "v" + "9" * 30, "v\u0663", True, 1.0, "v"])
def test_odd_release_versions_are_refused(given: object) -> None:
    with pytest.raises(InvalidParams, match="invalid release"):
        validation.release_version(given)


@pytest.mark.parametrize("dyno", ["demo.web.1.v3.ab12cd34", "a-b.release.1.v10.00ff"])
def test_dyno_ids(dyno: str) -> None:
    assert validation.dyno_id(dyno) == dyno


@pytest.mark.parametrize(
    "dyno", ["demo.web.1.v3.ab12cd34\n", "demo.../x.1.v3.ab", "demo.web.1.v3."]
)
def test_bad_dyno_ids(dyno: str) -> None:
    with pytest.raises(InvalidParams, match="invalid dyno id"):
        validation.dyno_id(dyno)
