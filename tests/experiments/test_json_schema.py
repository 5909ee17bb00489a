"""The exported JSON Schemas (``losslab schema train|experiment``): they accept every shipped
experiment file, the documented examples and a run's ``config.yaml``, and they flag what the
pydantic models refuse field by field (typo'd keys, bounds, choices).

``jsonschema`` is not a dependency of losslab; the schemas are checked with the small draft
2020-12 subset validator below (the keywords pydantic emits), and additionally with
``jsonschema`` when it happens to be installed.
"""

from __future__ import annotations

import re
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from losslab.experiments import experiment_from_dict, json_schema, list_experiments
from losslab.train import TrainConfig
from losslab.train.config_errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def schema_errors(instance: Any, schema: dict[str, Any], root: dict[str, Any] | None = None,
                  path: str = "") -> list[str]:
    """Problems of ``instance`` under ``schema`` (the draft 2020-12 keywords pydantic emits)."""
    root = root or schema
    where = path or "(document)"
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return schema_errors(instance, root["$defs"][name], root, path)
    if "anyOf" in schema:
        if all(schema_errors(instance, option, root, path) for option in schema["anyOf"]):
            return [f"{where}: {instance!r} matches no alternative"]
        return []
    problems: list[str] = []
    if "type" in schema and not _TYPES[schema["type"]](instance):
        return [f"{where}: {instance!r} is not of type {schema['type']}"]
    if "enum" in schema and not any(instance == c and type(instance) is type(c)
                                    for c in schema["enum"]):
        problems.append(f"{where}: {instance!r} not in {schema['enum']}")
    if "const" in schema and instance != schema["const"]:
        problems.append(f"{where}: {instance!r} != {schema['const']!r}")
    if _TYPES["number"](instance):
        for key, fails in (("minimum", lambda v, b: v < b), ("maximum", lambda v, b: v > b),
                           ("exclusiveMinimum", lambda v, b: v <= b),
                           ("exclusiveMaximum", lambda v, b: v >= b)):
            if key in schema and fails(instance, schema[key]):
                problems.append(f"{where}: {instance!r} violates {key} {schema[key]}")
    if isinstance(instance, str):
        if len(instance) < schema.get("minLength", 0):
            problems.append(f"{where}: {instance!r} shorter than {schema['minLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            problems.append(f"{where}: {instance!r} does not match {schema['pattern']!r}")
    if isinstance(instance, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in instance:
                problems.append(f"{where}: missing required {key!r}")
        for key, value in instance.items():
            if key in properties:
                problems += schema_errors(value, properties[key], root, f"{path}.{key}".lstrip("."))
            elif schema.get("additionalProperties") is False:
                problems.append(f"{where}: unknown key {key!r}")
    if isinstance(instance, list):
        if not schema.get("minItems", 0) <= len(instance) <= schema.get("maxItems", len(instance)):
            problems.append(f"{where}: {len(instance)} items")
        prefix = schema.get("prefixItems", [])
        for index, item in enumerate(instance):
            item_schema = prefix[index] if index < len(prefix) else schema.get("items")
            if item_schema is not None:
                problems += schema_errors(item, item_schema, root, f"{path}[{index}]")
    return problems


def _check(instance: Any, kind: str) -> list[str]:
    schema = json_schema(kind)
    problems = schema_errors(instance, schema)
    try:  # an independent validator, when one is installed (not a losslab dependency)
        import jsonschema
    except ImportError:
        return problems
    independent = sorted(e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(instance))
    assert bool(independent) == bool(problems), (independent, problems)
    return problems


def _yaml_blocks(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def _shipped(name: str) -> Any:
    folder = resources.files("losslab.experiments").joinpath("files")
    return yaml.safe_load(folder.joinpath(f"{name}.yaml").read_text(encoding="utf-8"))


def test_the_schemas_are_draft_2020_12_and_refuse_unknown_keys_everywhere() -> None:
    for kind in ("train", "experiment"):
        schema = json_schema(kind)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        objects = [schema, *schema["$defs"].values()]
        assert all(node.get("additionalProperties") is False for node in objects
                   if "properties" in node)
    experiment = json_schema("experiment")
    assert experiment["required"] == ["name", "question", "task", "data", "budget", "entries"]
    # an experiment's train_options is the training config's own definition, not a copy
    train = json_schema("train")
    settings = experiment["$defs"]["TrainSettings"]["properties"]
    assert set(settings) == set(train["properties"])
    assert settings["steps"] == train["properties"]["steps"]
    assert experiment["$defs"]["Budget"]["properties"]["seed"]["maximum"] == 2**32 - 1
    with pytest.raises(ValueError, match=r"unknown schema 'experiments'\. Did you mean 'experiment'"):
        json_schema("experiments")


@pytest.mark.parametrize("name", list_experiments())
def test_every_shipped_experiment_validates_and_round_trips(name: str) -> None:
    raw = _shipped(name)
    assert _check(raw, "experiment") == []
    experiment = experiment_from_dict(raw)
    assert experiment_from_dict(yaml.safe_load(experiment.to_yaml())) == experiment


def test_documented_examples_validate() -> None:
    [documented] = _yaml_blocks(ROOT / "docs" / "experiments.md")
    assert _check(documented, "experiment") == []
    experiment_from_dict(documented)  # the models agree
    configs = _yaml_blocks(ROOT / "README.md")
    import losslab.train.config as config_module

    docstring = config_module.__doc__ or ""
    example = docstring.split("Example YAML", 1)[1].split("::", 1)[1].split("\n\n")[1]
    configs.append(yaml.safe_load(textwrap.dedent(example)))
    assert len(configs) >= 2
    for values in configs:
        assert _check(values, "train") == []
        TrainConfig.from_dict(values)


def test_a_runs_config_yaml_validates() -> None:
    full = TrainConfig.from_dict({"task": "super_resolve", "task_options": {"scale": 4},
                                  "optimizer": {"betas": [0.5, 0.9]}, "devices": "auto",
                                  "deterministic": True, "data": {"options": {"path": "x/"}}})
    for config in (TrainConfig(), full):
        assert _check(yaml.safe_load(config.to_yaml()), "train") == []


@pytest.mark.parametrize(
    ("kind", "change", "flagged"),
    [
        ("experiment", {"questoin": "x"}, "unknown key 'questoin'"),
        ("experiment", {"entries": [{"los": "l1"}]}, "entries[0]"),  # neither a spec nor an entry
        ("experiment", {"budget": {"stpes": 3, "steps": 3}}, "budget: unknown key 'stpes'"),
        ("experiment", {"train_options": {"optimzer": {}}}, "train_options: unknown key"),
        ("experiment", {"entries": []}, "entries: 0 items"),
        ("experiment", {"task": "reconstrut"}, "task"),
        ("experiment", {"budget": {"steps": 0}}, "budget.steps: 0 violates minimum"),
        ("train", {"data": {"crop": 32}}, "data: unknown key 'crop'"),
        ("train", {"precision": "16"}, "precision"),
        ("train", {"devices": "all"}, "devices"),
        ("train", {"optimizer": {"betas": [0.9, 1.0]}}, "optimizer.betas[1]"),
        ("train", {"seed": 2**32}, "seed"),
        ("train", {"steps": 3.5}, "steps"),
        ("train", {"loss": "  "}, "loss"),
    ],
)
def test_the_schema_flags_what_the_models_refuse(kind: str, change: dict, flagged: str) -> None:
    base: dict[str, Any] = _shipped("colors") if kind == "experiment" else {}
    values = {**base, **change}
    problems = _check(values, kind)
    assert any(problem.startswith(flagged) or flagged in problem for problem in problems), problems
    with pytest.raises(ConfigError):  # and pydantic refuses it with a one-line message
        (experiment_from_dict if kind == "experiment" else TrainConfig.from_dict)(values)
