"""The config: schema defaults and ranges, per-run settings, planning."""

from __future__ import annotations

import copy

import pytest
import yaml

from selftrain import study

from .conftest import ROOT

SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def validated(config: dict) -> dict:
    config = copy.deepcopy(config)
    study.validate(config, SCHEMA)
    return config


def test_the_default_config_is_the_course_setup():
    config = validated(yaml.safe_load((ROOT / "config.yaml").read_text()))
    assert config["data"]["labeled_per_class"] == 2000
    assert study.pool_size(config) == 38000
    assert study.planned_iterations(config, "course") == 15
    settings = study.run_settings(config, "course")
    assert settings["k"] == 500 and settings["mc_passes"] == 10


def test_the_schema_fills_defaults_inside_each_run():
    config = validated({"runs": {"quick": {"k": 10}}})
    assert config["runs"]["quick"]["strategy"] == "entropy"
    assert config["runs"]["quick"]["iterations"] == 15
    assert config["training"]["batch_size"] == 128


def test_a_run_setting_overrides_the_shared_training_setting():
    config = validated({"runs": {"long": {"max_epochs": 7}, "plain": {}}})
    assert study.run_settings(config, "long")["max_epochs"] == 7
    assert study.run_settings(config, "plain")["max_epochs"] == 100


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"runs": {"course": {"k": 0}}}, "runs.course.k is wrong: 0 is less than"),
        ({"runs": {"course": {"k": -5}}}, "-5 is less than the minimum of 1"),
        ({"runs": {"course": {"k": "many"}}}, "'many' is not of type 'integer'"),
        ({"runs": {"course": {"strategy": "best"}}}, "'best' is not one of"),
        ({"data": {"labeled_per_class": 7000}}, "7000 is greater than the maximum"),
        ({"seeds": []}, "should be non-empty"),
        ({"runs": {"bad name!": {}}}, "does not match"),
        ({"training": {"epochs": 3}}, "Additional properties are not allowed"),
    ],
)
def test_the_schema_refuses_bad_values(config, message):
    with pytest.raises(study.ConfigError, match=message):
        validated(config)


def test_sizes_beyond_the_dataset_are_a_config_error():
    config = {"data": {"labeled_per_class": 5000, "validation_per_class": 1500}}
    with pytest.raises(study.ConfigError, match="exceeds the 6000 training images"):
        validated(config)


def test_an_unknown_run_names_the_known_ones():
    config = validated({"runs": {"course": {}, "random": {"strategy": "random"}}})
    with pytest.raises(study.ConfigError, match="unknown run 'x'.*course, random"):
        study.run_settings(config, "x")


def test_a_chain_stops_when_the_pool_would_be_empty():
    config = validated({"data": {"pool_size": 1200}, "runs": {"course": {"k": 500}}})
    assert study.planned_iterations(config, "course") == 3


def test_the_config_hash_ignores_where_the_data_lives():
    config = validated({})
    moved = validated({"data": {"dir": "/elsewhere"}})
    changed = validated({"runs": {"course": {"k": 400}}})
    assert study.config_hash(config, "course") == study.config_hash(moved, "course")
    assert study.config_hash(config, "course") != study.config_hash(changed, "course")


CODE = '''"""A module."""

RATE = 0.5


def step(x):
    """Scale x."""
    return x * RATE
'''


def test_the_code_hash_ignores_documentation_but_not_code(tmp_path):
    original = tmp_path / "original.py"
    original.write_text(CODE)
    documented = tmp_path / "documented.py"
    documented.write_text(
        CODE.replace('"""Scale x."""', '"""Scale x by the rate."""  # why')
        .replace("RATE = 0.5", "# the rate\n\nRATE = 0.5")
        .replace('"""A module."""', '"""Another docstring."""')
    )
    changed = tmp_path / "changed.py"
    changed.write_text(CODE.replace("RATE = 0.5", "RATE = 0.25"))

    assert study.code_hash([original]) == study.code_hash([documented])
    assert study.code_hash([original]) != study.code_hash([changed])


def test_the_code_hash_covers_the_iteration_modules():
    package = ROOT / "selftrain"
    paths = [package / f"{name}.py" for name in study.ITERATION_MODULES]
    assert all(path.exists() for path in paths)
    assert study.code_hash() == study.code_hash(paths)
    assert study.code_hash() != study.code_hash(paths[:-1])
