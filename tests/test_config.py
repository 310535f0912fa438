from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from nmt.commands.cli import CONFIG_DIR
from nmt.config import Config
from nmt.schemas import register_configs

register_configs()


def compose_config(overrides: list[str]) -> Config:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return OmegaConf.to_object(compose(config_name="train", overrides=overrides))


# the options a data source cannot do without
REQUIRED = {
    "files": ["data.root=somewhere"],
    "hf": ["data.name=wmt14", "data.subset=de-en", "data.src=de", "data.tgt=en"],
}


@pytest.mark.parametrize(
    "option", sorted(p.stem for p in (Path(CONFIG_DIR) / "data").glob("*.yaml"))
)
def test_every_data_option_composes_and_selects_its_source(option):
    config = compose_config([f"data={option}", *REQUIRED.get(option, [])])
    assert config.data.source == option


def test_group_options_set_their_source():
    assert compose_config(["data=multi30k"]).data.source == "multi30k"
    assert compose_config(["data=multi30k"]).data.src == "de"
    assert compose_config([]).data.source == "generated"


def test_misspelled_key_fails_with_its_name():
    with pytest.raises(ConfigCompositionException, match="data.srcc"):
        compose_config(["data.srcc=de"])


def test_wrong_type_fails_with_its_key():
    with pytest.raises(ConfigCompositionException, match="train.max_steps"):
        compose_config(["train.max_steps=many"])


def test_files_and_hub_sources_require_their_location():
    with pytest.raises(ValueError, match="data=files needs data.root"):
        compose_config(["data=files"])
    with pytest.raises(ValueError, match="data=hf needs data.name"):
        compose_config(["data=hf"])


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("model.attention", "luong", "model.attention='luong' is not one of"),
        ("model.rnn", "rnn", "model.rnn='rnn'"),
        ("train.device", "tpu", "train.device='tpu'"),
        ("data.spm_type", "word", "data.spm_type='word'"),
        ("data.tgt", "en", "data.src and data.tgt are both"),
        ("decode.n_best", "9", "decode.n_best=9 exceeds"),
        ("train.ema", "1.0", r"train.ema=1.0 must be in \[0, 1\)"),
        ("model.word_dropout", "-0.1", r"model.word_dropout=-0.1 must be in \[0, 1\)"),
    ],
)
def test_closed_choices_are_checked_at_start_up(option, value, message):
    with pytest.raises(ValueError, match=message):
        compose_config([f"{option}={value}"])


def test_peer_preset_is_the_benchmark_shape():
    from nmt.model import build_model, count_parameters

    config = compose_config(["experiment=m30k_peer"])
    assert (config.data.source, config.data.src, config.data.tgt) == ("multi30k", "de", "en")
    assert (config.data.batch_sents, config.decode.beam_size, config.decode.alpha) == (64, 5, 1.0)
    assert count_parameters(build_model(config.model, 8000, 8000)) == 12_270_912


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("m30k_*.yaml"))
)
def test_every_multi30k_preset_runs_from_the_hub_on_any_machine(name):
    from nmt.data.corpus import MULTI30K_HUB_SPLITS
    from nmt.model import build_model, count_parameters

    config = compose_config([f"experiment={name}"])
    assert config.data.source == "multi30k" and config.train.max_time
    assert config.data.root is None  # the hub, unless the user names a local copy
    assert config.data.test_sets and set(config.data.test_sets) <= set(MULTI30K_HUB_SPLITS)
    # the peer shape is measured in float32; every other preset uses bf16 only where native
    assert config.train.precision == ("fp32" if name == "m30k_peer" else "auto")
    assert 5_000_000 < count_parameters(build_model(config.model, 8000, 8000)) < 100_000_000


def test_the_demo_preset_is_step_bounded_on_the_generated_corpus():
    """Its figures must not depend on the machine's speed: a step budget, no time budget."""
    config = compose_config(["experiment=demo"])
    assert config.data.source == "generated" and config.data.test_sets == ["test"]
    assert config.train.max_time is None and config.train.max_steps
