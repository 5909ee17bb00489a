"""Every pretrained file losslab can use, where it must live, and how to carry it in offline.

losslab never falls back to random features silently. A loss term that needs pretrained weights
asks :func:`resolve_weights_file` for the file; it is looked up in the torch hub cache
(``torch.hub.get_dir()/checkpoints/<file name>``, the place torchvision itself uses, so
``$TORCH_HOME`` moves it), downloaded only when downloads are allowed, and otherwise a
:class:`WeightsUnavailableError` names the exact file, the directory, the hash torchvision expects
and the remedy (``losslab weights add FILE``).

Known weights
-------------
========================  ==================================  ================================
name                      file                                used by
========================  ==================================  ================================
``vgg19-imagenet``        ``vgg19-dcbb9e9d.pth``              ``perceptual`` (VGG19 features)
``alexnet-imagenet``      ``alexnet-owt-7be5be79.pth``        ``lpips(net=alex)`` backbone
``vgg16-imagenet``        ``vgg16-397923af.pth``              ``lpips(net=vgg)``, ``dists`` trunk
``squeezenet1_1-imagenet`` ``squeezenet1_1-b8a52dc0.pth``     ``lpips(net=squeeze)`` backbone
``lpips-<net>-v0.1``      ``<net>.pth`` in the lpips package  ``lpips`` linear heads (shipped)
``dists-alpha-beta``      ``dists_alpha_beta-f5e65c96.pt``    ``dists`` alpha/beta weights
========================  ==================================  ================================

Hashes: every entry is pinned by its full SHA-256. torchvision's file names embed only the first
8 hex digits (what ``torch.hub`` checks on download); the full digests recorded here were taken
from public hash lists that agree with each other and with that prefix (see
``_TORCHVISION_FULL_SHA256``). The LPIPS heads ship inside the ``lpips`` package (0.1.4) and are
recorded with their full SHA-256. The DISTS alpha/beta file is the ``weights.pt`` of Ding et
al.'s release (the ``DISTS_pytorch`` 0.1 package on PyPI ships the same file), pinned by its full
SHA-256; ``losslab weights add .../DISTS_pytorch/weights.pt`` puts it in place.

Downloads: tried only when the file is missing and downloads are allowed (the default, unless the
environment variable ``LOSSLAB_OFFLINE`` is set to ``1``/``true``/``yes``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from losslab.core.atomic import atomic_path
from losslab.core.registry import Registry
from losslab.core.serialization import UnreadableFileError, load_torch_file

__all__ = [
    "WeightsError",
    "WeightsInfo",
    "WeightsUnavailableError",
    "add_weights",
    "downloads_allowed",
    "format_weights_table",
    "get_weights_info",
    "hub_checkpoint_dir",
    "list_weights",
    "load_state_dict_file",
    "resolve_weights_file",
    "sha256_of",
]

#: Environment variable that forbids download attempts (``1``, ``true`` or ``yes``).
OFFLINE_ENV = "LOSSLAB_OFFLINE"

_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")  # torch.hub's convention: name-<sha256 prefix>.ext


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are missing and could not be downloaded; the message gives the remedy."""


class WeightsError(ValueError):
    """A weights file that cannot be used: unknown hash, unknown name or wrong contents."""


@dataclass(frozen=True)
class WeightsInfo:
    """One pretrained file losslab knows.

    Attributes:
        name: registry key, e.g. ``"vgg19-imagenet"``.
        description: what the file holds, for tables and error messages.
        file_name: the exact file name expected on disk.
        sha256: the full SHA-256 hex digest, or its prefix when ``sha256_is_prefix``.
        sha256_is_prefix: ``True`` when only a prefix is known (torchvision's file names).
        used_by: the loss terms that need it.
        url: where it is downloaded from (``""`` for files shipped inside a package).
        directory: a fixed directory (package-shipped files); ``None`` means the torch hub
            cache, resolved at call time so ``$TORCH_HOME`` is honoured.
    """

    name: str
    description: str
    file_name: str
    sha256: str
    sha256_is_prefix: bool
    used_by: str
    url: str = ""
    directory: Path | None = None

    @property
    def path(self) -> Path:
        """Where the file must be: the hub cache's ``checkpoints/`` or the package directory."""
        return (self.directory or hub_checkpoint_dir()) / self.file_name

    @property
    def present(self) -> bool:
        """Whether a file exists at :attr:`path` (its hash is not checked; see ``verify``)."""
        return self.path.is_file()

    def matches(self, digest: str) -> bool:
        """Whether a full SHA-256 hex ``digest`` is this entry's (by prefix when only that is known)."""
        digest = digest.lower()
        return digest.startswith(self.sha256) if self.sha256_is_prefix else digest == self.sha256

    @property
    def hash_text(self) -> str:
        """The expected hash as shown to users (``dcbb9e9d…`` for a prefix)."""
        return f"{self.sha256}…" if self.sha256_is_prefix else self.sha256


def hub_checkpoint_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints``: where torchvision caches and looks for weights."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def downloads_allowed() -> bool:
    """``False`` when ``$LOSSLAB_OFFLINE`` is ``1``/``true``/``yes``; downloads are tried otherwise."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("1", "true", "yes")


def sha256_of(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Full SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


# Full SHA-256 of the torchvision files (VGG19: 574,673,361 bytes; AlexNet: 244,408,911 bytes;
# VGG16: 553,433,881 bytes; SqueezeNet 1.1: 4,958,839 bytes). torchvision publishes only the
# 8-hex prefix in the file name. The VGG16 and SqueezeNet digests were found (code search of
# public GitHub repositories, 2026-12) stated in several independent hash lists and verification
# scripts: model manifests listing url, byte size and SHA-256 (one of them also lists the VGG19
# and AlexNet digests above, identically), `sha256sum` checks in benchmark setup scripts, and a
# SqueezeNet ONNX-export README ("Weights SHA-256: ..."). All sources agree, and each digest
# starts with its file name's prefix (checked again in _torchvision_entry). The files themselves
# cannot be downloaded here; `losslab weights add FILE` verifies a carried-over file against them.
_TORCHVISION_FULL_SHA256 = {
    "vgg19-dcbb9e9d.pth": "dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44",
    "alexnet-owt-7be5be79.pth": "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
    "vgg16-397923af.pth": "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
    "squeezenet1_1-b8a52dc0.pth": "b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b",
}


def _torchvision_entry(name: str, description: str, used_by: str, weights: object) -> WeightsInfo:
    url: str = weights.url  # type: ignore[attr-defined]
    file_name = os.path.basename(urlparse(url).path)
    match = _HASH_IN_NAME.search(file_name)
    if match is None:  # every torchvision classification file follows the convention
        raise RuntimeError(f"cannot read the hash prefix from torchvision file name {file_name!r}.")
    full = _TORCHVISION_FULL_SHA256.get(file_name)
    if full is not None:
        if not full.startswith(match.group(1)):
            raise RuntimeError(f"the recorded SHA-256 of {file_name} contradicts its file name.")
        return WeightsInfo(name, description, file_name, full, False, used_by, url)
    return WeightsInfo(name, description, file_name, match.group(1), True, used_by, url)


def _lpips_weights_dir() -> Path:
    import lpips  # imported lazily: only needed to locate the shipped heads

    return Path(lpips.__file__).resolve().parent / "weights" / "v0.1"


# Full SHA-256 of the linear heads shipped in lpips 0.1.4 (weights/v0.1/<net>.pth).
_LPIPS_HEAD_SHA256 = {
    "alex": "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    "vgg": "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
    "squeeze": "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76",
}


#: Full SHA-256 of DISTS' alpha/beta (``weights.pt`` of the authors' repository, the file
#: shipped in ``DISTS_pytorch`` 0.1: a dict with ``alpha`` and ``beta``, each (1, 1475, 1, 1)).
_DISTS_ALPHA_BETA_SHA256 = "f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218"
_DISTS_ALPHA_BETA_URL = "https://github.com/dingkeyan93/DISTS/raw/master/DISTS_pytorch/weights.pt"


def _register_known_weights() -> None:
    # Function-level import: torchvision's model tables are only needed once a weights name is read.
    from torchvision.models import (
        AlexNet_Weights,
        SqueezeNet1_1_Weights,
        VGG16_Weights,
        VGG19_Weights,
    )

    entries = [
        _torchvision_entry("vgg19-imagenet", "VGG19 ImageNet (torchvision IMAGENET1K_V1)",
                           "perceptual", VGG19_Weights.IMAGENET1K_V1),
        _torchvision_entry("alexnet-imagenet", "AlexNet ImageNet (torchvision IMAGENET1K_V1)",
                           "lpips(net=alex)", AlexNet_Weights.IMAGENET1K_V1),
        _torchvision_entry("vgg16-imagenet", "VGG16 ImageNet (torchvision IMAGENET1K_V1)",
                           "lpips(net=vgg), dists", VGG16_Weights.IMAGENET1K_V1),
        _torchvision_entry("squeezenet1_1-imagenet",
                           "SqueezeNet 1.1 ImageNet (torchvision IMAGENET1K_V1)",
                           "lpips(net=squeeze)", SqueezeNet1_1_Weights.IMAGENET1K_V1),
    ]
    heads = _lpips_weights_dir()
    for net, digest in _LPIPS_HEAD_SHA256.items():
        entries.append(WeightsInfo(
            f"lpips-{net}-v0.1", f"LPIPS v0.1 linear heads for {net} (shipped in the lpips package)",
            f"{net}.pth", digest, False, f"lpips(net={net})", directory=heads,
        ))
    entries.append(WeightsInfo(
        "dists-alpha-beta", "DISTS alpha/beta layer weights (Ding et al. 2020)",
        "dists_alpha_beta-f5e65c96.pt", _DISTS_ALPHA_BETA_SHA256, False, "dists",
        _DISTS_ALPHA_BETA_URL,
    ))
    for entry in entries:
        WEIGHTS.register(entry.name, entry)


#: Every pretrained file losslab can use, by name (filled on first read).
WEIGHTS: Registry[WeightsInfo] = Registry("weights", plural="weights", loader=_register_known_weights)


def get_weights_info(name: str) -> WeightsInfo:
    """The registry entry ``name``; an unknown name raises :class:`WeightsError` listing them."""
    try:
        return WEIGHTS.get(name)
    except ValueError as error:
        raise WeightsError(str(error)) from None


def list_weights() -> list[WeightsInfo]:
    """Every pretrained file losslab can use, sorted by name."""
    return [info for _, info in WEIGHTS.items()]


def format_weights_table(verify: bool = False) -> str:
    """Text table for ``losslab weights``: name, status, file, expected hash, used by, path.

    Args:
        verify: also hash every present file (slow for large files) and mark mismatches.
    """
    rows = [("name", "status", "file", "sha256", "used by")]
    for info in list_weights():
        status = "present" if info.present else "MISSING"
        if verify and info.present and not info.matches(sha256_of(info.path)):
            status = "BAD HASH"
        rows.append((info.name, status, info.file_name, info.hash_text, info.used_by))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.append("")
    lines.append(f"torch hub cache: {hub_checkpoint_dir()}  (set $TORCH_HOME to move it)")
    missing = [info for info in list_weights() if not info.present]
    if missing:
        lines.append(
            "missing files: download them on a machine with internet from the URLs below, "
            "carry them over and run `losslab weights add FILE`:"
        )
        lines.extend(f"  {info.file_name}: {info.url or '(reinstall the lpips package)'}"
                     for info in missing)
    return "\n".join(lines)


def _download(url: str, destination: Path, hash_prefix: str | None) -> None:
    """Download ``url`` to ``destination`` (torch.hub writes a temp file and moves it)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(destination), hash_prefix=hash_prefix, progress=False)


def _unavailable_message(info: WeightsInfo, reason: str, alternative: str) -> str:
    return (
        f"{info.description} is not available: file {info.file_name!r} is not in "
        f"{str(info.path.parent)!r} ({reason}). Fix: on a machine with internet download "
        f"{info.url or 'the file'} (SHA-256 {info.hash_text}), carry it over and run `losslab weights add FILE` (or copy it to "
        f"{str(info.path)!r} yourself; $TORCH_HOME moves that directory)."
        + (f" Or {alternative}." if alternative else "")
    )


def resolve_weights_file(
    name: str, *, allow_download: bool | None = None, alternative: str = ""
) -> Path:
    """Path of the pretrained file ``name``; download it only when missing and allowed.

    Args:
        name: a registry name (see :func:`list_weights`).
        allow_download: ``None`` follows :func:`downloads_allowed` (``$LOSSLAB_OFFLINE``);
            ``False`` never downloads (the metrics' choice).
        alternative: an extra remedy for the error message (e.g. ``"use weights=random ..."``).

    Raises:
        WeightsUnavailableError: the file is missing and could not (or may not) be downloaded;
            the message names the file, the directory, the expected hash and the fix.
    """
    info = get_weights_info(name)
    if info.present:
        return info.path
    if allow_download is None:
        allow_download = downloads_allowed()
    if not info.url:
        raise WeightsUnavailableError(_unavailable_message(
            info, "it ships inside the lpips package; reinstall lpips", alternative))
    if not allow_download:
        why = (f"downloads are disabled by ${OFFLINE_ENV}" if not downloads_allowed()
               else "this caller never downloads: measuring must not wait for a network")
        raise WeightsUnavailableError(_unavailable_message(info, why, alternative))
    try:
        # torch.hub checks `sha256.startswith(hash_prefix)`: given the full digest, that is an
        # exact check of the whole file.
        _download(info.url, info.path, info.sha256)
    except Exception as error:  # any network/hash failure becomes the one clear error
        raise WeightsUnavailableError(_unavailable_message(
            info, f"the download from {info.url} failed: {type(error).__name__}: {error}",
            alternative)) from error
    if not info.present:
        raise WeightsUnavailableError(_unavailable_message(
            info, "the download did not produce the file", alternative))
    return info.path


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a state dict (tensors only, ``weights_only=True``) onto the CPU.

    A checkpoint dict holding ``"state_dict"`` is unwrapped. Raises :class:`WeightsError` when
    the file is not a mapping of names to tensors.
    """
    try:
        loaded = load_torch_file(path, what="weights file",
                                 remedy="carry over a good copy (losslab weights add FILE)")
    except UnreadableFileError as error:
        raise WeightsError(str(error)) from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsError(
            f"{str(path)!r} is not a state dict (a mapping of parameter names to tensors); got "
            f"{type(loaded).__name__}. Save one with torch.save(model.state_dict(), path)."
        )
    return loaded


def add_weights(path: str | os.PathLike[str]) -> Path:
    """Verify a carried-over weights file and copy it, atomically, to where losslab looks.

    The file's SHA-256 must match exactly one known entry (by prefix for torchvision files); it is
    then copied to a temporary file in the destination directory and moved into place with
    ``os.replace``, so a crash never leaves a truncated file under the expected name.

    Args:
        path: the file to add (any name; the destination name comes from the registry).

    Returns:
        The destination path (for the CLI to print).

    Raises:
        WeightsError: the file is missing or a directory, or its hash matches no known weights (the message lists
            every expected name and hash).
    """
    source = Path(path)
    if source.is_dir():
        # Name the files in it that look like known weights, so the fix is one copy-paste away.
        known = {info.file_name for info in list_weights()}
        present = sorted(str(source / name) for name in known if (source / name).is_file())
        example = present[0] if present else str(source / sorted(known)[0])
        raise WeightsError(
            f"cannot add {str(source)!r}: it is a directory; pass the weights file itself, e.g. "
            f"losslab weights add {example}"
            + (f" (files there with known names: {', '.join(present)})." if present else
               f" (known file names: {', '.join(sorted(known))}).")
        )
    if not source.is_file():
        raise WeightsError(f"cannot add {str(source)!r}: no such file.")
    digest = sha256_of(source)
    matches = [info for info in list_weights() if info.matches(digest)]
    if len(matches) != 1:
        expected = "; ".join(f"{info.file_name} (sha256 {info.hash_text})" for info in list_weights())
        problem = "matches no known weights" if not matches else (
            f"matches several entries ({', '.join(info.name for info in matches)})")
        raise WeightsError(
            f"{str(source)!r} has SHA-256 {digest}, which {problem}. Expected one of: {expected}. "
            "Check that the download finished (compare the size) and that it is the original "
            "torchvision file, not a re-saved state dict."
        )
    info = matches[0]
    destination = info.path
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.exists() and destination.samefile(source):
        return destination
    with atomic_path(destination) as temporary:
        shutil.copyfile(source, temporary)
    return destination
