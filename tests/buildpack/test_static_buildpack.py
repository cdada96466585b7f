"""The static buildpack's static.json -> nginx config (buildpacks/static/lib/static_config.py,
pure functions, run here by the host's Python as the build runs it with the stack's), and
which built-in detects which app, through the real bin/detect scripts in the builder's order.

The core property: a value of static.json either is refused with one line naming its key,
or it changes no directive of the generated config (only the text of a quoted string).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paas.domain.errors import BuildFailed
from paas.push import builder

ROOT = Path(__file__).resolve().parents[2]


def load_static_config() -> ModuleType:
    path = ROOT / "buildpacks" / "static" / "lib" / "static_config.py"
    spec = importlib.util.spec_from_file_location("static_config", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["static_config"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


sc = load_static_config()

FULL = {
    "root": "dist/",
    "clean_urls": True,
    "routes": {"/app/**": "index.html"},
    "redirects": {"/old": {"url": "/new", "status": 302}, "/gone": {"url": "https://x.test/"}},
    "headers": {
        "/assets/*.js": {"Cache-Control": "max-age=60"},
        "/**": {"X-Frame-Options": "DENY"},
    },
    "error_page": "errors/404.html",
    "https_only": True,
}


def render(raw: object) -> str:
    return str(sc.render(sc.parse(json.dumps(raw))))


def refusal(raw: object) -> str:
    with pytest.raises(sc.StaticConfigError) as caught:
        sc.parse(raw if isinstance(raw, str) else json.dumps(raw))
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message
    return message


def structure(config: str) -> str:
    """The config with each quoted string's text blanked: what a value may not change."""
    return re.sub(r'"(?:\\.|[^"\\])*"', '"…"', config)


def test_no_static_json_serves_public_with_nginx_defaults() -> None:
    config = sc.render(sc.Site())
    assert 'root "@PAAS_APP@/public";' in config
    assert "location / { try_files $uri $uri/ =404; }" in config
    assert "listen @PAAS_PORT@;" in config and "pid @PAAS_RUN@/nginx.pid;" in config
    assert "map " not in config and "error_page" not in config


def test_every_key_becomes_its_directives() -> None:
    config = render(FULL)
    assert 'root "@PAAS_APP@/dist";' in config
    assert 'location = "/old" { return 302 "/new"; }' in config
    assert 'location = "/gone" { return 301 "https://x.test/"; }' in config
    assert 'location ~ "^\\/app\\/.*$" { try_files $uri $uri.html "/index.html"; }' in config
    assert "location / { try_files $uri $uri.html $uri/ =404; }" in config
    assert 'error_page 404 "/errors/404.html";' in config
    assert "add_header Cache-Control $paas_header_0;" in config
    assert '"~^\\/assets\\/[^/]*\\.js(\\?.*)?$" "max-age=60";' in config
    assert "add_header X-Frame-Options $paas_header_1;" in config


def test_one_header_set_by_several_globs_is_one_map_first_match_wins() -> None:
    config = render({"headers": {"/a/**": {"X-A": "1"}, "/**": {"x-a": "2"}}})
    assert config.count("map $request_uri") == 1
    assert config.index('"1";') < config.index('"2";')


@pytest.mark.parametrize(
    ("glob", "matches", "misses"),
    [
        ("/**", ["/", "/a", "/a/b.html"], []),
        ("/assets/*", ["/assets/a.js", "/assets/"], ["/assets/x/y.js", "/assetsx"]),
        ("/a.html", ["/a.html"], ["/aXhtml", "/a.html/x"]),
        ("/app/**", ["/app/", "/app/x/y"], ["/app", "/apple"]),
    ],
)
def test_globs_match_like_heroku(glob: str, matches: list[str], misses: list[str]) -> None:
    pattern = re.compile(sc.glob_regex(glob) + "$")
    assert all(pattern.match(path) for path in matches)
    assert not any(pattern.match(path) for path in misses)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"headers": {"/**": {"X-A": 'a"; } server { listen 1; } #'}}}, "headers['/**']['X-A']"),
        ({"headers": {"/**": {"X-A": "$document_root"}}}, "headers['/**']['X-A']"),
        ({"headers": {"/**": {"X-A": "a\\"}}}, "headers['/**']['X-A']"),
        ({"headers": {"/**": {"X-A": "a\nb"}}}, "headers['/**']['X-A']"),
        ({"headers": {"/**": {"X-A": "@PAAS_APP@"}}}, "headers['/**']['X-A']"),
        ({"headers": {"/**": {"X-A;": "1"}}}, "headers['/**']['X-A;']"),
        ({"headers": {"/**": {"X A": "1"}}}, "headers['/**']['X A']"),
        ({"headers": {'/"': {"X-A": "1"}}}, "headers"),
        ({"headers": {"/a b": {"X-A": "1"}}}, "headers"),
        ({"headers": {"/{a}": {"X-A": "1"}}}, "headers"),
        ({"headers": {"/**": "no"}}, "headers['/**']"),
        ({"routes": {"/**": 'index.html"; deny all; "'}}, "routes['/**']"),
        ({"routes": {"/**": "../secret"}}, "routes['/**']"),
        ({"routes": {"/$x": "index.html"}}, "routes"),
        ({"routes": ["/**"]}, "routes"),
        ({"redirects": {"/old": {"url": "/new$1"}}}, "redirects['/old'].url"),
        ({"redirects": {"/old": {"url": "/n ew"}}}, "redirects['/old'].url"),
        ({"redirects": {"/old": {"url": "javascript:alert(1)"}}}, "redirects['/old'].url"),
        ({"redirects": {"/old": {"url": "/new", "status": 200}}}, "redirects['/old'].status"),
        ({"redirects": {"/old": {"url": "/new", "status": "301"}}}, "redirects['/old'].status"),
        ({"redirects": {"/old": {"url": "/new", "status": True}}}, "redirects['/old'].status"),
        ({"redirects": {"/old/*": {"url": "/new"}}}, "redirects"),
        ({"redirects": {"/old": {}}}, "redirects['/old'].url"),
        ({"root": "../up"}, "root"),
        ({"root": "a/./b"}, "root"),
        ({"root": 'pub"lic'}, "root"),
        ({"root": 3}, "root"),
        ({"error_page": "404.html; autoindex on"}, "error_page"),
        ({"clean_urls": "yes"}, "clean_urls"),
        ({"https_only": 1}, "https_only"),
    ],
)
def test_a_value_that_could_change_the_config_is_refused_naming_its_key(
    raw: object, key: str
) -> None:
    assert refusal(raw).startswith(f"static.json: {key}")


def test_the_root_is_the_apps_with_or_without_slashes() -> None:
    for root in ("dist", "/dist", "dist/", "./dist"):
        assert sc.parse(json.dumps({"root": root})).root == "dist"
    assert sc.parse('{"root": "./"}').root == "."


def test_bad_json_and_a_non_object_are_refused_in_one_line() -> None:
    assert "not valid JSON (line 1, column 2" in refusal("{oops")
    assert "must be a JSON object" in refusal("[]")


def test_unknown_keys_are_ignored_and_said() -> None:
    site = sc.parse(json.dumps({"encoding": "gzip", "proxies": {}}))
    said: list[str] = []
    sc.describe(site, said.append)
    assert any(line.startswith("ignored: encoding, proxies (supported keys: root") for line in said)


def test_https_only_is_said_to_have_no_effect_yet() -> None:
    said: list[str] = []
    sc.describe(sc.parse('{"https_only": true}'), said.append)
    assert "https_only: no effect yet: the router serves plain HTTP only (no TLS)" in said


BASELINE = structure(render(FULL))
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)


@settings(max_examples=300, deadline=None)
@given(value=ANY_TEXT, where=st.sampled_from(["header", "glob", "url", "route", "root", "error"]))
def test_no_accepted_value_changes_a_directive(value: str, where: str) -> None:
    raw = json.loads(json.dumps(FULL))
    if where == "header":
        raw["headers"]["/**"]["X-Frame-Options"] = value
    elif where == "glob":
        raw["headers"]["/" + value] = raw["headers"].pop("/**")
    elif where == "url":
        raw["redirects"]["/old"]["url"] = "/" + value
    elif where == "route":
        raw["routes"]["/app/**"] = value or "x"
    elif where == "root":
        raw["root"] = value
    else:
        raw["error_page"] = value or "x"
    try:
        site = sc.parse(json.dumps(raw))
    except sc.StaticConfigError as error:
        assert "\n" not in str(error) and str(error).startswith("static.json: ")
        return
    assert structure(sc.render(site)) == BASELINE


def test_check_files_wants_the_root_the_route_targets_and_the_error_page(tmp_path: Path) -> None:
    site = sc.parse(json.dumps({"routes": {"/**": "index.html"}, "error_page": "404.html"}))
    with pytest.raises(sc.StaticConfigError, match="root: public/ is not a directory"):
        sc.check_files(site, tmp_path)
    (tmp_path / "public").mkdir()
    with pytest.raises(sc.StaticConfigError, match=r"routes\['/\*\*'\]: /index.html is not a file"):
        sc.check_files(site, tmp_path)
    (tmp_path / "public" / "index.html").write_text("home")
    with pytest.raises(sc.StaticConfigError, match=r"error_page: /404\.html is not a file"):
        sc.check_files(site, tmp_path)
    (tmp_path / "public" / "404.html").write_text("lost")
    sc.check_files(site, tmp_path)


def test_a_root_linked_outside_the_app_is_refused(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "public").symlink_to(tmp_path)
    with pytest.raises(sc.StaticConfigError, match="is not a directory of the app"):
        sc.check_files(sc.Site(), app)


def test_the_built_ins_are_tried_in_one_explicit_order() -> None:
    names = [p.name for p in builder.builtin_detect_order()]
    assert names == [n for n in builder.BUILTIN_DETECT_ORDER if n in names]
    assert builder.BUILTIN_DETECT_ORDER[-2:] == ("static", "procfile")
    assert {"python", "static", "procfile"} <= set(names)


def test_a_built_in_missing_from_the_order_is_an_error(tmp_path: Path) -> None:
    for name in ("python", "ruby"):
        (tmp_path / name / "bin").mkdir(parents=True)
        (tmp_path / name / "bin" / "detect").write_text("#!/bin/sh\n")
    (tmp_path / "common" / "lib").mkdir(parents=True)  # shared libraries: no buildpack
    with pytest.raises(BuildFailed, match="built-in buildpack ruby is not in BUILTIN_DETECT_ORDER"):
        builder.builtin_detect_order(tmp_path)
    (tmp_path / "ruby" / "bin" / "detect").unlink()
    assert builder.builtin_detect_order(tmp_path) == [tmp_path / "python"]


def test_the_shared_shell_libraries_are_no_buildpack() -> None:
    assert "common" not in builder.builtin_names()
    assert [p.name for p in builder.builtin_detect_order()] == list(builder.BUILTIN_DETECT_ORDER)
    # Each built-in links to them; a build gets the built-in with its links resolved.
    assert (builder.BUILTIN_BUILDPACKS / "python" / "lib" / "output.sh").is_symlink()


@pytest.mark.parametrize(
    ("files", "detected"),
    [
        ({"Procfile": "web: x", "requirements.txt": ""}, "python"),
        ({"static.json": "{}", "requirements.txt": ""}, "python"),
        ({"Procfile": "web: x", "public/index.html": ""}, "static"),
        ({"static.json": "{}"}, "static"),
        ({"public/index.html": ""}, "static"),
        ({"Procfile": "web: x", "index.html": ""}, "procfile"),
        ({"index.html": ""}, None),
        ({"public/other.html": ""}, None),
    ],
)
def test_which_built_in_detects_an_app(
    tmp_path: Path, files: dict[str, str], detected: str | None
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    first = None
    for pack in builder.builtin_detect_order():
        argv = [str(pack / "bin" / "detect"), str(tmp_path)]
        if subprocess.run(argv, capture_output=True, timeout=30).returncode == 0:
            first = pack.name
            break
    assert first == detected
