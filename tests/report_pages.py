"""Reading a report page in tests without a browser: its elements, with their
attributes, their ancestors' ids and their text (html.parser, as the page is written:
end tags a browser infers, such as </td>, are inferred here too, well enough for
counting rows and reading cells)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tests.helpers import Completed, run_fanout

VOID = {"meta", "br", "input", "img", "link", "rect", "line", "path", "use", "circle"}
IMPLIED = {"td": {"td", "th"}, "th": {"td", "th"}, "tr": {"td", "th", "tr"}}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    ancestors: tuple[str, ...]  # the ids of the elements it is in
    text: list[str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


class Page(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        while self._open and self._open[-1].tag in IMPLIED.get(tag, ()):
            self._open.pop()
        ids = tuple(e.attrs["id"] for e in self._open if "id" in e.attrs)
        element = Element(tag, {name: value or "" for name, value in attrs}, ids)
        self.elements.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self._open.pop()

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index].tag == tag:
                del self._open[index:]
                return

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text.append(data)

    # --- what tests ask -------------------------------------------------------------

    def by_id(self, name: str) -> Element:
        found = [e for e in self.elements if e.attrs.get("id") == name]
        assert len(found) == 1, (name, len(found))
        return found[0]

    def with_class(self, name: str, within: str | None = None) -> list[Element]:
        return [e for e in self.elements
                if name in e.classes and (within is None or within in e.ancestors)]  # fmt: skip

    def tags(self, tag: str, within: str | None = None) -> list[Element]:
        return [e for e in self.elements
                if e.tag == tag and (within is None or within in e.ancestors)]  # fmt: skip

    def bars(self) -> list[Element]:
        """One element a bar (an attempt): `a.bar` in a full page, a `rect` in a compact
        one; each with the `data-i` of its row."""
        return [e for e in self.elements if "data-i" in e.attrs and "timeline" in e.ancestors]

    def lanes(self) -> list[Element]:
        return self.with_class("lane", within="timeline")

    def attempt_rows(self) -> list[Element]:
        return [row for row in self.tags("tr", within="attempts") if not self._in_head(row)]

    def _in_head(self, row: Element) -> bool:
        return "Task" in row.words() and "Attempt" in row.words()

    def failures(self) -> list[str]:
        return [item.words() for item in self.tags("li", within="failure-list")]

    def links(self) -> list[str]:
        return [e.attrs["href"] for e in self.elements if "href" in e.attrs]


def attempts_on_disk(run_dir: Path) -> list[tuple[str, int, str]]:
    """(task id, attempt, status) of every attempt the details files record."""
    found = []
    for details in sorted(run_dir.glob("*.json")):
        document = json.loads(details.read_text())
        if "attempts" in document:
            found += [(document["task_id"], attempt["attempt"], attempt["status"])
                      for attempt in document["attempts"]]  # fmt: skip
    return found


def report_of(run: str = "last", *args: str) -> tuple[Completed, Path, Page]:
    """`fanout report RUN ARGS`, checked to succeed, with the page it wrote."""
    completed = run_fanout("report", run, *args)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("report: "), completed.stdout
    path = Path(completed.stdout.split(" (", 1)[0].removeprefix("report: ")).absolute()
    return completed, path, Page(path.read_text())


def assert_links_resolve(page: Page, folder: Path) -> None:
    """Every link of the page is relative and names a file that exists from `folder`."""
    for href in page.links():
        parts = urlsplit(href)
        assert not parts.scheme and not parts.netloc and not href.startswith("/"), href
        if parts.path:
            target = folder / unquote(parts.path)
            assert target.is_file(), f"{href} -> {os.path.normpath(target)}"
