"""Heroku's Range pagination (paas.domain.ranges): pages, bounds, and refusals."""

from __future__ import annotations

import pytest

from paas.domain import ranges
from paas.domain.errors import InvalidParams

RELEASES = [{"version": v, "id": f"id-{v:02d}"} for v in range(1, 40)]


def walk(header: str | None) -> list[list[object]]:
    """Every page a client gets by sending each Next-Range back as its Range."""
    pages = []
    while True:
        page = ranges.page(RELEASES, ranges.parse(header, ("id", "version")))
        pages.append([item["version"] for item in page.items])
        if page.next_range is None:
            return pages
        header = page.next_range


def test_heroku_clis_newest_first_page_walks_every_release_once() -> None:
    pages = walk("version ..; max=15, order=desc")
    assert pages[0] == list(range(39, 24, -1))
    assert [v for p in pages for v in p] == list(range(39, 0, -1))


def test_numbers_sort_as_numbers_not_text() -> None:
    page = ranges.page(RELEASES, ranges.parse("version 9..11", ("version",)))
    assert [item["version"] for item in page.items] == [9, 10, 11]
    assert page.content_range == "version 9..11; max=200"


def test_no_header_is_everything_by_the_first_field() -> None:
    page = ranges.page(RELEASES, ranges.parse(None, ("id", "version")))
    assert len(page.items) == 39 and page.next_range is None
    assert page.content_range == "id id-01..id-39; max=200"


def test_exclusive_start_leaves_the_bound_out() -> None:
    page = ranges.page(RELEASES, ranges.parse("version ]37..; max=5", ("version",)))
    assert [item["version"] for item in page.items] == [38, 39]


@pytest.mark.parametrize(
    "header", ["colour ..", "version ..; max=x", "version ..; order=sideways", "; max=3"]
)
def test_a_bad_range_names_what_to_send(header: str) -> None:
    with pytest.raises(InvalidParams, match="Range"):
        ranges.parse(header, ("id", "version"))


def test_options_may_end_with_a_semicolon_as_herokus_paginator_sends_them() -> None:
    # `heroku domains` sends `id ..; max=1000;`; `config:set` sends `order=desc,max=1`
    assert ranges.parse("id ..; max=1000;", ("id",)).max == 1000
    assert ranges.parse("version ..; order=desc,max=1", ("version",)).descending
