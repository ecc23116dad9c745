"""`fanout report` seen in a real browser: the pages of real runs of the installed
`fanout` rendered in headless Chromium (tests/browser.py), read through the DOM as it
was laid out, hovered, tabbed through, in light and dark, with and without script.

The runs are made once per module (a run with retries and a timeout, one of over 2000
attempts, a merged shard run), each in its own folder; every test opens their pages
afresh. Without Chromium the tests skip, saying why (tests/browser_fixtures.py)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from tests.browser import Browser, png_stats
from tests.helpers import run_fanout
from tests.report_pages import attempts_on_disk, report_of

# Three slots; 3 fails twice (exit 4, "broke"), 8 times out twice: 10 attempts.
MIXED = ["run", "-j", "3", "--retries", "1", "--retry-delay", "100ms", "--timeout", "2s",
         "--", "sleep 0.{}; case {} in 3) echo broke >&2; exit 4;; 8) sleep 9;; esac; echo ok {}",
         ":::", "1", "2", "3", "4", "5", "6", "7", "8"]  # fmt: skip
COMPACT_TASKS = 2100  # over the 2000 attempts up to which bars are links
BARS = "#timeline [data-i]"


@dataclass
class Made:
    run_dir: Path
    page: Path  # the report.html


def make_report(folder: Path, *runs: list[str]) -> Made:
    """The `fanout run`s (or merge) given, in `folder` with its own output dir, then
    `fanout report last`."""
    folder.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("FANOUT_OUTPUT_DIR", str(folder / "out"))
        patch.setenv("NO_COLOR", "1")
        for args in runs:
            if args == ["merge"]:  # every run made so far
                args = ["merge", *map(str, sorted((folder / "out").iterdir()))]  # noqa: PLW2901
            completed = run_fanout(*args, timeout=90)
            assert "Traceback" not in completed.stderr, completed.stderr
        _, path, _ = report_of("last")
    return Made(path.parent, path)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Made:
    return make_report(tmp_path_factory.mktemp("report") / "mixed", MIXED)


@pytest.fixture(scope="module")
def compact(tmp_path_factory: pytest.TempPathFactory) -> Made:
    values = [str(n) for n in range(1, COMPACT_TASKS + 1)]
    run = ["run", "-j", "8", "--", "test", "{}", "-gt", "3", ":::", *values]  # 1-3 fail
    return make_report(tmp_path_factory.mktemp("report") / "compact", run)


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> Made:
    def shard(which: str) -> list[str]:
        return ["run", "-j", "2", "--shard", which, "--", "sleep 0.{}", ":::", *"123456"]

    return make_report(tmp_path_factory.mktemp("report") / "merged",
                       shard("1/2"), shard("2/2"), ["merge"])  # fmt: skip


# --- reading the page -------------------------------------------------------------------


def bars(browser: Browser) -> list[dict[str, Any]]:
    """Every bar: its index, classes, href, box, and its table row's cells and class."""
    found: list[dict[str, Any]] = browser.evaluate(f"""(() => {{
        const rows = document.querySelectorAll('#attempts tbody tr');
        return [...document.querySelectorAll({json.dumps(BARS)})].map(bar => {{
            const i = +bar.getAttribute('data-i'), row = rows[i], box = bar.getBoundingClientRect();
            const href = bar.getAttribute('href');
            return {{i: i, tag: bar.tagName, cls: bar.getAttribute('class'),
                     href: href && new URL(href, document.baseURI).href,
                     top: box.top, bottom: box.bottom, width: box.width, height: box.height,
                     row: row ? [...row.cells].map(c => c.textContent) : null,
                     rowClass: row ? row.className : null}};
        }});
    }})()""")
    return found


def lanes(browser: Browser) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = browser.evaluate("""[...document.querySelectorAll(
        '#timeline g.lane')].map(lane => { const box = lane.querySelector('.track')
            .getBoundingClientRect(); return {slot: lane.dataset.slot, label: lane.dataset.lane,
            top: box.top, bottom: box.bottom, width: box.width}; })""")
    return found


def box(browser: Browser, selector: str) -> dict[str, float]:
    found: dict[str, float] = browser.evaluate(f"""(() => {{
        const box = document.querySelector({json.dumps(selector)}).getBoundingClientRect();
        return {{width: box.width, height: box.height}}; }})()""")
    return found


def tip(browser: Browser) -> str | None:
    """The tooltip's text when it shows, else None."""
    shown: str | None = browser.evaluate("""(() => { const tip = document.getElementById('tip');
        return getComputedStyle(tip).display === 'none' || tip.hidden ? null : tip.textContent;
    })()""")
    return shown


def assert_bars_in_their_lanes(browser: Browser) -> None:
    """Each bar is drawn inside the lane its table row names (the table says the slot
    alone, `2`, or with its shard, `shard 1/2 · 2`)."""
    by_label = {lane["label"].replace("slot ", ""): lane for lane in lanes(browser)}
    for bar in bars(browser):
        lane = by_label[bar["row"][2]]
        assert lane["top"] - 0.5 <= bar["top"] and bar["bottom"] <= lane["bottom"] + 0.5, bar


# --- colours ----------------------------------------------------------------------------


def rgb(css: str) -> tuple[int, int, int]:
    numbers = [float(n) for n in re.findall(r"[\d.]+", css)]
    assert len(numbers) == 3 or (len(numbers) == 4 and numbers[3] == 1), css
    return int(numbers[0]), int(numbers[1]), int(numbers[2])


def luminance(colour: tuple[int, int, int]) -> float:
    """WCAG 2 relative luminance."""
    linear = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4
              for c in colour]  # fmt: skip
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: tuple[int, int, int], second: tuple[int, int, int]) -> float:
    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def colours(browser: Browser, selector: str) -> tuple[str, str]:
    """(color, background-color) computed for the first element matching selector."""
    found: list[str] = browser.evaluate(f"""(() => {{
        const style = getComputedStyle(document.querySelector({json.dumps(selector)}));
        return [style.color, getComputedStyle(document.body).backgroundColor]; }})()""")
    return found[0], found[1]


# --- the tests --------------------------------------------------------------------------


def test_one_bar_per_attempt_in_lanes_per_slot_failures_first_links_that_open(
    browser: Browser, mixed: Made
) -> None:
    browser.open(mixed.page)
    on_disk = attempts_on_disk(mixed.run_dir)
    assert len(on_disk) == 10
    drawn = bars(browser)
    assert [bar["i"] for bar in drawn] == list(range(len(on_disk)))
    assert all(bar["tag"] == "a" and bar["width"] > 0 and bar["height"] > 0 for bar in drawn)
    assert sorted(bar["cls"].split()[1] for bar in drawn) == sorted(
        f"st-{status}" for _, _, status in on_disk)
    assert sorted((bar["row"][0], int(bar["row"][1]), bar["row"][5]) for bar in drawn) == sorted(
        on_disk)
    assert [lane["slot"] for lane in lanes(browser)] == ["1", "2", "3"]
    assert_bars_in_their_lanes(browser)
    failures = browser.evaluate("[...document.querySelectorAll('#failure-list li')]"
                             ".map(li => li.innerText)")  # fmt: skip
    assert [item.split(":")[0].split() for item in failures] == [["failure", "3"], ["timeout", "8"]]
    assert "broke" in failures[0] and "timed out after 2s" in failures[1]
    assert browser.evaluate("document.getElementById('verdict').innerText").startswith("FAIL")
    for bar in drawn:
        parts = urlsplit(bar["href"])
        assert parts.scheme == "file", bar["href"]
        target = Path(unquote(parts.path))
        assert target.is_file() and target.parent == mixed.run_dir, bar["href"]
        assert json.loads(target.read_text())["task_id"] == bar["row"][0]


@pytest.mark.parametrize("javascript", [True, False], ids=["script", "no-script"])
def test_the_page_asks_for_nothing_but_itself_and_logs_no_error(
    browser: Browser, mixed: Made, javascript: bool
) -> None:
    browser.open(mixed.page, javascript=javascript)
    browser.hover(f'{BARS}[data-i="0"]')
    assert browser.requests == [mixed.page.as_uri()]
    assert browser.failed_requests == []
    assert browser.console_errors == []


def test_without_script_the_timeline_and_table_show_and_the_tip_stays_hidden(
    browser: Browser, mixed: Made, tmp_path: Path
) -> None:
    browser.open(mixed.page, javascript=False)
    for selector in ("#timeline", "#attempts", "#failure-list", "#slowest-table", "#histogram"):
        size = box(browser, selector)
        assert size["width"] > 0 and size["height"] > 0, (selector, size)
    assert all(bar["width"] > 0 and bar["height"] > 0 for bar in bars(browser))
    browser.hover(f'{BARS}[data-i="2"]')
    assert tip(browser) is None
    assert browser.evaluate("getComputedStyle(document.getElementById('filter')).display") == "none"
    shot = browser.screenshot()
    assert png_stats(shot).colours > 30, png_stats(shot)
    whole = browser.screenshot(full_page=True)
    (tmp_path / "report-no-script.png").write_bytes(whole)
    stats = png_stats(whole)
    assert stats.height > 768 and stats.colours > 30, stats


def test_hovering_or_tabbing_to_a_bar_shows_its_attempt_in_the_tip(
    browser: Browser, mixed: Made
) -> None:
    browser.open(mixed.page)
    assert tip(browser) is None
    rows = {bar["i"]: bar["row"] for bar in bars(browser)}
    focused = None
    for _ in range(12):
        browser.press("Tab")
        focused = browser.evaluate("(b => b ? +b.getAttribute('data-i') : null)"
                                f"(document.activeElement.closest({json.dumps(BARS)}))")
        if focused is not None:
            break
    assert focused is not None, "no bar took the keyboard's focus"
    shown = tip(browser)
    assert shown and shown.startswith(rows[focused][0]) and rows[focused][5] in shown, shown
    browser.press("Tab")
    following = browser.evaluate("+document.activeElement.getAttribute('data-i')")
    assert following == focused + 1
    assert (tip(browser) or "").startswith(rows[following][0])
    for index, row in rows.items():
        if row[5] != "success":  # the failures and timeouts, whose tips say why
            browser.hover(f'{BARS}[data-i="{index}"]')
            shown = tip(browser)
            assert shown and shown.startswith(row[0]), (index, shown)
            assert f"attempt {row[1]}" in shown and row[5] in shown and row[4] in shown, shown
    browser.hover("#verdict")
    assert tip(browser) is None


def test_light_and_dark_schemes_differ_and_both_read(browser: Browser, mixed: Made) -> None:
    backgrounds = []
    for dark in (False, True):
        browser.open(mixed.page, dark=dark)
        for selector in ("body", "#verdict", "#counts dt", "#attempts td", "#attempts th"):
            colour, background = colours(browser, selector)
            ratio = contrast(rgb(colour), rgb(background))
            assert ratio > 4.5, (dark, selector, colour, background, ratio)
        backgrounds.append(colours(browser, "body")[1])
        stats = png_stats(browser.screenshot())
        assert stats.colours > 30, (dark, stats)
    assert backgrounds[0] != backgrounds[1], backgrounds
    assert luminance(rgb(backgrounds[1])) < luminance(rgb(backgrounds[0]))


# Every element with text of its own, laid out and outside the drawings: its colour and
# the first background colour behind it.
TEXTS = """(() => {
    const behind = element => {
        for (; element; element = element.parentElement) {
            const colour = getComputedStyle(element).backgroundColor;
            if (colour !== 'rgba(0, 0, 0, 0)') return colour;
        }
        return 'rgb(255, 255, 255)';
    };
    return [...document.querySelectorAll('body *')].filter(element =>
        [...element.childNodes].some(node => node.nodeType === 3 && node.textContent.trim())
        && !element.closest('svg') && element.checkVisibility()
    ).map(element => [element.tagName.toLowerCase() + '.' + element.className + ' "'
        + element.textContent.trim().slice(0, 24) + '"', getComputedStyle(element).color,
        behind(element)]);
})()"""


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
@pytest.mark.parametrize("made", ["mixed", "merged"])  # a failed run, a passed one
def test_every_text_of_the_page_reads_on_its_background(
    browser: Browser, made: str, dark: bool, request: pytest.FixtureRequest
) -> None:
    """WCAG AA: 4.5 to 1 for text under 18.66 px bold, which all of the page's text is."""
    report: Made = request.getfixturevalue(made)
    browser.open(report.page, dark=dark)
    texts = browser.evaluate(TEXTS)
    assert len(texts) > 50
    unreadable: dict[tuple[str, str, float], list[str]] = {}
    for what, colour, background in texts:
        ratio = contrast(rgb(colour), rgb(background))
        if ratio < 4.5:
            unreadable.setdefault((colour, background, round(ratio, 2)), []).append(what)
    assert not unreadable, {pair: sorted(set(whats))[:4] for pair, whats in unreadable.items()}


def test_a_compact_report_draws_rects_and_tips_them_from_the_table(
    browser: Browser, compact: Made
) -> None:
    browser.open(compact.page)
    assert browser.console_errors == []
    drawn = bars(browser)
    assert len(drawn) == COMPACT_TASKS == len(attempts_on_disk(compact.run_dir))
    assert {bar["tag"] for bar in drawn} == {"rect"}
    assert sorted(bar["i"] for bar in drawn) == list(range(COMPACT_TASKS))  # by lane
    assert len(lanes(browser)) == 8
    assert browser.evaluate("document.querySelector('#attempts-section details').open") is False
    # A bar wholly its own at its centre (at 2100 bars some are a pixel wide and overlap).
    index = browser.evaluate(f"""(() => {{
        for (const bar of [...document.querySelectorAll({json.dumps(BARS)})].slice(1000)) {{
            bar.scrollIntoView({{block: 'center', inline: 'center'}});
            const box = bar.getBoundingClientRect();
            if (box.width >= 2 && document.elementFromPoint(box.left + box.width / 2,
                    box.top + box.height / 2) === bar) return +bar.getAttribute('data-i');
        }} return null; }})()""")
    assert index is not None
    browser.hover(f'{BARS}[data-i="{index}"]')
    row = next(bar["row"] for bar in drawn if bar["i"] == index)
    shown = tip(browser)
    assert shown and shown.startswith(f"{row[0]}  attempt 1") and "success" in shown, shown
    failed = [bar for bar in drawn if bar["row"][5] == "failure"]
    assert sorted(bar["row"][0] for bar in failed) == ["1", "2", "3"]
    browser.hover(f'{BARS}[data-i="{failed[0]["i"]}"]')
    assert (tip(browser) or "").startswith(f"{failed[0]['row'][0]}  attempt 1"), tip(browser)


def test_a_merged_run_has_a_lane_per_shard_and_slot_and_a_row_per_shard(
    browser: Browser, merged: Made
) -> None:
    browser.open(merged.page)
    assert [lane["label"] for lane in lanes(browser)] == [
        "shard 1/2 · slot 1", "shard 1/2 · slot 2", "shard 2/2 · slot 1", "shard 2/2 · slot 2"]
    tops = [lane["top"] for lane in lanes(browser)]
    assert tops == sorted(tops) and len(set(tops)) == 4
    assert len(bars(browser)) == 6
    assert_bars_in_their_lanes(browser)
    rows = browser.evaluate("[...document.querySelectorAll('#shard-table tbody tr')]"
                         ".map(row => row.cells[0].innerText)")  # fmt: skip
    assert rows == ["shard 1/2", "shard 2/2"]
    size = box(browser, "#shard-table")
    assert size["width"] > 0 and size["height"] > 0
    assert browser.requests == [merged.page.as_uri()] and browser.console_errors == []


@pytest.mark.parametrize("made", ["mixed", "compact"])
def test_hiding_the_successes_hides_their_bars_and_rows_only(
    browser: Browser, made: str, request: pytest.FixtureRequest
) -> None:
    report: Made = request.getfixturevalue(made)
    browser.open(report.page)
    assert browser.evaluate("getComputedStyle(document.getElementById('filter')).display") != "none"
    browser.evaluate("document.querySelector('#attempts-section details').open = true")
    browser.evaluate("document.querySelector('#filter input').click()")
    assert browser.evaluate("document.querySelector('#filter input').checked") is True
    shown = browser.evaluate(f"""(() => {{
        const seen = e => e.getBoundingClientRect().width > 0;
        const rows = [...document.querySelectorAll('#attempts tbody tr')];
        return {{rows: rows.map(r => [r.cells[5].textContent, seen(r)]),
                 bars: [...document.querySelectorAll({json.dumps(BARS)})].map(b =>
                     [rows[+b.getAttribute('data-i')].cells[5].textContent, seen(b)])}};
    }})()""")
    for what in ("rows", "bars"):
        wrong = [(i, status) for i, (status, seen) in enumerate(shown[what])
                 if seen == (status == "success")]  # fmt: skip
        assert not wrong, f"{what} shown or hidden wrongly (index, status): {wrong[:5]}"
    browser.evaluate("document.querySelector('#filter input').click()")  # and back
    assert all(bar["width"] > 0 for bar in bars(browser))
