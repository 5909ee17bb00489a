"""losses/schedule.py: the weight schedule's factor, validation and spec rendering."""

from __future__ import annotations

import pytest

from losslab.losses.schedule import CONSTANT, WeightSchedule


def test_factors_of_each_kind() -> None:
    ramp, start = WeightSchedule("ramp", 100, 200), WeightSchedule("start", 50)
    assert [ramp.factor(s) for s in (0, 99, 100, 150, 200, 900)] == [0, 0, 0, 0.5, 1, 1]
    assert [start.factor(s) for s in (0, 49, 50, 51)] == [0, 0, 1, 1]
    assert CONSTANT.factor(0) == CONSTANT.factor(10**9) == 1.0


def test_render_round_trips_the_spec_suffix() -> None:
    assert WeightSchedule("ramp", 1000, 2000, share=0.2).render() == "@ramp(1000,2000)@share(0.2)"
    assert WeightSchedule("start", 500).render() == "@start(500)"
    assert CONSTANT.render() == ""


@pytest.mark.parametrize(("args", "message"), [
    (("ramp", 200, 100), "begin < end"),
    (("start", -1), "0 <= begin"),
    (("cosine",), "'constant', 'start' or 'ramp'"),
])
def test_invalid_schedules_name_the_fix(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WeightSchedule(*args)


def test_share_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match=r"share\(0.2\)"):
        WeightSchedule(share=1.5)
