"""`models install` of hostile archives: nothing lands outside the models directory, nothing is
left behind, and the refusal is one line naming the member.

Every archive is built here, byte for byte, and goes through the real `models install` (click's
CliRunner, and once the console entry point in a subprocess). A file `outside/victim` beside the
state directory is the target each archive aims at; a model already installed must survive.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import struct
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import write_config
from tiny_models import TinyModels, session_models

from monitor.cli.models import models
from monitor.config import Config
from monitor.translate import ModelError
from monitor.translate._archive import Limits, extract

ROOT = Path(__file__).resolve().parent.parent
PRECIOUS = b"the victim's own bytes\n"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return session_models(tmp_path_factory)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """State in `tmp_path/state`, a model already installed, and `tmp_path/outside/victim`."""
    config = write_config(tmp_path, state_dir="state")
    existing = config.state_dir / "models" / "ct2" / "existing"
    existing.mkdir(parents=True)
    (existing / "model.bin").write_bytes(b"weights")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "victim").write_bytes(PRECIOUS)
    return config


def snapshot(root: Path) -> dict[str, str]:
    """Every path under `root` (hidden ones too), with a file's digest or a link's target."""
    seen: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            key = str(path.relative_to(root))
            if path.is_symlink():
                seen[key] = f"link {path.readlink()}"
            elif path.is_dir():
                seen[key] = "dir"
            else:
                seen[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return seen


def refused(config: Config, archive: Path) -> str:
    """Run `models install ARCHIVE`; assert it refused cleanly and changed nothing. The message."""
    models_dir = config.state_dir / "models"
    victim = config.source.parent / "outside" / "victim"
    before = snapshot(models_dir)
    result: Result = CliRunner().invoke(
        models, ["install", str(archive)], obj={"config_path": config.source}
    )
    assert isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == 1
    assert victim.read_bytes() == PRECIOUS
    assert sorted(p.name for p in victim.parent.iterdir()) == ["victim"]
    assert snapshot(models_dir) == before
    (line,) = result.stderr.splitlines()
    assert "Traceback" not in result.output
    assert line.startswith(f"Error: {archive}: ")
    return line


def add(
    bundle: tarfile.TarFile, name: str, kind: bytes = tarfile.REGTYPE, **fields: object
) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    data = fields.pop("data", b"")
    assert isinstance(data, bytes)
    for key, value in fields.items():
        setattr(info, key, value)
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        bundle.addfile(info, io.BytesIO(data))
    else:
        bundle.addfile(info)


# Links and paths ---------------------------------------------------------------------------


def symlink_chain_tar(path: Path, ups: int) -> Path:
    """CVE-2025-4517: a symlink chain longer than PATH_MAX that `filter="data"` cannot resolve.

    16 nested 247-character folders, each beside a one-letter link to the next; at the bottom a
    254-character link 16 levels up (the extraction folder). `escape` goes through all of it
    and then `ups` levels further up, into `outside`; `escape/victim` is written through it.
    """
    folder, steps = "d" * 247, "abcdefghijklmnop"
    with tarfile.open(path, "w") as bundle:
        prefix = ""
        for letter in steps:
            add(bundle, prefix + folder, tarfile.DIRTYPE)
            add(bundle, prefix + letter, tarfile.SYMTYPE, linkname=folder)
            prefix += folder + "/"
        bottom = "/".join(steps) + "/" + "l" * 254
        add(bundle, bottom, tarfile.SYMTYPE, linkname="/".join([".."] * len(steps)))
        add(bundle, "escape", tarfile.SYMTYPE, linkname=bottom + "/.." * ups + "/outside")
        add(bundle, "escape/victim", data=b"overwritten\n")
    return path


def test_cve_2025_4517_symlink_chain_writes_nothing_outside(config: Config, tmp_path: Path) -> None:
    # Extracted under state/models/.install-*/<stem>: four levels up is tmp_path.
    archive = symlink_chain_tar(tmp_path / "nllb-200.tar", ups=4)
    line = refused(config, archive)
    assert "member 'a' is a symbolic link" in line


def test_the_console_command_refuses_the_chain_in_one_line(config: Config, tmp_path: Path) -> None:
    archive = symlink_chain_tar(tmp_path / "nllb-200.tar", ups=4)
    command = ["models", "install", str(archive)]
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config.source), *command],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"Error: {archive}: member 'a' is a symbolic link: "
        "a model archive may hold only files and folders"
    ]
    assert (tmp_path / "outside" / "victim").read_bytes() == PRECIOUS


def test_a_symlink_loop_is_refused_naming_the_link(config: Config, tmp_path: Path) -> None:
    archive = tmp_path / "loop.tar.gz"
    with tarfile.open(archive, "w:gz") as bundle:
        add(bundle, "nllb/a", tarfile.SYMTYPE, linkname="b")
        add(bundle, "nllb/b", tarfile.SYMTYPE, linkname="a")
        add(bundle, "nllb/a/model.bin", data=b"x")
    assert "member 'nllb/a' is a symbolic link" in refused(config, archive)


def test_a_hard_link_is_refused(config: Config, tmp_path: Path) -> None:
    victim = tmp_path / "outside" / "victim"
    archive = tmp_path / "nllb.tar"
    with tarfile.open(archive, "w") as bundle:
        add(bundle, "nllb/model.bin", tarfile.LNKTYPE, linkname=str(victim))
        add(bundle, "nllb/model.bin", data=b"overwritten\n")
    assert "member 'nllb/model.bin' is a hard link" in refused(config, archive)


@pytest.mark.parametrize(
    ("kind", "what"),
    [(tarfile.CHRTYPE, "a character device"), (tarfile.FIFOTYPE, "a FIFO")],
)
def test_device_and_fifo_members_are_refused(
    config: Config, tmp_path: Path, kind: bytes, what: str
) -> None:
    archive = tmp_path / "nllb.tar"
    with tarfile.open(archive, "w") as bundle:
        add(bundle, "nllb/model.bin", data=b"x")
        add(bundle, "nllb/null", kind, devmajor=1, devminor=3)
    assert f"member 'nllb/null' is {what}" in refused(config, archive)


def _tar_with(path: Path, name: str) -> Path:
    with tarfile.open(path, "w:gz") as bundle:
        add(bundle, "nllb/model.bin", data=b"x")
        add(bundle, name, data=b"overwritten\n")
    return path


def _zip_with(path: Path, name: str) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("nllb/model.bin", b"x")
        bundle.writestr(zipfile.ZipInfo(name), b"overwritten\n")
    return path


@pytest.mark.parametrize("make", [_tar_with, _zip_with], ids=["tar", "zip"])
def test_a_member_climbing_out_with_dotdot_is_refused(
    config: Config, tmp_path: Path, make: Callable[[Path, str], Path]
) -> None:
    name = "nllb/../../../../../outside/victim"
    archive = make(tmp_path / "nllb.archive", name)
    assert f"member {name!r} climbs out of the archive ('..')" in refused(config, archive)


@pytest.mark.parametrize("make", [_tar_with, _zip_with], ids=["tar", "zip"])
def test_an_absolute_member_is_refused(
    config: Config, tmp_path: Path, make: Callable[[Path, str], Path]
) -> None:
    name = str(tmp_path / "outside" / "victim")
    archive = make(tmp_path / "nllb.archive", name)
    assert f"member {name!r} has an absolute path" in refused(config, archive)


def test_a_zip_member_marked_as_a_symlink_is_refused(config: Config, tmp_path: Path) -> None:
    archive = tmp_path / "nllb.zip"
    link = zipfile.ZipInfo("nllb/model.bin")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr(link, str(tmp_path / "outside" / "victim"))
    assert "member 'nllb/model.bin' is a symbolic link" in refused(config, archive)


def test_a_member_named_twice_is_refused(config: Config, tmp_path: Path) -> None:
    archive = tmp_path / "nllb.tar"
    with tarfile.open(archive, "w") as bundle:
        add(bundle, "nllb/model.bin", data=b"x")
        add(bundle, "./nllb//model.bin", data=b"y")
    assert "member './nllb//model.bin' appears twice" in refused(config, archive)


def test_a_member_name_cannot_break_the_message_into_lines(config: Config, tmp_path: Path) -> None:
    archive = tmp_path / "nllb.tar"
    with tarfile.open(archive, "w") as bundle:
        add(bundle, "nllb/x\nError: all fine", tarfile.SYMTYPE, linkname="/")
    assert "member 'nllb/x\\nError: all fine' is a symbolic link" in refused(config, archive)


# Sizes ---------------------------------------------------------------------------------------


def test_a_zip_bomb_is_refused_before_anything_is_written(config: Config, tmp_path: Path) -> None:
    archive = tmp_path / "nllb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("nllb/config.json", b"{}")
        bundle.writestr("nllb/model.bin", bytes(64 << 20))
    line = refused(config, archive)
    assert "member 'nllb/model.bin' expands 1" in line
    assert "the limit is 200" in line


def test_a_zip_whose_header_under_declares_its_size_is_refused(
    config: Config, tmp_path: Path
) -> None:
    archive = tmp_path / "nllb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("nllb/model.bin", bytes(16 << 20))
    data = bytearray(archive.read_bytes())
    # The uncompressed size, in the local header (offset 22) and the central directory (24).
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(signature) + offset
        struct.pack_into("<I", data, at, 100)
    archive.write_bytes(bytes(data))
    assert "member 'nllb/model.bin' is damaged" in refused(config, archive)


def test_a_zip_member_in_a_method_zipfile_cannot_read_is_refused(
    config: Config, tmp_path: Path
) -> None:
    archive = tmp_path / "nllb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("nllb/model.bin", b"x" * 1000)
    data = bytearray(archive.read_bytes())
    # Deflate64 (method 9), in the local header (offset 8) and the central directory (10).
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        struct.pack_into("<H", data, data.index(signature) + offset, 9)
    archive.write_bytes(bytes(data))
    line = refused(config, archive)
    assert "member 'nllb/model.bin' is compressed with method 9, which zipfile cannot" in line


def test_a_tar_declaring_more_than_the_size_limit_is_refused_unread(
    config: Config, tmp_path: Path
) -> None:
    huge = tarfile.TarInfo("nllb/model.bin")
    huge.size = 9 << 30
    archive = tmp_path / "nllb.tar.gz"
    # The header and 1 MiB of the data: tarfile reads no further before the refusal.
    archive.write_bytes(gzip.compress(huge.tobuf() + bytes(1 << 20)))
    line = refused(config, archive)
    assert "expands to more than 8.0 GiB, the limit for a model" in line


def test_a_tar_that_expands_more_than_200_times_is_refused(config: Config, tmp_path: Path) -> None:
    archive = tmp_path / "nllb.tar.xz"
    with tarfile.open(archive, "w:xz") as bundle:
        add(bundle, "nllb/model.bin", data=bytes(32 << 20))
    assert "expands more than 200 times" in refused(config, archive)


def test_more_than_10000_members_are_refused(config: Config, tmp_path: Path) -> None:
    archive = tmp_path / "nllb.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for n in range(10_001):
            bundle.writestr(f"nllb/{n}", b"")
    assert "holds more than 10000 members" in refused(config, archive)


def test_an_archive_larger_than_the_free_disk_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "nllb.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("nllb/model.bin", b"x" * 1000)
    into = tmp_path / "staging" / "nllb"
    into.parent.mkdir()
    with pytest.raises(ModelError) as refusal:
        extract(archive, into, Limits(keep_free=1 << 50))
    assert "needs 1000 B on the disk, where " in str(refusal.value)
    assert "1048576.0 GiB must stay free for the database" in str(refusal.value)
    assert list(into.parent.iterdir()) == []


# What still installs -----------------------------------------------------------------------


def test_a_tar_made_from_inside_the_model_folder_installs(
    config: Config, tiny: TinyModels, tmp_path: Path
) -> None:
    """`tar czf nllb.tar.gz -C nllb-200-tiny .` names its members `./config.json` and so on."""
    archive = tmp_path / "nllb-200-tiny.tar.gz"
    with tarfile.open(archive, "w:gz") as bundle:
        bundle.add(tiny.nllb, arcname=".")
    result = CliRunner().invoke(
        models, ["install", str(archive)], obj={"config_path": config.source}
    )
    assert result.exit_code == 0, result.output
    installed = config.state_dir / "models" / "ct2" / "nllb-200-tiny"
    assert snapshot(installed) == snapshot(tiny.nllb)
    assert not list((config.state_dir / "models").glob(".install-*"))
