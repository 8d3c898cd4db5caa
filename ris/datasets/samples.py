"""Real sample photos from package registries (scikit-image's and foolbox's wheels), cached."""

from __future__ import annotations

import zipfile
from pathlib import Path

from ris.convert.wheels import download_wheel

# Photos (not drawings or synthetic charts) inside the wheels. The stereo partner of
# motorcycle_left is left out: a near-duplicate pair would blur retrieval checks.
SKIMAGE_PHOTOS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "cell.png",
    "chelsea.png",
    "clock_motion.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "moon.png",
    "motorcycle_left.png",
    "retina.jpg",
    "rocket.jpg",
)
WHEELS = {
    "foolbox": ("foolbox==3.3.4", "foolbox/data/imagenet_"),
    "skimage": ("scikit-image==0.26.0", "skimage/data/"),
}


def _extract(wheel: Path, prefix: str, keep: tuple[str, ...] | None, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            name = member.rsplit("/", 1)[-1]
            if not member.startswith(prefix) or not name:
                continue
            if keep is not None and name not in keep:
                continue
            target = into / name
            if not target.exists():
                target.write_bytes(archive.read(member))


def imagenet_photos(cache_dir: Path) -> Path:
    """20 labelled ImageNet photos from foolbox (`imagenet_<n>_<class index>.jpg`)."""
    folder = cache_dir / "samples" / "imagenet"
    if len(list(folder.glob("imagenet_*.jpg"))) < 20:
        requirement, prefix = WHEELS["foolbox"]
        wheel = download_wheel(requirement, cache_dir / "samples" / "wheels")
        _extract(wheel, prefix, None, folder)
    return folder


def scikit_image_photos(cache_dir: Path) -> Path:
    folder = cache_dir / "samples" / "scikit-image"
    if len(list(folder.iterdir()) if folder.exists() else []) < len(SKIMAGE_PHOTOS):
        requirement, prefix = WHEELS["skimage"]
        wheel = download_wheel(requirement, cache_dir / "samples" / "wheels")
        _extract(wheel, prefix, SKIMAGE_PHOTOS, folder)
    return folder


def sample_photos(cache_dir: Path) -> list[Path]:
    """Every sample photo (36 of them), fetched on first use."""
    folders = (imagenet_photos(cache_dir), scikit_image_photos(cache_dir))
    return sorted(path for folder in folders for path in folder.iterdir() if path.is_file())


def imagenet_label(path: Path) -> int:
    """The ImageNet class index written in a foolbox sample's file name."""
    return int(path.stem.rsplit("_", 1)[1])
