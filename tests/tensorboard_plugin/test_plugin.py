"""The Attention tab's backend through TensorBoard's own WSGI app: what training logged, read back
through the plugin's routes, equals what the model computes; the live box is bounded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins import base_plugin
from werkzeug.test import Client

from nmt.data.prepare import prepare
from nmt.inference.decoding import force_decode, load_translator
from nmt.inference.scoring import forced_alignments, split_gold
from nmt.metrics import alignment_error_rate
from nmt.schemas import TranslateConfig
from nmt.tensorboard_plugin.plugin import AttentionPlugin
from nmt.tensorboard_plugin.records import PLUGIN_NAME, decode_record, encode_record, records_of

ROUTE = f"/data/plugin/{PLUGIN_NAME}"


def tensorboard_app(logdir: Path) -> tuple[Client, AttentionPlugin]:
    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={PLUGIN_NAME: 0})
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    context = base_plugin.TBContext(logdir=str(logdir), data_provider=provider)
    plugin = AttentionPlugin(context)
    return Client(application.TensorBoardWSGI([plugin], data_provider=provider)), plugin


def get(client: Client, path: str) -> tuple[int, dict]:
    response = client.get(path)
    assert response.content_type.startswith("application/json")
    return response.status_code, json.loads(response.get_data(as_text=True))


@pytest.fixture(scope="module")
def app(explored_run):
    return tensorboard_app(explored_run[0])


def test_records_round_trip_at_float16_precision():
    attn = np.random.default_rng(0).dirichlet(np.ones(7), size=5)
    record = {"index": 3, "views": {"reference": {"attn": attn, "heads": None, "src": ["▁a"]}}}
    back = decode_record(encode_record(record))
    assert back["index"] == 3 and back["views"]["reference"]["src"] == ["▁a"]
    np.testing.assert_allclose(back["views"]["reference"]["attn"], attn, atol=5e-4)


def test_the_tab_is_listed_and_the_run_has_records(app):
    client, _ = app
    _, listing = get(client, "/data/plugins_listing")
    assert listing[PLUGIN_NAME]["enabled"] and listing[PLUGIN_NAME]["tab_name"] == "Attention"
    assert client.get(f"{ROUTE}/index.js").status_code == 200
    _, runs = get(client, f"{ROUTE}/runs")
    assert runs == {"runs": [{"run": "tensorboard", "tags": ["valid"], "live": True}]}


def test_logged_attention_reads_back_as_the_model_computes_it(app, explored_run):
    client, _ = app
    run, cfg = explored_run
    status, listed = get(client, f"{ROUTE}/sentences?run=tensorboard&tag=valid")
    assert status == 200 and listed["steps"] == [6, 12] and listed["step"] == 12
    assert [s["index"] for s in listed["sentences"]] == list(range(6))
    _, record = get(client, f"{ROUTE}/sentence?run=tensorboard&tag=valid&step=12&index=2")
    view = record["views"]["reference"]
    # independently: the step-12 weights (last.pt) read the same reference
    translator = load_translator(str(run / "checkpoints" / "last.pt"))
    corpus = prepare(cfg.data, ["valid"], log=lambda _: None)
    (forced,) = force_decode(translator.model, translator.vocabs, corpus.encoded["valid"], [2])
    assert view["src"] == forced.src_labels and view["tgt"] == forced.tgt_labels
    np.testing.assert_allclose(np.array(view["attn"]), forced.attn, atol=2e-3)
    np.testing.assert_allclose(np.array(view["heads"]), forced.head_attn, atol=2e-3)
    assert view["gold"]["sure"] and record["source"] == corpus.raw["valid"].src[2]
    _, earlier = get(client, f"{ROUTE}/sentence?run=tensorboard&tag=valid&step=6&index=2")
    assert earlier["step"] == 6 and earlier["views"]["reference"]["attn"] != view["attn"]


def test_validation_logs_the_aer_of_the_whole_split(explored_run):
    """valid/aer from the batched loss pass equals nmt-evaluate's AER (one forced pass per
    sentence), at the weights of the last validation."""
    run, cfg = explored_run
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    logged = events.Scalars("valid/aer")[-1]
    assert logged.step == 12 and not [t for t in events.Tags()["scalars"] if "hparam" in t]
    translator = load_translator(str(run / "checkpoints" / "last.pt"))
    valid = prepare(cfg.data, ["valid"], log=lambda _: None).raw["valid"]
    gold = split_gold(valid)
    predicted = forced_alignments(translator, valid, "argmax", 0.3)
    expected = alignment_error_rate(predicted, gold.sure, gold.possible).aer
    assert logged.value == pytest.approx(expected, abs=1e-6)
    assert 0.0 < events.Scalars("valid/attn_entropy")[-1].value


def test_live_translation_honours_a_forced_prefix(app, explored_run):
    client, _ = app
    text = "My rabbit sees the green brother."
    status, free = get(client, f"{ROUTE}/translate?run=tensorboard&text={text}")
    assert status == 200 and free["reference"] is None and free["beam"]["nodes"]
    own = free["views"]["hypothesis"]
    assert len(own["topk"]) == len(own["tgt"]) == len(own["ids"])
    alternative = own["topk"][0][1]["id"]  # the runner-up at the first step
    prefix = f"{alternative},{own['ids'][1]}"
    _, forced = get(client, f"{ROUTE}/translate?run=tensorboard&text={text}&prefix={prefix}")
    assert forced["views"]["hypothesis"]["ids"][:2] == [alternative, own["ids"][1]]
    assert forced["checkpoint"] == "checkpoints/best.pt"


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("run=../..&text=hello", 404, "no checkpoint under the logdir"),
        ("run=tensorboard&text=" + "a" * 500, 400, "at most 400"),
        ("run=tensorboard&text=" + "a " * 150, 400, "pieces; at most 100"),
        ("run=tensorboard", 400, "missing query parameter 'text'"),
        ("run=tensorboard&text=hi&prefix=1,x", 400, "prefix='x' is not an integer"),
        ("run=tensorboard&text=hi&prefix=99999", 400, "outside the vocabulary"),
    ],
)
def test_bad_live_requests_get_json_errors(app, query, status, says):
    code, answer = get(app[0], f"{ROUTE}/translate?{query}")
    assert code == status and says in answer["error"]


def test_a_second_live_request_meanwhile_is_refused(app):
    client, plugin = app
    with plugin._live._busy:
        code, answer = get(client, f"{ROUTE}/translate?run=tensorboard&text=hello")
    assert code == 429 and "busy" in answer["error"]


def test_bad_record_requests_get_json_errors(app):
    client, _ = app
    assert get(client, f"{ROUTE}/sentences?run=nope&tag=valid")[0] == 404
    assert get(client, f"{ROUTE}/sentences?run=tensorboard&tag=valid&step=7")[0] == 404
    assert get(client, f"{ROUTE}/sentence?run=tensorboard&tag=valid&index=99")[0] == 404
    assert get(client, f"{ROUTE}/sentence?run=tensorboard&tag=valid&index=x")[0] == 400


def test_translate_logs_its_sentences_for_the_tab(explored_run, tmp_path):
    from nmt.commands.translate import translate

    run, _ = explored_run
    source = tmp_path / "in.txt"
    source.write_text("My rabbit sees children.\n\nThe green brother notices a dog.\n")
    cfg = TranslateConfig(
        checkpoint=str(run),
        input=str(source),
        output=str(tmp_path / "out.txt"),
        attention_logdir=str(tmp_path / "logs"),
    )
    translate(cfg)
    events = EventAccumulator(str(tmp_path / "logs"), size_guidance={"tensors": 0})
    events.Reload()
    (datum,) = events.Tensors("translate")
    found = records_of(datum.tensor_proto.string_val)
    outputs = (tmp_path / "out.txt").read_text().splitlines()
    assert [r["index"] for r in found] == [0, 2]
    assert [r["hypothesis"] for r in found] == [outputs[0], outputs[2]]
    assert "reference" not in found[0]["views"]
    client, _ = tensorboard_app(tmp_path / "logs")
    _, runs = get(client, f"{ROUTE}/runs")
    assert runs["runs"] == [{"run": ".", "tags": ["translate"], "live": False}]
