"""The upload corpus: Pillow's own ``Tests/images/`` from its source distribution on PyPI.

A pytest plugin (conftest.py loads it): the ``corpus_folder`` fixture, and a hook that
fetches the corpus once collection is done, only when a selected test needs it. A run that
deselects those tests (``-m "not backend_free"``) never downloads it; a machine that cannot
download it stops before the first test with one line saying what to run. The tests check
every file in one test that lists each failure, so the files need not be known while
collecting.

The sdist is pinned by version and SHA-256, downloaded once with pip, checked, and only its
``Tests/images/`` folder is extracted into a cache folder outside the repository
(``$XDG_CACHE_HOME/clinic-gallery/``, else ``~/.cache/clinic-gallery/``), where later runs
find it. ``CORPUS_DIR`` points at another copy of the same files instead.

Extraction goes into a temporary folder that is renamed into place only once complete, with
a marker file inside: an interrupted run leaves at most a temporary folder, never half a
corpus that a later run would take for the whole one.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

PILLOW_VERSION = "12.0.0"
SDIST = f"pillow-{PILLOW_VERSION}.tar.gz"
# PyPI's published digest for the file (its simple index lists the same value).
SDIST_SHA256 = "87d4f8125c9988bfbed67af47dd7a953e2fc7b0cc1e7800ec6d2080d490bb353"
IMAGES = f"pillow-{PILLOW_VERSION}/Tests/images/"
MARKER = ".complete"
DOWNLOAD_COMMAND = [
    "-m",
    "pip",
    "download",
    "--no-binary",
    ":all:",
    "--no-deps",
    f"pillow=={PILLOW_VERSION}",
    "-d",
]


class CorpusUnavailable(Exception):
    """The corpus could not be fetched; the message says what to do, in one line."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "clinic-gallery"


@pytest.fixture(scope="session")
def corpus_folder() -> Path:
    return corpus_dir()


def pytest_collection_finish(session: pytest.Session) -> None:
    if not any("corpus_folder" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    if not os.environ.get("CORPUS_DIR") and not (target_folder() / MARKER).is_file():
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.write_line(
                f"Fetching the upload corpus ({SDIST}, 47 MB) once, into {cache_root()}"
            )
    try:
        corpus_dir()
    except CorpusUnavailable as error:
        pytest.exit(str(error), returncode=1)


def target_folder() -> Path:
    return cache_root() / f"pillow-{PILLOW_VERSION}-test-images"


def corpus_dir() -> Path:
    """The folder of corpus files: CORPUS_DIR, else the cached extraction (made if needed)."""
    if os.environ.get("CORPUS_DIR"):
        return Path(os.environ["CORPUS_DIR"])
    target = target_folder()
    if (target / MARKER).is_file():
        return target
    cache_root().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_root(), prefix=".download-") as work:
        # A copy put there by hand (a machine without network) is used if it checks out.
        sdist = cache_root() / SDIST
        sdist = sdist if sdist.is_file() else download(Path(work))
        check(sdist)
        extracted = Path(work) / "images"
        extract_images(sdist, extracted)
        (extracted / MARKER).write_text(f"{SDIST} sha256={SDIST_SHA256}\n")
        if target.exists() and not (target / MARKER).is_file():
            shutil.rmtree(target)  # left by something other than this module: not trusted
        try:
            extracted.rename(target)
        except OSError:
            # Another run finished first; its copy is as good as ours.
            if not (target / MARKER).is_file():
                raise
    return target


def download(folder: Path) -> Path:
    command = [sys.executable, *DOWNLOAD_COMMAND, str(folder)]
    advice = (
        f"run `{' '.join(['python3', *DOWNLOAD_COMMAND, str(cache_root())])}` with network "
        "access and run the tests again, or set CORPUS_DIR to a copy of its Tests/images/"
    )
    result = subprocess.run(command, capture_output=True, text=True)
    sdist = folder / SDIST
    if result.returncode != 0 or not sdist.is_file():
        reason = (result.stderr.strip().splitlines() or ["no error output"])[-1]
        raise CorpusUnavailable(
            f"Could not download the Pillow {PILLOW_VERSION} source distribution for the "
            f"upload-corpus tests ({reason}): {advice}"
        )
    return sdist


def check(sdist: Path) -> None:
    digest = hashlib.sha256()
    with sdist.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != SDIST_SHA256:
        raise CorpusUnavailable(
            f"{sdist} has SHA-256 {digest.hexdigest()}, not the pinned {SDIST_SHA256}: "
            "delete it, check the package index pip uses, or set CORPUS_DIR"
        )


def extract_images(sdist: Path, folder: Path) -> None:
    """Only Tests/images/, under the tarfile "data" filter (no absolute paths, no links out
    of the folder, no devices), with the sdist's leading folders taken off."""

    def images_only(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        if not member.name.startswith(IMAGES) or member.name == IMAGES.rstrip("/"):
            return None
        changes = {"name": member.name.removeprefix(IMAGES)}
        if member.islnk():  # a hard link names its target from the archive's root
            changes["linkname"] = member.linkname.removeprefix(IMAGES)
        member = member.replace(**changes, deep=False)
        return tarfile.data_filter(member, dest)

    folder.mkdir()
    with tarfile.open(sdist) as archive:
        archive.extractall(folder, filter=images_only)
