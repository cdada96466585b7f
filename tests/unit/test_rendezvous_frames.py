"""The rendezvous relay's translation of Heroku's CLI's raw bytes into paas's session
frames (paas.api.rendezvous.to_dyno), over a real socket pair."""

from __future__ import annotations

import socket

from paas.api import rendezvous
from paas.domain import one_off


def frames_sent(data: list[bytes], tty: bool) -> tuple[list[bytes], list[bool]]:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        still_open = [rendezvous.to_dyno(ours, chunk, tty) for chunk in data]
        ours.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := theirs.recv(65536):
            received += chunk
    return one_off.FrameReader().feed(received), still_open


def test_without_a_terminal_the_clis_eot_is_the_end_of_stdin() -> None:
    frames, still_open = frames_sent([b"shout\n", b"\x04"], tty=False)
    assert frames == [one_off.STDIN + b"shout\n", one_off.STDIN_END]
    assert still_open == [True, False]


def test_what_comes_with_the_eot_goes_first_and_nothing_after_it() -> None:
    frames, _ = frames_sent([b"last\x04ignored"], tty=False)
    assert frames == [one_off.STDIN + b"last", one_off.STDIN_END]


def test_on_a_terminal_every_byte_is_the_users_keys() -> None:
    frames, still_open = frames_sent([b"ls\r", b"\x04", b"\x03"], tty=True)
    assert frames == [one_off.STDIN + b"ls\r", one_off.STDIN + b"\x04", one_off.STDIN + b"\x03"]
    assert still_open == [True, True, True]
