"""Translation in a separate process: under W^X (systemd's MemoryDenyWriteExecute), and
watched at the system-call level for any network access native code might make.

W^X: CTranslate2 picks oneDNN's JIT GEMM on AMD CPUs; with writable+executable memory refused
its numbers silently go wrong. With CT2_USE_MKL=1 it uses MKL's packed GEMM instead. The
child refuses W^X memory for itself with prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN) — the
kernel's form of what systemd enforces with seccomp — and translates through the real engines.
If these tests pass, the unit keeps MemoryDenyWriteExecute=yes and sets CT2_USE_MKL=1.

Network: an audit hook (tests/tiny_models.py) sees Python's sockets only. onnxruntime, under
MiniSBD, resolves its telemetry host from a native thread about 9 s after import unless
ORT_DISABLE_TELEMETRY=1; strace sees that, and any other native socket use.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import write_config
from tiny_models import TinyModels, session_models

from monitor.config import Config
from monitor.translate import install

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import ctypes, json, mmap, sys, time
from pathlib import Path

wx = "wx" in sys.argv
if wx:
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        print(json.dumps({"unsupported": ctypes.get_errno()}))
        sys.exit(0)
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        refused = False
    except OSError:
        refused = True

if "connect" in sys.argv:
    import socket
    try:
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    except OSError:
        pass

import ctranslate2
import sentencepiece
from monitor.config import load_config
from monitor.translate import Translator

items = [
    ("هجوم في السوق. قتلى وجرحى!", "قالت الشرطة إن الهجوم وقع صباحا. لا تفاصيل بعد؟", "ar"),
    ("تەقینەوە لە بازاڕ", "پۆلیس ڕایگەیاند کە تەقینەوەکە بەیانی ڕوویدا.", "ckb"),
    ("Teqîn li bazarê", "Polîs got ku teqîn sibê çêbû.", "kmr"),
] + [(f"خبر شماره {n} درباره {'بازار ' * n}", f"جمله اول {n}. جمله دوم.", "fa") for n in range(6)]
out = {"wx": wx and refused, "translations": {}, "scores": {}}
for path in sys.argv[1:3]:
    config = load_config(path)
    results = Translator.from_config(config).translate_items(items)
    out["translations"][config.translation.compute_type] = [
        r.as_json() if r else None for r in results
    ]
    # The random-weight model's log-probabilities: numbers, not just argmax tokens.
    model = config.state_dir / "models" / "argos" / "translate-fa_en" / "model"
    sp = sentencepiece.SentencePieceProcessor(
        model_file=str(model.parent / "sentencepiece.model")
    )
    tokens = [sp.encode(text, out_type=str) for _, text, _ in items]
    scorer = ctranslate2.Translator(str(model), compute_type=config.translation.compute_type)
    out["scores"][config.translation.compute_type] = [
        r.log_probs for r in scorer.score_batch(tokens, tokens)
    ]
linger = [float(a.split("=")[1]) for a in sys.argv if a.startswith("linger=")]
if linger:
    time.sleep(linger[0])
print(json.dumps(out))
"""


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return session_models(tmp_path_factory)


@pytest.fixture
def configs(tmp_path: Path, tiny: TinyModels) -> tuple[Config, Config]:
    """Two configs over one state dir with every tiny model: int8 and float32."""
    (tmp_path / "int8").mkdir()
    (tmp_path / "float32").mkdir()
    int8 = write_config(tmp_path / "int8", state_dir="../state")
    for model in (tiny.argos_ar, tiny.argos_fa, tiny.nllb):
        install(model, int8)
    float32 = write_config(
        tmp_path / "float32", state_dir="../state", translation={"compute_type": "float32"}
    )
    return int8, float32


def child(configs: tuple[Config, Config], *flags: str, **env: str) -> dict[str, Any]:
    """Run CHILD; its JSON result, with its stderr under "stderr"."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("CT2_USE_MKL", "ORT_DISABLE_TELEMETRY")
    }
    environment.update(PYTHONPATH=str(ROOT), **env)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *(str(c.source) for c in configs), *flags],
        env=environment,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["stderr"] = done.stderr
    if "unsupported" in result:
        pytest.skip(f"this kernel has no PR_SET_MDWE (errno {result['unsupported']})")
    return result


def test_wx_with_mkl_gives_exactly_the_unrestricted_output(configs: tuple[Config, Config]) -> None:
    unrestricted = child(configs, CT2_USE_MKL="1")
    restricted = child(configs, "wx", CT2_USE_MKL="1")
    assert restricted["wx"] is True, "the child could still map writable+executable memory"
    assert "MKL" in child(configs, CT2_USE_MKL="1", CT2_VERBOSE="1")["stderr"]
    assert restricted["translations"] == unrestricted["translations"]
    assert restricted["scores"] == unrestricted["scores"]  # bit for bit
    assert restricted["translations"]["int8"][0]["title"] == "suicide bomber suicide bomber"
    # And the same text as the default backend gives without W^X (scores differ in rounding).
    default = child(configs)
    assert restricted["translations"] == default["translations"]
    for kind, rows in default["scores"].items():
        for got, want in zip(restricted["scores"][kind], rows, strict=True):
            assert got == pytest.approx(want, rel=1e-4, abs=1e-4)


def test_wx_without_mkl_is_the_hazard_this_guards_against(configs: tuple[Config, Config]) -> None:
    default = child(configs, CT2_VERBOSE="1")
    if "GEMM backend: DNNL" not in default["stderr"]:
        pytest.skip("CTranslate2 does not use oneDNN's JIT on this CPU (Intel: MKL by default)")
    broken = child(configs, "wx")
    assert broken["wx"] is True
    assert broken["scores"] != default["scores"]


_INET = re.compile(r"connect\(\d+, \{sa_family=AF_INET6?|sendto\(\d+, .*, \{sa_family=AF_INET6?")
_NAME_SERVICE = re.compile(r'sun_path="/var/run/nscd/socket"')


def network_calls(configs: tuple[Config, Config], tmp_path: Path, *flags: str) -> list[str]:
    """Internet-socket connects and sends (and name-service lookups) the child made."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed")
    trace = tmp_path / "strace.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("ORT_DISABLE_TELEMETRY", None)
    done = subprocess.run(
        [
            strace,
            "-f",
            "-qq",
            "-e",
            "trace=connect,sendto,sendmsg,sendmmsg",
            "-o",
            str(trace),
            sys.executable,
            "-c",
            CHILD,
            *(str(c.source) for c in configs),
            *flags,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    if done.returncode != 0 and "ptrace" in done.stderr:
        pytest.skip(f"strace cannot trace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    lines = trace.read_text().splitlines()
    return [line for line in lines if _INET.search(line) or _NAME_SERVICE.search(line)]


def test_the_strace_check_sees_a_socket_attempt(
    configs: tuple[Config, Config], tmp_path: Path
) -> None:
    calls = network_calls(configs, tmp_path, "connect")
    assert any("127.0.0.1" in call for call in calls)


def test_no_native_code_touches_the_network_while_translating(
    configs: tuple[Config, Config], tmp_path: Path
) -> None:
    # 11 s: onnxruntime's telemetry thread makes its first lookup ~9 s after import.
    assert network_calls(configs, tmp_path, "linger=11") == []
