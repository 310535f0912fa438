"""Screenshot the Attention tab as a user sees it: TensorBoard on a run, the tab opened in headless
Chromium, the first validation sentence searched live so the beam tree shows. Prints how long the
tab took to show its first grid (the page's ``nmt-first-grid`` User Timing mark).

    python scripts/attention_screenshot.py outputs/demo/<run> docs/attention_tab.png
"""

from __future__ import annotations

import argparse

from browser import Browser, chromium, tensorboard_server

FRAME = "document.querySelector('iframe')?.contentDocument"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", help="a run directory (the one holding checkpoints/)")
    parser.add_argument("output", help="the PNG to write")
    parser.add_argument("--width", type=int, default=1500)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()
    executable = chromium()
    if executable is None:
        raise SystemExit("Chromium is not installed (apt-get install -y chromium)")
    with tensorboard_server(args.logdir) as url, Browser(executable, args.width, args.height) as b:
        b.open(f"{url}/#nmt_attention")
        b.wait_for(f"{FRAME}?.querySelectorAll('.attn-cell').length > 0", timeout=60)
        first = b.evaluate(
            "document.querySelector('iframe').contentWindow.performance"
            ".getEntriesByName('nmt-first-grid')[0].startTime"
        )
        cells = b.evaluate(f"{FRAME}.querySelectorAll('.attn-cell').length")
        print(f"the tab showed its first grid ({cells} cells) {first:.0f} ms after it was opened")
        b.evaluate(f"{FRAME}.getElementById('search-live').click()")
        b.wait_for(f"{FRAME}.querySelectorAll('.beam-node.beam-best').length > 0", timeout=60)
        b.evaluate(f"{FRAME}.querySelectorAll('.attn-row-label')[2].click()")
        b.screenshot(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
