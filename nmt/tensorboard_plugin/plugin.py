"""The Attention tab: a dynamic TensorBoard plugin (entry point ``tensorboard_plugins``).

Routes, under ``/data/plugin/nmt_attention/``; all GET, all JSON but the page's two files:

- ``index.js``, ``style.css``: the page (``static/``), loaded in TensorBoard's plugin iframe;
- ``runs``: ``{"runs": [{"run", "tags", "live"}]}``, ``live`` when the run has a checkpoint;
- ``sentences?run&tag[&step]``: ``{"step", "steps", "sentences": [{"index", "source",
  "reference", "hypothesis", "src_len", "tgt_len", "aer", "entropy"}]}`` (default: last step);
- ``sentence?run&tag&step&index``: one record (``nmt.inference.explore``): ``views.reference``
  (teacher-forced) and ``views.hypothesis``, each ``{"src", "tgt", "src_words", "tgt_words",
  "attn" (T x S), "heads" (h x T x S or null), "gold", "aer", "entropy", "ids", "topk"}``, and
  ``beam`` (``{"beam_size", "nodes": [{"id", "parent", "depth", "piece", "score", "final"}],
  "best"}`` or null);
- ``translate?run&text[&prefix=id,id,...]``: a live record, the output forced to start with
  ``prefix``.

A bad request gets ``{"error": ...}`` with a 4xx status, never a traceback or a crashed
TensorBoard.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.data import provider
from tensorboard.plugins import base_plugin
from werkzeug import Request, Response

from nmt.tensorboard_plugin.live import LiveError, LiveTranslator
from nmt.tensorboard_plugin.records import MATRIX_KEYS, PLUGIN_NAME, records_of

log = logging.getLogger("nmt")
STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {"index.js": "text/javascript", "style.css": "text/css"}
CACHED_STEPS = 64  # decoded steps kept in memory (a step of 32 sentences is about 1 MB)


class RequestError(ValueError):
    """A request that cannot be answered as asked: its message goes back to the page."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _json(request: Request, payload: object, status: int = 200) -> Response:
    return http_util.Respond(request, payload, "application/json; charset=utf-8", code=status)


def _jsonable(record: dict) -> dict:
    """A record with its matrices as nested lists of 4-decimal floats."""
    views = {
        name: {
            key: np.round(value, 4).tolist() if key in MATRIX_KEYS and value is not None else value
            for key, value in view.items()
        }
        for name, view in record.get("views", {}).items()
    }
    return dict(record, views=views)


def _summary(record: dict) -> dict:
    """A sentence's line in the picker."""
    keys = ("index", "source", "reference", "hypothesis", "src_len", "tgt_len", "aer", "entropy")
    return {key: record.get(key) for key in keys}


class AttentionPlugin(base_plugin.TBPlugin):
    """Serves the explorer records of every run, and live translations with a run's checkpoint."""

    plugin_name = PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext) -> None:
        self._data = context.data_provider
        self._downsample = (context.sampling_hints or {}).get(PLUGIN_NAME) or 10_000
        self._live = LiveTranslator(context.logdir)
        self._cache: OrderedDict[tuple, list[dict]] = OrderedDict()
        self._lock = threading.Lock()

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        return base_plugin.FrontendMetadata(
            es_module_path="/index.js", tab_name="Attention", disable_reload=True
        )

    def is_active(self) -> bool:
        return False  # TensorBoard asks the data provider which plugins have data

    def get_plugin_apps(self) -> dict:
        apps = {f"/{name}": self._static for name in STATIC_TYPES}
        for route, handler in {
            "runs": self._runs,
            "sentences": self._sentences,
            "sentence": self._sentence,
            "translate": self._translate,
        }.items():
            apps[f"/{route}"] = self._answering(handler)
        return apps

    @Request.application
    def _static(self, request: Request) -> Response:
        name = request.path.rsplit("/", 1)[-1]
        body = (STATIC / name).read_bytes()
        return http_util.Respond(request, body, f"{STATIC_TYPES[name]}; charset=utf-8")

    def _answering(self, handler):
        """A WSGI app calling ``handler(request) -> payload``, errors answered as JSON."""

        @Request.application
        def app(request: Request) -> Response:
            try:
                return _json(request, handler(request))
            except (RequestError, LiveError) as error:
                return _json(request, {"error": str(error)}, error.status)
            except errors.PublicError as error:
                return _json(request, {"error": str(error)}, error.http_code)
            except Exception as error:  # noqa: BLE001 - a bad request must not take TensorBoard down
                log.exception("nmt_attention: %s failed", request.path)
                message = f"internal error: {type(error).__name__}: {error}"
                return _json(request, {"error": message}, 500)

        return app

    # --- logged records ---

    def _series(self, request: Request, run: str, tag: str) -> list:
        """Every logged step of ``run``/``tag`` (TensorDatum: step, wall_time, numpy)."""
        found = self._data.read_tensors(
            plugin_util.context(request.environ),
            experiment_id=plugin_util.experiment_id(request.environ),
            plugin_name=PLUGIN_NAME,
            downsample=self._downsample,
            run_tag_filter=provider.RunTagFilter(runs=[run], tags=[tag]),
        )
        series = found.get(run, {}).get(tag)
        if not series:
            raise RequestError(f"run {run!r} has no attention records under tag {tag!r}", 404)
        return sorted(series, key=lambda datum: (datum.step, datum.wall_time))

    def _records(self, request: Request) -> tuple[int, list[int], list[dict]]:
        """The decoded records of the requested step (default: the latest), and all steps."""
        run, tag = _arg(request, "run"), _arg(request, "tag")
        series = self._series(request, run, tag)
        steps = sorted({datum.step for datum in series})
        wanted = request.args.get("step")
        if wanted is None:
            step = steps[-1]
        else:
            step = _integer(wanted, "step")
            if step not in steps:
                raise RequestError(f"run {run!r} logged no {tag!r} records at step {step}", 404)
        datum = [d for d in series if d.step == step][-1]  # a step logged twice: the newest
        key = (run, tag, step, datum.wall_time)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = records_of(datum.numpy)
                while len(self._cache) > CACHED_STEPS:
                    self._cache.popitem(last=False)
            self._cache.move_to_end(key)
            return step, steps, self._cache[key]

    def _runs(self, request: Request) -> dict:
        listed = self._data.list_tensors(
            plugin_util.context(request.environ),
            experiment_id=plugin_util.experiment_id(request.environ),
            plugin_name=PLUGIN_NAME,
        )
        runs = [
            {"run": run, "tags": sorted(tags), "live": self._live.checkpoint_for(run) is not None}
            for run, tags in sorted(listed.items())
        ]
        return {"runs": runs}

    def _sentences(self, request: Request) -> dict:
        step, steps, found = self._records(request)
        return {"step": step, "steps": steps, "sentences": [_summary(r) for r in found]}

    def _sentence(self, request: Request) -> dict:
        step, _, found = self._records(request)
        index = _integer(_arg(request, "index"), "index")
        chosen = [record for record in found if record["index"] == index]
        if not chosen:
            raise RequestError(f"sentence {index} was not logged at step {step}", 404)
        return dict(_jsonable(chosen[0]), step=step)

    # --- live ---

    def _translate(self, request: Request) -> dict:
        prefix = request.args.get("prefix", "")
        forced = [_integer(part, "prefix") for part in prefix.split(",") if part.strip()]
        record = self._live.translate(_arg(request, "run"), _arg(request, "text"), forced)
        return _jsonable(record)


def _arg(request: Request, name: str) -> str:
    value = request.args.get(name)
    if value is None or value == "":
        raise RequestError(f"missing query parameter {name!r}")
    return value


def _integer(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise RequestError(f"{name}={value[:40]!r} is not an integer") from None
