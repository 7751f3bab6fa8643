"""Fetch the CycleGAN authors' unpaired data sets (``<name>.zip``) into ``<data_root>/<name>``.

The zip is streamed to a hidden ``.part`` file beside the target, checked against ``Content-Length`` and with
``zipfile.testzip``, extracted into a hidden temporary folder and only then renamed to ``<data_root>/<name>``:
a partial or corrupt download never looks like a data set, and nothing of it is left behind.
"""

from __future__ import annotations

import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from gandeploy.errors import DataError
from gandeploy.utils import paths
from gandeploy.utils.io import human_size
from gandeploy.utils.logging import get_logger

log = get_logger("data.download")

DEFAULT_BASE_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets"
BASE_URL_ENV = "GANDEPLOY_DATASET_URL"
DOMAIN_DIRS = ("trainA", "trainB", "testA", "testB")
REQUIRED_DIRS = ("trainA", "trainB")
CHUNK = 1 << 16


def dataset_url(name: str, base_url: str | None = None) -> str:
    """``<base>/<name>.zip``; the base is ``base_url``, else $GANDEPLOY_DATASET_URL, else the authors' site."""
    base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return f"{base.rstrip('/')}/{name}.zip"


def download_cyclegan_set(name: str, data_root: str | os.PathLike[str] | None = None, *,
                          base_url: str | None = None, timeout: float = 60.0) -> Path:
    """Download and extract ``<name>.zip`` into ``<data_root>/<name>`` and return that folder.

    Raises ``DataError`` (and leaves nothing behind) on a network error, an HTTP error, a download shorter
    than its ``Content-Length``, a corrupt zip, or a zip without ``trainA``/``trainB``.
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise DataError(f"invalid data set name '{name}'.")
    root = Path(data_root) if data_root is not None else paths.data_dir()  # --data-root overrides
    target = root / name
    if target.exists():
        return target
    return fetch_into(dataset_url(name, base_url), root, name, ".zip.part", _unpack_zip, timeout)


def _unpack_zip(archive: Path, extract_dir: Path, name: str, url: str) -> Path:
    _check_zip(archive, url)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(extract_dir)
    return _find_layout(extract_dir, name, url)


def fetch_into(url: str, root: Path, name: str, suffix: str, unpack: Callable[[Path, Path, str, str], Path],
               timeout: float) -> Path:
    """Download ``url`` into a part file under ``root``, ``unpack(part, extract_dir, name, url)`` it into a
    staging folder (it returns the folder that holds the data set), and rename that to ``root/name``: the data
    set appears whole or not at all, and the part file and staging folder are always removed. Another process
    that stored the same set meanwhile wins; a failure is a ``DataError`` naming ``--data-root``."""
    target = root / name
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, part_name = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=root)
        os.close(fd)
        extract_dir = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".extract", dir=root))
    except OSError as exc:
        raise DataError(f"cannot write under '{root}' ({exc}); check --data-root.") from None
    part = Path(part_name)
    try:
        size = _fetch(url, part, timeout)
        found = unpack(part, extract_dir, name, url)
        try:
            os.rename(found, target)  # atomic on one file system: the data set appears whole or not at all
        except OSError:
            if not target.exists():
                raise
            log.info("%s appeared meanwhile (another process); using it", target)
    except OSError as exc:
        raise DataError(f"could not store data set '{name}' under '{root}' ({exc}); check --data-root.") from None
    finally:
        part.unlink(missing_ok=True)
        shutil.rmtree(extract_dir, ignore_errors=True)
    log.info("downloaded %s (%s) and extracted it to %s", url, human_size(size), target)
    return target


def _fetch(url: str, dest: Path, timeout: float) -> int:
    """Stream ``url`` into ``dest`` with a progress bar; return the byte count, verified against Content-Length."""
    try:
        resp = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (http(s) URL built by dataset_url)
    except urllib.error.HTTPError as exc:
        raise DataError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}. Check the data set name, "
                        f"or put the data under --data-root yourself, or set ${BASE_URL_ENV}.") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"cannot reach {url} ({reason}). Without network access, place the data set under "
                        f"--data-root (layout <root>/<name>/trainA, trainB, testA, testB).") from None
    received = 0
    with resp, open(dest, "wb") as fh:
        length_header = resp.headers.get("Content-Length")
        expected = int(length_header) if length_header and length_header.isdigit() else None
        with tqdm(total=expected, unit="B", unit_scale=True, desc=f"download {Path(url).name}",
                  leave=False) as bar:
            try:
                while block := resp.read(CHUNK):
                    fh.write(block)
                    received += len(block)
                    bar.update(len(block))
            except (http.client.IncompleteRead, OSError) as exc:
                raise DataError(f"download of {url} broke off after {received} bytes ({exc}); "
                                "run the command again.") from None
    if expected is not None and received != expected:
        raise DataError(f"download of {url} is truncated: got {received} of {expected} bytes "
                        "(Content-Length); run the command again.")
    if received == 0:
        raise DataError(f"download of {url} is empty.")
    return received


def _check_zip(path: Path, url: str) -> None:
    """Reject a file that is not a zip, has a member with a bad CRC, or has paths escaping the folder."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            names = zf.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise DataError(f"{url} is not a valid zip archive ({exc}); run the command again.") from None
    if bad is not None:
        raise DataError(f"{url}: member '{bad}' is corrupt (CRC mismatch); run the command again.")
    for member in names:
        parts = PurePosixPath(member.replace("\\", "/")).parts
        if member.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise DataError(f"{url}: refusing unsafe path '{member}' in the archive.")


def _find_layout(extract_dir: Path, name: str, url: str) -> Path:
    """The extracted folder holding trainA/trainB: ``<tmp>/<name>``, a single top folder, or ``<tmp>``."""
    candidates = [extract_dir / name, extract_dir]
    tops = [p for p in extract_dir.iterdir() if p.is_dir() and not p.name.startswith(("__MACOSX", "."))]
    if len(tops) == 1:
        candidates.insert(1, tops[0])
    for cand in candidates:
        if all((cand / d).is_dir() for d in REQUIRED_DIRS):
            if cand == extract_dir:  # contents at the archive root: move them one level down for the rename
                inner = Path(tempfile.mkdtemp(prefix=name, dir=extract_dir))
                for child in list(extract_dir.iterdir()):
                    if child != inner:
                        shutil.move(str(child), inner / child.name)
                return inner
            return cand
    raise DataError(f"{url} does not hold a CycleGAN data set: no {'/'.join(REQUIRED_DIRS)} folders inside.")

