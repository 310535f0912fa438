"""The explorer's data as TensorBoard summaries: one string tensor per logged step, one element per
sentence (zlib-compressed JSON, weights as base64 float16).

Written through TensorBoard's summary protos with this plugin's name in ``plugin_data``, so
TensorBoard's own data provider serves it (several runs, ``--logdir_spec``, remote logdirs) and
``--samples_per_plugin nmt_attention=N`` sets how many steps it keeps (10 by default). No torch
here: TensorBoard imports this module when it starts.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from collections.abc import Iterable, Sequence

import numpy as np
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import DataClass, Summary, SummaryMetadata
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

PLUGIN_NAME = "nmt_attention"
FORMAT_VERSION = 1
MATRIX_KEYS = ("attn", "heads")  # arrays of a view, stored as float16


def pack(array: np.ndarray) -> dict:
    """An array as ``{"shape", "f16"}``: float16 keeps attention to 3 decimals at half the bytes."""
    array = np.asarray(array, dtype=np.float16)
    return {"shape": list(array.shape), "f16": base64.b64encode(array.tobytes()).decode("ascii")}


def unpack(packed: dict) -> np.ndarray:
    """The float32 array ``pack`` stored."""
    raw = np.frombuffer(base64.b64decode(packed["f16"]), dtype=np.float16)
    return raw.reshape(packed["shape"]).astype(np.float32)


def encode_record(record: dict) -> bytes:
    """One sentence's record (views holding numpy arrays) as compressed JSON bytes."""
    stored = dict(record, views={})
    for name, view in record.get("views", {}).items():
        stored["views"][name] = {
            key: pack(value) if key in MATRIX_KEYS and value is not None else value
            for key, value in view.items()
        }
    return zlib.compress(json.dumps(stored, ensure_ascii=False).encode("utf-8"), 6)


def decode_record(data: bytes) -> dict:
    """A stored record back, its matrices as float32 numpy arrays."""
    record = json.loads(zlib.decompress(data).decode("utf-8"))
    for view in record.get("views", {}).values():
        for key in MATRIX_KEYS:
            if isinstance(view.get(key), dict):
                view[key] = unpack(view[key])
    return record


def summary(tag: str, records: Sequence[dict]) -> Summary:
    """A ``Summary`` holding every record of one step under ``tag`` (e.g. "valid")."""
    metadata = SummaryMetadata(
        display_name=tag,
        summary_description="nmt attention explorer records",
        data_class=DataClass.DATA_CLASS_TENSOR,
    )
    metadata.plugin_data.plugin_name = PLUGIN_NAME
    metadata.plugin_data.content = json.dumps({"version": FORMAT_VERSION}).encode("utf-8")
    values = np.array([encode_record(r) for r in records], dtype=object)
    proto = tensor_util.make_tensor_proto(values, shape=[len(records)])
    return Summary(value=[Summary.Value(tag=tag, metadata=metadata, tensor=proto)])


def records_of(values: Iterable[bytes]) -> list[dict]:
    """The records of one step, from the string tensor a data provider returns."""
    return [decode_record(value) for value in np.asarray(values, dtype=object).ravel()]


def write_records(logdir: str, tag: str, found: Sequence[dict], step: int = 0) -> None:
    """Write records as a new event file in ``logdir`` (``tensorboard --logdir`` shows them)."""
    writer = EventFileWriter(logdir)
    try:
        writer.add_event(Event(wall_time=time.time(), step=step, summary=summary(tag, found)))
    finally:
        writer.close()
