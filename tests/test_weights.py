"""The pretrained-weights registry: expected paths, presence, download policy, verified add."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import pytest
import torch

from losslab import weights
from losslab.weights import (
    WeightsError,
    WeightsUnavailableError,
    add_weights,
    format_weights_table,
    get_weights_info,
    list_weights,
    load_state_dict_file,
    resolve_weights_file,
)


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty TORCH_HOME; returns its hub checkpoints directory (not created yet)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(weights.OFFLINE_ENV, raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every download attempt fails (and is recorded)."""
    calls: list[str] = []

    def refuse(url: str, destination: Path, hash_prefix: str | None) -> None:
        calls.append(url)
        raise OSError("network is unreachable")

    monkeypatch.setattr(weights, "_download", refuse)
    return calls


def _fake_entry(monkeypatch: pytest.MonkeyPatch, name: str, content: bytes, prefix: bool) -> str:
    """Make registry entry ``name`` expect ``content``'s hash (full or 8-char prefix)."""
    digest = hashlib.sha256(content).hexdigest()
    entry = dataclasses.replace(get_weights_info(name), sha256=digest[:8] if prefix else digest,
                                sha256_is_prefix=prefix)
    weights.WEIGHTS.names()  # fill the table before patching one row
    monkeypatch.setitem(weights.WEIGHTS._entries, name, entry)
    return digest


def test_registry_lists_every_network_with_torchvision_file_names(torch_home: Path) -> None:
    from torchvision.models import (
        AlexNet_Weights,
        SqueezeNet1_1_Weights,
        VGG16_Weights,
        VGG19_Weights,
    )

    by_name = {info.name: info for info in list_weights()}
    expected_urls = {
        "vgg19-imagenet": VGG19_Weights.IMAGENET1K_V1.url,
        "alexnet-imagenet": AlexNet_Weights.IMAGENET1K_V1.url,
        "vgg16-imagenet": VGG16_Weights.IMAGENET1K_V1.url,
        "squeezenet1_1-imagenet": SqueezeNet1_1_Weights.IMAGENET1K_V1.url,
    }
    for name, url in expected_urls.items():
        info = by_name[name]
        assert info.url == url
        assert url.endswith("/" + info.file_name)
        # torch.hub's convention: the hash prefix sits between the last '-' and the extension
        prefix = info.file_name.rsplit("-", 1)[1].removesuffix(".pth")
        assert info.sha256.startswith(prefix)
        assert info.sha256_is_prefix == (len(info.sha256) != 64)
        assert info.path == torch_home / info.file_name
        assert not info.present
    assert by_name["vgg19-imagenet"].file_name == "vgg19-dcbb9e9d.pth"
    assert by_name["alexnet-imagenet"].sha256.startswith("7be5be79")
    for net in ("alex", "vgg", "squeeze"):
        assert f"lpips-{net}-v0.1" in by_name


@pytest.mark.parametrize("net", ["alex", "vgg", "squeeze"])
def test_shipped_lpips_heads_match_their_recorded_full_sha256(net: str) -> None:
    import lpips

    info = get_weights_info(f"lpips-{net}-v0.1")
    shipped = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
    assert info.path.resolve() == shipped.resolve()
    assert info.present and not info.sha256_is_prefix and len(info.sha256) == 64
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == info.sha256


def test_presence_follows_the_file_in_the_hub_cache(torch_home: Path) -> None:
    info = get_weights_info("squeezenet1_1-imagenet")
    assert not info.present
    torch_home.mkdir(parents=True)
    (torch_home / "squeezenet1_1-b8a52dc0.pth").write_bytes(b"x")
    assert info.present
    assert resolve_weights_file("squeezenet1_1-imagenet") == torch_home / "squeezenet1_1-b8a52dc0.pth"


def test_missing_file_with_failing_download_names_file_directory_hash_and_fix(
    torch_home: Path, no_network: list[str]
) -> None:
    with pytest.raises(WeightsUnavailableError) as caught:
        resolve_weights_file("vgg19-imagenet", alternative="use weights=random")
    message = str(caught.value)
    assert isinstance(caught.value, RuntimeError)
    assert "'vgg19-dcbb9e9d.pth'" in message
    assert str(torch_home) in message
    assert "dcbb9e9d" in message and "losslab weights add FILE" in message
    assert "weights=random" in message and "network is unreachable" in message
    assert no_network == ["https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"]


def test_offline_switch_skips_the_download_attempt(
    torch_home: Path, no_network: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(weights.OFFLINE_ENV, "1")
    with pytest.raises(WeightsUnavailableError, match=r"alexnet-owt-7be5be79\.pth.*LOSSLAB_OFFLINE"):
        resolve_weights_file("alexnet-imagenet")
    with pytest.raises(WeightsUnavailableError):
        resolve_weights_file("alexnet-imagenet", allow_download=False)
    assert no_network == []


def test_successful_download_is_checked_against_the_full_sha256(
    torch_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, Path, str | None]] = []

    def fake_download(url: str, destination: Path, hash_prefix: str | None) -> None:
        seen.append((url, destination, hash_prefix))
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(b"weights")

    monkeypatch.setattr(weights, "_download", fake_download)
    path = resolve_weights_file("vgg16-imagenet")
    assert path == torch_home / "vgg16-397923af.pth" and path.read_bytes() == b"weights"
    # torch.hub compares `digest.startswith(hash_prefix)`: the full digest makes it exact
    assert seen == [("https://download.pytorch.org/models/vgg16-397923af.pth", path,
                     "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0")]


def test_add_weights_verifies_and_copies_into_the_cache(
    torch_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = b"pretend these are VGG19 weights"
    _fake_entry(monkeypatch, "vgg19-imagenet", content, prefix=True)
    carried = tmp_path / "downloads" / "some-name.pth"
    carried.parent.mkdir()
    carried.write_bytes(content)

    destination = add_weights(carried)

    assert destination == torch_home / "vgg19-dcbb9e9d.pth"
    assert destination.read_bytes() == content and carried.read_bytes() == content
    assert sorted(os.listdir(torch_home)) == ["vgg19-dcbb9e9d.pth"]  # no temp file left
    assert get_weights_info("vgg19-imagenet").present
    assert resolve_weights_file("vgg19-imagenet") == destination


def test_add_weights_checks_a_full_hash_exactly(
    torch_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_entry(monkeypatch, "vgg19-imagenet", b"the real file", prefix=False)
    impostor = tmp_path / "impostor.pth"
    impostor.write_bytes(b"the real file, edited")
    with pytest.raises(WeightsError, match="matches no known weights"):
        add_weights(impostor)


def test_add_weights_refuses_an_unknown_file_listing_what_is_expected(
    torch_home: Path, tmp_path: Path
) -> None:
    stranger = tmp_path / "vgg19-dcbb9e9d.pth"  # right name, wrong content
    stranger.write_bytes(b"not a weights file")
    with pytest.raises(WeightsError) as caught:
        add_weights(stranger)
    message = str(caught.value)
    assert hashlib.sha256(b"not a weights file").hexdigest() in message
    for info in list_weights():
        assert info.file_name in message and info.sha256[:8] in message
    assert not torch_home.exists() or not any(torch_home.iterdir())


def test_add_weights_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="no such file"):
        add_weights(tmp_path / "absent.pth")


def test_add_weights_of_a_directory_says_so_and_names_the_file_to_pass(tmp_path: Path) -> None:
    known = sorted(info.file_name for info in list_weights())
    with pytest.raises(WeightsError, match=r"it is a directory; pass the weights file itself") as empty:
        add_weights(tmp_path)
    assert "no such file" not in str(empty.value)
    assert all(name in str(empty.value) for name in known)
    (tmp_path / known[-1]).write_bytes(b"x")  # a directory holding a known file name: named
    with pytest.raises(WeightsError) as holding:
        add_weights(tmp_path)
    assert f"losslab weights add {tmp_path / known[-1]}" in str(holding.value)


def test_failed_copy_leaves_neither_a_partial_file_nor_a_temp_file(
    torch_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = b"alexnet bytes"
    _fake_entry(monkeypatch, "alexnet-imagenet", content, prefix=True)
    source = tmp_path / "alex.pth"
    source.write_bytes(content)

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(weights.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        add_weights(source)
    assert list(torch_home.iterdir()) == []


def test_table_shows_status_hash_and_remedy(
    torch_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch_home.mkdir(parents=True)
    (torch_home / "alexnet-owt-7be5be79.pth").write_bytes(b"corrupt download")
    table = format_weights_table()
    lines = {line.split()[0]: line for line in table.splitlines() if line.strip()}
    assert "MISSING" in lines["vgg19-imagenet"] and "dcbb9e9d" in lines["vgg19-imagenet"]
    assert "present" in lines["alexnet-imagenet"]
    assert "present" in lines["lpips-alex-v0.1"]
    assert str(torch_home.parent) in table and "losslab weights add FILE" in table
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in table
    verified = format_weights_table(verify=True)
    assert "BAD HASH" in next(line for line in verified.splitlines() if line.startswith("alexnet"))
    assert "BAD HASH" not in next(line for line in verified.splitlines()
                                  if line.startswith("lpips-alex"))


def test_unknown_weights_name_lists_the_known_ones() -> None:
    with pytest.raises(WeightsError, match="vgg19-imagenet"):
        get_weights_info("vgg19")


def test_load_state_dict_file_unwraps_checkpoints_and_rejects_other_objects(tmp_path: Path) -> None:
    state = {"features.0.weight": torch.ones(2, 3)}
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "ckpt.pth")
    loaded = load_state_dict_file(tmp_path / "ckpt.pth")
    assert list(loaded) == ["features.0.weight"] and torch.equal(loaded["features.0.weight"],
                                                                 torch.ones(2, 3))
    torch.save([torch.ones(1)], tmp_path / "list.pth")
    with pytest.raises(WeightsError, match="not a state dict"):
        load_state_dict_file(tmp_path / "list.pth")


def test_every_weights_file_is_pinned_by_its_full_sha256() -> None:
    """Issue 11: no entry is checked by an 8-hex prefix only (vgg16 and squeezenet were)."""
    by_name = {info.name: info for info in list_weights()}
    assert by_name["vgg16-imagenet"].sha256 == (
        "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0")
    assert by_name["squeezenet1_1-imagenet"].sha256 == (
        "b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b")
    for info in by_name.values():
        assert not info.sha256_is_prefix and len(info.sha256) == 64
        assert info.matches(info.sha256) and not info.matches(info.sha256[:8] + "0" * 56)
