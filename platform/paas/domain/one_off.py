"""One-off dynos as values (pure): what is asked for, which command a request runs, and the
frames an attached session is made of.

A one-off dyno is `release.1` (the release phase) or `run.N` (`paas run`, `run:detached`,
app.json's postdeploy): it runs one command of the app's release in a dyno like the others
(same image, config, isolation) and is never routed, restarted or planned. Both kinds are
started from a `OneOff` by one path (paas.reconcile.one_off).

The session protocol, between the CLI, the API's relay and the dyno's supervisor: each
frame is one kind byte and its payload. Over the supervisor's unix socket a frame is
prefixed by its length (4 bytes, big-endian); over the WebSocket a frame is one binary
message. Kinds: from the client, stdin data (`i`), stdin's end (`e`), a window size (`w`,
rows and columns as two 16-bit numbers) and a signal (`s`, its number as one byte); from
the dyno, stdout (`o`), stderr (`r`), a line from the platform (`m`, said on stderr) and
the exit status (`x`, decimal text), always last.
"""

from __future__ import annotations

import shlex
import struct
from dataclasses import dataclass, field

from paas.domain.errors import InvalidParams
from paas.domain.sizes import DEFAULT_SIZE

RUN_TYPE = "run"  # the type, and name prefix, of `paas run`'s dynos: run.1, run.2…
MAX_COMMAND_BYTES = 32 * 1024
MAX_FRAME_BYTES = 1 << 20  # a frame bigger than this is a broken peer, not data

STDIN, STDIN_END, WINDOW, SIGNAL = b"i", b"e", b"w", b"s"
STDOUT, STDERR, MESSAGE, EXIT = b"o", b"r", b"m", b"x"
FROM_CLIENT = (STDIN, STDIN_END, WINDOW, SIGNAL)
FROM_DYNO = (STDOUT, STDERR, MESSAGE, EXIT)


@dataclass(frozen=True)
class OneOff:
    """One one-off dyno to start: its name (run.3, release.1), the shell command it runs,
    the process type whose size it takes unless `size` says, extra environment on top of
    the release's config, and how a client attaches (None rows/cols: no terminal)."""

    name: str
    command: str
    type: str = RUN_TYPE
    size: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    attach: bool = False
    tty: bool = False
    rows: int = 0
    cols: int = 0

    @property
    def kind(self) -> str:
        """The dyno's type: its name's prefix (run, release)."""
        return self.name.split(".", 1)[0]

    def size_of(self, sizes: dict[str, str]) -> str:
        """`--size`, else the formation size of `--type`, else the default size."""
        return self.size or sizes.get(self.type, DEFAULT_SIZE)


def run_name(number: int) -> str:
    return f"{RUN_TYPE}.{number}"


def command_line(argv: list[str]) -> str:
    """`paas run -- ARGS…` as one shell command: one argument is a command line of its own
    (`paas run 'rake db:migrate && echo ok'`); several are words, each quoted as one."""
    if not argv:
        raise InvalidParams("no command given: e.g. paas run -- bash")
    return argv[0] if len(argv) == 1 else shlex.join(argv)


def resolve(command: str, process_types: dict[str, str]) -> str:
    """The command a request runs: a Procfile process name as the first word runs that
    process's command, followed by the rest of the line (Dokku's behaviour); anything else
    runs as written."""
    head, _, rest = command.strip().partition(" ")
    if head in process_types:
        return f"{process_types[head]} {rest}".strip()
    return command


def check_command(command: object) -> str:
    if not isinstance(command, str) or not command.strip():
        raise InvalidParams("command must be a non-empty string: e.g. paas run -- bash")
    if len(command.encode()) > MAX_COMMAND_BYTES or "\0" in command:
        raise InvalidParams(f"command must be under {MAX_COMMAND_BYTES // 1024} KiB, without NUL")
    return command


def check_window(rows: object, cols: object) -> tuple[int, int]:
    """A terminal's size as the API takes it: whole numbers 0-65535 (0: unknown)."""
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (rows, cols)):
        raise InvalidParams("rows and cols must be whole numbers")
    assert isinstance(rows, int) and isinstance(cols, int)
    if not (0 <= rows <= 0xFFFF and 0 <= cols <= 0xFFFF):
        raise InvalidParams("rows and cols must be between 0 and 65535")
    return rows, cols


# --- frames ---------------------------------------------------------------------------
def framed(kind: bytes, payload: bytes = b"") -> bytes:
    """A frame as the supervisor's socket carries it: length, kind, payload."""
    return struct.pack("!I", len(payload) + 1) + kind + payload


def window(rows: int, cols: int) -> bytes:
    return WINDOW + struct.pack("!HH", rows, cols)


def parse_window(payload: bytes) -> tuple[int, int] | None:
    if len(payload) != 4:
        return None
    rows, cols = struct.unpack("!HH", payload)
    return int(rows), int(cols)


def exit_frame(status: int) -> bytes:
    return EXIT + str(status).encode()


def parse_exit(payload: bytes) -> int | None:
    text = payload.decode(errors="replace")
    return int(text) if text.lstrip("-").isdigit() else None


class FrameReader:
    """Length-prefixed frames out of a byte stream, however it is cut."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        """The whole frames (kind + payload) `data` completes; ValueError for a frame no
        peer of ours sends (empty or too big)."""
        self.buffer += data
        frames = []
        while len(self.buffer) >= 4:
            (size,) = struct.unpack("!I", self.buffer[:4])
            if not 1 <= size <= MAX_FRAME_BYTES:
                raise ValueError(f"a frame of {size} bytes")
            if len(self.buffer) < 4 + size:
                break
            frames.append(self.buffer[4 : 4 + size])
            self.buffer = self.buffer[4 + size :]
        return frames
