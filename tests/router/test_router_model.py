"""The route model: validation, JSON round trip, server-name sanitizing."""

from pathlib import Path

import pytest

from paas_router import model
from paas_router.errors import RouterError

GOOD_APP: dict[str, object] = {
    "app": "myapp",
    "hostnames": ["myapp.paas.localhost", "WWW.Example.com"],
    "servers": [{"name": "web.1", "host": "127.0.0.1", "port": 40123}],
}
GOOD = {"generation": 7, "apps": [GOOD_APP]}


def test_json_round_trip_lowercases_hostnames() -> None:
    table = model.route_table_from_json(GOOD)
    assert table.generation == 7
    assert table.apps[0].hostnames == ("myapp.paas.localhost", "www.example.com")
    assert table.apps[0].servers == (model.Server("web.1", "127.0.0.1", 40123),)
    assert model.route_table_from_json(model.route_table_to_json(table)) == table


def _with_app(**changes: object) -> dict[str, object]:
    app = {**GOOD_APP, **changes}
    return {"generation": 1, "apps": [app]}


def _with_server(**changes: object) -> dict[str, object]:
    server = {"name": "web.1", "host": "127.0.0.1", "port": 5000, **changes}
    return _with_app(servers=[server])


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (_with_server(port=0), "routes.apps[0].servers[0]: port of server 'web.1'"),
        (_with_server(port=70000), "1..65535"),
        (_with_server(port="80"), "port must be int"),
        (_with_server(port=True), "port must be int"),
        (_with_server(host="bad host"), "neither an IP address"),
        (_with_server(name=""), "server name"),
        (_with_app(app="My_App"), "app name 'My_App'"),
        (_with_app(app="a"), "app name 'a'"),
        (_with_app(app="x" * 31), "2..30 characters"),
        (_with_app(hostnames=["bad_host.example"]), "not a lowercase DNS name"),
        (_with_app(hostnames=["a.example", "A.example"]), "lists a hostname twice"),
        (_with_app(servers="web.1"), "servers must be list"),
        ({"apps": []}, "missing 'generation'"),
        ({"generation": -1, "apps": []}, "non-negative"),
        ([], "routes must be an object"),
    ],
)
def test_invalid_routes_raise_one_line(document: object, message: str) -> None:
    with pytest.raises(RouterError, match=None) as err:
        model.route_table_from_json(document)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_hostname_belongs_to_one_app() -> None:
    doc = {
        "generation": 1,
        "apps": [
            {"app": "aa", "hostnames": ["x.example"], "servers": []},
            {"app": "bb", "hostnames": ["x.example"], "servers": []},
        ],
    }
    with pytest.raises(RouterError, match="claimed by both aa and bb"):
        model.route_table_from_json(doc)


def test_server_names_are_made_safe_and_must_stay_unique() -> None:
    assert model.Server("web 1/x", "127.0.0.1", 1).haproxy_name == "web_1_x"
    with pytest.raises(RouterError, match="same name"):
        model.AppRoute(
            "aa",
            (),
            (model.Server("web 1", "127.0.0.1", 1), model.Server("web_1", "127.0.0.1", 2)),
        )


def test_settings_are_validated() -> None:
    with pytest.raises(RouterError, match="http_port"):
        model.RouterSettings(http_port=0, run_dir=Path("/tmp/x"))
    with pytest.raises(RouterError, match="bind_address"):
        model.RouterSettings(http_port=80, run_dir=Path("/tmp/x"), bind_address="localhost")
    with pytest.raises(RouterError, match="absolute"):
        model.RouterSettings(http_port=80, run_dir=Path("relative"))


def test_a_parser_reuses_unchanged_apps_and_checks_changed_ones_again() -> None:
    parser = model.RouteParser()
    other = {"app": "other", "hostnames": ["other.paas.localhost"], "servers": []}
    first = parser.parse({"generation": 1, "apps": [GOOD_APP, other]})
    changed = {**other, "hostnames": ["Other.Example.com"]}
    second = parser.parse({"generation": 2, "apps": [dict(GOOD_APP), changed]})
    assert second.apps[0] is first.apps[0]  # equal JSON: the route checked before
    assert second.apps[1].hostnames == ("other.example.com",)
    # A known app whose JSON turned bad is refused, not served from memory.
    bad = {**GOOD_APP, "hostnames": ["bad host"]}
    third = parser.parse({"generation": 3, "apps": [bad, changed]})
    assert [r.app for r in third.rejected] == ["myapp"]
    assert [r.app for r in third.apps] == ["other"]
    # Conflicts are checked on the whole table every time.
    clash = {**changed, "hostnames": ["myapp.paas.localhost"]}
    fourth = parser.parse({"generation": 4, "apps": [GOOD_APP, clash]})
    assert [r.app for r in fourth.rejected] == ["other"]
