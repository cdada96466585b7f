"""Where the CLI gets its API address and token, what `paas login` writes, and errors."""

from __future__ import annotations

import json
import netrc
import stat
from pathlib import Path

import pytest
from cli_fake_api import TOKEN, UNAUTHORIZED, FakeApi, run

from paas.cli import credentials


def test_missing_token_says_how_to_fix_it(api: FakeApi) -> None:
    result = run("apps")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: no API token found")
    assert "paas login" in result.stderr and "PAAS_API_TOKEN" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert api.requests == []


def test_wrong_token_prints_the_api_message(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAAS_API_URL", api.url)
    monkeypatch.setenv("PAAS_API_TOKEN", "wrong")
    result = run("apps")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {UNAUTHORIZED}")
    assert len(result.stderr.splitlines()) == 1


def test_unreachable_api_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAAS_API_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("PAAS_API_TOKEN", TOKEN)
    result = run("apps")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach the paas API at http://127.0.0.1:9")
    assert len(result.stderr.splitlines()) == 1


def test_api_error_message_is_printed(logged_in: FakeApi) -> None:
    result = run("apps:info", "-a", "nope")
    assert result.exit_code == 1
    assert result.stderr == "error: app 'nope' not found: `paas apps` lists the apps\n"


def test_login_stores_credentials_and_netrc(api: FakeApi, isolated: Path) -> None:
    result = run("login", "--api-url", api.url + "/", input=f"admin\n{TOKEN}\n")
    assert result.exit_code == 0, result.output
    assert "as admin" in result.stdout

    stored = isolated / ".config" / "paas" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert json.loads(stored.read_text()) == {"api_url": api.url, "token": TOKEN}

    netrc_file = isolated / ".netrc"
    assert stat.S_IMODE(netrc_file.stat().st_mode) == 0o600
    assert netrc.netrc(str(netrc_file)).authenticators("127.0.0.1") == ("paas", "", TOKEN)

    # The stored credentials are now enough on their own.
    assert run("apps").exit_code == 0


def test_login_reads_the_token_from_stdin_and_replaces_the_netrc_entry(
    api: FakeApi, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(isolated / "xdg"))
    (isolated / ".netrc").write_text(
        "machine example.com login me password keep\n"
        "machine 127.0.0.1\n  login paas\n  password old-token\n"
    )
    result = run("login", "--api-url", api.url, input=TOKEN + "\n")
    assert result.exit_code == 0, result.output

    assert (isolated / "xdg" / "paas" / "credentials.json").exists()
    parsed = netrc.netrc(str(isolated / ".netrc"))
    assert parsed.authenticators("127.0.0.1") == ("paas", "", TOKEN)
    assert parsed.authenticators("example.com") == ("me", "", "keep")
    assert "old-token" not in (isolated / ".netrc").read_text()


def test_login_never_takes_the_token_from_the_command_line(api: FakeApi, isolated: Path) -> None:
    result = run("login", "--api-url", api.url, "--token", TOKEN)
    assert result.exit_code == 2 and "No such option '--token'" in result.stderr
    assert not (isolated / ".config").exists()


def test_login_with_another_accounts_email_stores_nothing(api: FakeApi, isolated: Path) -> None:
    result = run("login", "--api-url", api.url, input=f"ada@example.com\n{TOKEN}\n")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: that token belongs to admin, not ada@example.com")
    assert not (isolated / ".config").exists()


def test_login_with_a_wrong_token_stores_nothing(api: FakeApi, isolated: Path) -> None:
    result = run("login", "--api-url", api.url, input="wrong\n")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {UNAUTHORIZED}")
    assert not (isolated / ".config").exists()
    assert not (isolated / ".netrc").exists()


def test_token_file_is_the_last_resort(
    api: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "admin-token"
    token_file.write_text(TOKEN + "\n")
    monkeypatch.setenv("PAAS_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("PAAS_API_URL", api.url)
    assert run("apps").exit_code == 0


def test_environment_wins_over_stored_credentials(isolated: Path) -> None:
    environ = {"HOME": str(isolated), "PAAS_API_TOKEN": "from-env"}
    credentials.save_credentials(environ, credentials.Settings("http://h:1", "stored"))
    assert credentials.load_settings(environ) == credentials.Settings("http://h:1", "from-env")
    del environ["PAAS_API_TOKEN"]
    assert credentials.load_settings(environ).token == "stored"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("", "machine h login paas password T\n"),
        ("machine h login paas password OLD", "machine h login paas password T\n"),
        (
            "# mine\nmachine a login x password y\n\nmachine h\n  login paas\n  password OLD\n"
            "machine b login z password machine\n",
            "# mine\nmachine a login x password y\n\nmachine b login z password machine\n"
            "machine h login paas password T\n",
        ),
        (
            "machine h login paas password OLD\nmacdef init\ncd /\n\ndefault login anon",
            "\ndefault login anon\nmachine h login paas password T\n",
        ),
    ],
)
def test_netrc_entry_is_replaced_and_the_rest_kept(before: str, after: str) -> None:
    assert credentials.netrc_with_entry(before, "h", "paas", "T") == after
