"""The Attention tab as a user sees it: ``tensorboard --logdir <run>`` in a subprocess, the tab's
page in headless Chromium, cells hovered and labels clicked by page scripts. Skips without
Chromium (``apt-get install -y chromium``; ``.ci/run`` installs it)."""

from __future__ import annotations

import json
import urllib.request

import pytest
from browser import Browser, chromium, tensorboard_server

from nmt.tensorboard_plugin.records import PLUGIN_NAME

pytestmark = pytest.mark.skipif(chromium() is None, reason="Chromium is not installed")

CELLS = "document.querySelectorAll('.attn-cell')"


@pytest.fixture(scope="module")
def tensorboard(explored_run):
    with tensorboard_server(explored_run[0]) as url:
        yield url


@pytest.fixture
def page(tensorboard):
    with Browser(chromium()) as browser:
        browser.open(f"{tensorboard}/data/plugin_entry.html?name={PLUGIN_NAME}")
        browser.wait_for(f"{CELLS}.length > 0")
        yield browser


def test_the_plugin_is_listed_enabled(tensorboard):
    with urllib.request.urlopen(f"{tensorboard}/data/plugins_listing") as answer:
        listing = json.load(answer)
    assert listing[PLUGIN_NAME]["enabled"]


def test_the_default_view_is_the_first_sentences_grid_with_hover(page: Browser, explored_run):
    run, _ = explored_run
    shown = page.evaluate(
        "Array.from(document.querySelectorAll('.attn-row-label')).map(e => e.textContent)"
    )
    cells = page.evaluate(f"{CELLS}.length")
    assert cells >= 20 and cells % len(shown) == 0  # a full T x S grid
    hovered = page.evaluate(
        f"""(() => {{
            const cell = {CELLS}[3];
            cell.dispatchEvent(new MouseEvent('mouseover', {{bubbles: true}}));
            return [cell.dataset.weight, document.getElementById('attn-tooltip').textContent];
        }})()"""
    )
    weight, tooltip = hovered
    assert f"weight: {weight}" in tooltip and 0.0 <= float(weight) <= 1.0
    sure = page.evaluate("document.querySelectorAll('.attn-cell.gold-sure').length")
    assert sure > 0  # the generated corpus' gold links are drawn
    assert page.evaluate("document.querySelectorAll('.beam-node').length") == 0  # none logged


def test_searching_a_logged_sentence_live_draws_its_beam_tree(page: Browser):
    page.evaluate("document.getElementById('search-live').click()")
    best = page.wait_for("document.querySelectorAll('.beam-node.beam-best').length")
    assert best > 1 and page.evaluate("document.querySelectorAll('.attn-cell').length") >= 20


def test_word_mode_and_a_clicked_target_word(page: Browser):
    pieces = page.evaluate(f"{CELLS}.length")
    page.evaluate(
        "Array.from(document.querySelectorAll('button')).find(b => b.textContent === 'word')"
        ".click()"
    )
    words = page.wait_for(f"{CELLS}.length < {pieces} && {CELLS}.length")
    assert 0 < words < pieces
    page.evaluate("document.querySelectorAll('.attn-row-label')[0].click()")
    spans = page.wait_for("document.querySelectorAll('.attn-source-text span').length")
    assert spans > 1


def test_the_live_box_translates_and_re_decodes_with_an_alternative(page: Browser):
    """Type a sentence, translate, click the first output piece, choose its runner-up: the new
    output starts with that piece (the backend forced it)."""
    page.evaluate(
        """(() => {
            document.getElementById('live-input').value = 'My rabbit sees children.';
            document.getElementById('live-button').click();
        })()"""
    )
    page.wait_for("!!document.getElementById('back-to-logged')")
    page.evaluate("document.querySelectorAll('.attn-row-label')[0].click()")
    page.wait_for("document.querySelectorAll('button.topk-alt').length >= 2")
    chosen = page.evaluate(
        """(() => {
            const other = document.querySelector('button.topk-alt:not(.topk-chosen)');
            other.click();
            return other.textContent.trim().split(/\\s+/)[0];
        })()"""
    )
    first = "document.querySelectorAll('.attn-row-label')[0]?.textContent"
    page.wait_for(f"{first} === {chosen!r}")
    assert page.evaluate("document.getElementById('live-error').textContent") == ""
