"""The README's examples run as written: every ```python block executes, the YAML training
example is a valid config, and the two fresh-machine commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_examples_run(index: int) -> None:
    code = _blocks("python")[index]
    exec(compile(code, f"README.md python block {index}", "exec"), {})


def test_yaml_training_example_is_a_valid_config(tmp_path: Path) -> None:
    from losslab.train import config_from_overrides, load_config

    (example,) = [b for b in _blocks("yaml") if "task:" in b]
    path = tmp_path / "run.yaml"
    path.write_text(example)
    config = load_config(path)
    assert config.task == "super_resolve"
    assert config_from_overrides(path, {"steps": 5}).steps == 5
    assert yaml.safe_load(example)["loss"] == config.loss


def test_the_test_command_is_the_one_ci_runs() -> None:
    ci = (README.parent / ".ci" / "run").read_text()
    assert "python -m pytest" in README.read_text()
    assert ci.strip().splitlines()[-1] == "python -m pytest"


def test_the_spec_error_example_is_what_losslab_prints() -> None:
    import losslab

    text = README.read_text()
    (example,) = re.findall(r"```text\n(>>> losslab\.loss.*?)```", text, flags=re.DOTALL)
    call, *printed = example.rstrip("\n").splitlines()
    spec = re.search(r'losslab\.loss\("(.*)"\)', call).group(1)
    with pytest.raises(losslab.losses.SpecError) as caught:
        losslab.loss(spec)
    assert f"SpecError: {caught.value}".splitlines() == printed
