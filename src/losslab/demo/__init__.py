"""Small, fast demonstrations of what a loss does (no data downloads, CPU in seconds).

:func:`losslab.demo.mean.run_mean_demo`: regression to the mean. With several equally valid
answers, MSE predicts their mean, L1 their median, and only multi-hypothesis (winner-takes-all)
or mixture-density heads predict the answers themselves.
"""

from losslab.demo.mean import (
    format_mean_demo,
    run_image_demo,
    run_mean_demo,
    run_one_dimensional_demo,
    run_pose_demo,
    write_mean_demo_json,
)

__all__ = [
    "format_mean_demo",
    "run_image_demo",
    "run_mean_demo",
    "run_one_dimensional_demo",
    "run_pose_demo",
    "write_mean_demo_json",
]
