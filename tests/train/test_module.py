"""TaskModule internals: adversarial terms (D logs, D weights and D optimizer in checkpoints)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from train_helpers import column, read_metrics, tiny_config

from losslab.train import TaskModule, train

pytestmark = pytest.mark.usefixtures("quiet_lightning")

SPEC = "l1 + 0.1*adversarial(width=8, depth=2, adaptive=true)"


def test_adversarial_run_logs_discriminator_and_checkpoints_both_optimizers(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "gan", loss=SPEC, steps=4, val_every=2)
    result = train(config)
    rows = read_metrics(result.run_dir)
    prefix = "adversarial/adversarial(width=8,depth=2,adaptive=true)"
    for name in ("d_loss", "d_accuracy", "real_logit", "fake_logit", "adaptive_weight", "g_loss"):
        assert sorted(column(rows, f"{prefix}/{name}")) == [0, 1, 2, 3], name
    assert all(0.0 <= a <= 1.0 for a in column(rows, f"{prefix}/d_accuracy").values())

    checkpoint = torch.load(result.last_checkpoint, map_location="cpu", weights_only=False)
    d_keys = [k for k in checkpoint["state_dict"] if ".discriminator." in k]
    assert d_keys and all(k.startswith("loss.terms.1.") for k in d_keys)
    (d_state,) = checkpoint["losslab"]["discriminator_optimizers"]
    assert len(d_state["state"]) > 0  # Adam moments of D after 4 updates

    fresh = TaskModule(config)
    (discriminator,) = fresh.adversarial
    assert len(discriminator.optimizer.state_dict()["state"]) == 0
    fresh.on_load_checkpoint(checkpoint)  # Lightning's order: this hook, then the state_dict
    fresh.load_state_dict(checkpoint["state_dict"])
    restored = discriminator.optimizer.state_dict()["state"]
    for index, moments in d_state["state"].items():
        torch.testing.assert_close(restored[index]["exp_avg"], moments["exp_avg"])
    for key in d_keys:
        torch.testing.assert_close(fresh.state_dict()[key], checkpoint["state_dict"][key])

    resumed = train(tiny_config(tmp_path / "gan", loss=SPEC, steps=6, val_every=2))
    assert (resumed.resumed_from_step, resumed.global_step) == (4, 6)


def test_generator_last_layer_is_passed_to_the_loss_on_every_call(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    module = TaskModule(tiny_config(tmp_path / "x", loss=SPEC))
    (discriminator,) = module.adversarial
    last = [p for p in module.model.parameters() if p.dim() > 1][-1]
    assert module.last_layer() is last
    assert "last_layer" not in dict(module.named_parameters())  # a reference, not a parameter
    seen = []
    original = type(discriminator.term).evaluate

    def evaluate(self, prediction, target, context):  # type: ignore[no-untyped-def]
        seen.append(context.last_layer)
        return original(self, prediction, target, context)

    monkeypatch.setattr(type(discriminator.term), "evaluate", evaluate)
    batch = torch.stack([module.train_set[i] for i in range(2)])
    inputs, target = module.task.split(batch)
    module.compute_loss(module.model(inputs), target, module.loss_context(inputs), 0)
    assert seen == [last]
    plain = TaskModule(tiny_config(tmp_path / "y", loss="l1 + 0.1*adversarial(width=8, depth=2)"))
    assert plain.last_layer() is None  # no adaptive term: nothing to pass


def test_a_conditional_discriminator_is_built_at_setup_from_an_example_input(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "c", task="colorize",
                         loss="l1 + 0.1*adversarial(width=8, depth=2, conditional=true)")
    module = TaskModule(config)
    (discriminator,) = module.adversarial
    assert discriminator.discriminator.condition_channels == 1  # the luma input
    d_names = [n for n, _ in module.named_parameters() if ".discriminator." in n]
    assert d_names and all(n.startswith("loss.terms.1.discriminator.") for n in d_names)
    # Built before DDP wraps the module: its parameters are kept out of the generator's reducer.
    assert set(d_names) <= set(module._ddp_params_and_buffers_to_ignore)
    assert not [n for n in module._ddp_params_and_buffers_to_ignore if n.startswith("model.")]
