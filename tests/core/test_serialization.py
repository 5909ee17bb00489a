"""core.serialization: the one torch.load reads tensors, refuses pickled code, and names the
file in one line for a missing, empty, truncated or foreign file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from losslab.core.serialization import UnreadableFileError, load_torch_file


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned > /dev/null",))


def test_tensors_and_plain_containers_load_on_the_cpu(tmp_path: Path) -> None:
    path = tmp_path / "state.pt"
    state = {"weight": torch.arange(6.0).view(2, 3), "step": 3, "names": ["a", "b"]}
    torch.save(state, path)
    loaded = load_torch_file(path)
    assert torch.equal(loaded["weight"], state["weight"]) and loaded["weight"].device.type == "cpu"
    assert loaded["step"] == 3 and loaded["names"] == ["a", "b"]


def test_a_pickle_that_calls_a_function_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"x": _Payload()}, path)
    with pytest.raises(UnreadableFileError, match=r"refused to load checkpoint .*could run code") as error:
        load_torch_file(path, what="checkpoint")
    assert "weights_only=False" not in str(error.value)


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist"),
    (b"", "is empty (0 bytes"),
    # garbage reads as a legacy pickle whose first opcode is refused: "refused to load"
    (b"not a torch file at all", "refused to load weights file"),
])
def test_bad_files_are_one_line_errors_naming_the_file_and_the_remedy(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "w.pth"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UnreadableFileError) as error:
        load_torch_file(path, what="weights file", remedy="download it again")
    text = str(error.value)
    assert message in text and repr(str(path)) in text and "\n" not in text
    if content is not None:
        assert text.endswith("download it again.")


def test_a_truncated_file_is_an_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.pt"
    torch.save({"w": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(UnreadableFileError, match=r"truncated or corrupt|not a readable torch file"):
        load_torch_file(path)
