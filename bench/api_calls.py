"""What authentication, permissions and the per-user call limit cost each API request:
GET /apps/NAME and GET /apps (1,000 apps, half of them the user's) as the operator and as a
user, on the real application and a real SQLite store (Flask's test client: no network,
no server, so the figures are the API's own work).

Every user request reads the token, takes a call from the user's bucket (a write on a
kept connection) and asks the app's permission; the operator's skips the bucket.

Usage: .venv/bin/python bench/api_calls.py [RUNS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from flask.testing import FlaskClient

from paas.api import create_app
from paas.domain.settings import Settings
from paas.state.store import Store

ADMIN = "bench-admin-token-" + "x" * 20


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def measure(client: FlaskClient, token: str, path: str, runs: int) -> list[float]:
    for _ in range(min(20, runs)):  # warm: the first requests open files and fill caches
        client.get(path, headers=headers(token))
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = client.get(path, headers=headers(token))
        seconds.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.get_json()
    return sorted(seconds)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    home = Path(tempfile.mkdtemp(prefix="paas-bench-"))
    settings = Settings(home=home, domain="paas.localhost", containers=False, shared_uid=True)
    client = create_app(settings).test_client()
    store = Store(settings.db_path)
    store.add_token(ADMIN, "admin")
    made = client.post("/users", json={"email": "ada@example.com"}, headers=headers(ADMIN))
    user_token, user_id = made.get_json()["token"], made.get_json()["id"]
    with store.transaction() as tx:
        for i in range(1000):
            tx.execute(
                "INSERT INTO apps (id, name, stack, created_at, owner_id) VALUES (?, ?, ?, ?, ?)",
                (f"bench-{i}", f"app-{i:04d}", "debian-13", "2026-01-01T00:00:00Z",
                 user_id if i % 2 else None),
            )  # fmt: skip
    for who, token in (("operator", ADMIN), ("user", user_token)):
        for path, count in (("/apps/app-0001", runs), ("/apps", max(10, runs // 10))):
            found = measure(client, token, path, count)
            print(
                f"{who:8} GET {path:15} median {statistics.median(found) * 1000:6.2f} ms"
                f"  p90 {found[int(len(found) * 0.9)] * 1000:6.2f} ms  ({count} requests)"
            )


if __name__ == "__main__":
    main()
