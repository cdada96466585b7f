"""Rendering: deterministic text that HAProxy itself accepts."""

import importlib.resources
import subprocess
from pathlib import Path

import routerkit

from paas_router import haproxy, model, render
from paas_router.errors import RouterError


def _table(generation: int = 1, reverse: bool = False) -> model.RouteTable:
    apps = [
        model.AppRoute(
            "beta",
            ("beta.paas.localhost", "www.beta.example"),
            (model.Server("web.2", "127.0.0.1", 5002), model.Server("web.1", "127.0.0.1", 5001)),
        ),
        model.AppRoute("alpha", ("alpha.paas.localhost",), ()),
        model.AppRoute("gamma", ("gamma.paas.localhost",), (model.Server("web.1", "::1", 5003),)),
    ]
    if reverse:
        apps = [
            model.AppRoute(a.app, tuple(reversed(a.hostnames)), tuple(reversed(a.servers)))
            for a in reversed(apps)
        ]
    return model.RouteTable(generation, tuple(apps))


SETTINGS = model.RouterSettings(http_port=8080, run_dir=Path("/tmp/rtest"))


def test_rendering_is_deterministic() -> None:
    first = render.render(_table(), SETTINGS)
    # Same routes in another order, another generation: byte-equal output.
    assert render.render(_table(generation=9, reverse=True), SETTINGS) == first
    assert render.render_hosts_map(_table(reverse=True)) == render.render_hosts_map(_table())
    assert first.index("backend app_alpha") < first.index("backend app_beta")
    assert first.index("server web.1 ") < first.index("server web.2 ")


def test_rendered_config_has_the_required_pieces() -> None:
    text = render.render(_table(), SETTINGS)
    for needle in [
        "master-worker",
        "stats socket /tmp/rtest/admin.sock mode 600 level admin expose-fd listeners",
        "option idle-close-on-response",
        "retries 3",
        "option redispatch 1",
        "retry-on conn-failure empty-response response-timeout",
        "bind *:8080",
        "map(hosts.map,paas_unknown_host)",
        "http-request return status 404",
        "http-error status 503",
        "No web dyno of app alpha is up and answering",
        "http-request disable-l7-retry unless METH_GET",
        "server web.1 127.0.0.1:5001 check inter 500 fall 2 rise 1",
        "server web.1 ipv6@::1:5003 check",
        'add-header Via "1.1 paas-router"',
        "X-Request-Start t=%[date(0,ms)]",
        "X-Forwarded-Port %[dst_port]",
    ]:
        assert needle in text, needle
    assert "timestamp" not in text.lower()


def test_hosts_map_is_sorted_host_to_backend() -> None:
    lines = [ln for ln in render.render_hosts_map(_table()).splitlines() if not ln.startswith("#")]
    assert lines == [
        "alpha.paas.localhost app_alpha",
        "beta.paas.localhost app_beta",
        "gamma.paas.localhost app_gamma",
        "www.beta.example app_beta",
    ]


def test_never_retries_everything() -> None:
    template = importlib.resources.files("paas_router").joinpath("templates/haproxy.cfg.j2")
    assert "all-retryable-errors" not in template.read_text()
    assert "all-retryable-errors" not in render.render(_table(), SETTINGS)


@routerkit.requires_haproxy
def test_output_passes_haproxy_check_without_warnings(run_dir: Path) -> None:
    settings = model.RouterSettings(http_port=8080, run_dir=run_dir)
    text = render.render(_table(), settings)
    hosts = render.render_hosts_map(_table())
    haproxy.HAProxy(run_dir, binary=routerkit.HAPROXY_BINARY).check(text, hosts)
    # And with no warnings either, which check() lets through.
    (run_dir / "haproxy.cfg").write_text(text)
    (run_dir / "hosts.map").write_text(hosts)
    done = subprocess.run(
        [
            str(routerkit.HAPROXY_BINARY),
            "-c",
            "-C",
            str(run_dir),
            "-f",
            str(run_dir / "haproxy.cfg"),
        ],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert "[WARNING]" not in done.stdout + done.stderr


@routerkit.requires_haproxy
def test_empty_table_passes_haproxy_check(run_dir: Path) -> None:
    empty = model.RouteTable(0, ())
    settings = model.RouterSettings(http_port=8080, run_dir=run_dir)
    haproxy.HAProxy(run_dir, binary=routerkit.HAPROXY_BINARY).check(
        render.render(empty, settings), render.render_hosts_map(empty)
    )


@routerkit.requires_haproxy
def test_check_reports_haproxys_own_error(run_dir: Path) -> None:
    proxy = haproxy.HAProxy(run_dir, binary=routerkit.HAPROXY_BINARY)
    try:
        proxy.check("global\n    no-such-keyword\n")
    except RouterError as err:
        assert "haproxy rejected the config" in str(err)
        assert "no-such-keyword" in str(err)
        assert "\n" not in str(err)
    else:
        raise AssertionError("check accepted a bad config")
    # The scratch directory is gone and nothing live was written.
    assert list(run_dir.iterdir()) == []


def test_parse_show_proc() -> None:
    text = (
        "#<PID>          <type>          <reloads>       <uptime>        <version>      \n"
        "4148            master          2 [failed: 1]   0d00h11m14s     2.6.12\n"
        "# workers\n"
        "14632           worker          0               0d00h00m00s     2.6.12\n"
        "# old workers\n"
        "14001           worker          1               0d00h00m05s     2.6.12\n"
        "# programs\n\n"
    )
    status = haproxy.parse_show_proc(text)
    assert status == haproxy.ProcStatus(4148, 2, 1, (14632,), (14001,))


def test_a_renderer_that_remembers_apps_renders_what_a_fresh_one_does() -> None:
    renderer = render.Renderer(SETTINGS)
    tables = [
        _table(),
        model.RouteTable(2, (*_table().apps[1:], model.AppRoute("beta", ("b.example",), ()))),
        model.RouteTable(3, _table().apps[:1]),
        _table(generation=4, reverse=True),
    ]
    for table in tables:
        rendered = renderer.render(table)
        assert rendered.config == render.render(table, SETTINGS)
        assert rendered.hosts_map == render.render_hosts_map(table)
        assert rendered.skeleton == render.without_servers(rendered.config)
