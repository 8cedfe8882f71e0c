"""Benchmark: local translation on generated models — throughput, memory, and the cost of the route.

    .venv/bin/python bench/translate_bench.py            # about 4 minutes on 2 cores
    .venv/bin/python bench/translate_bench.py --quick    # tiny model only, seconds

Prints markdown tables and writes everything to bench/results/translate-<UTC time>.json. No
network: the models are generated (tests/tiny_models.py) under bench/.work/translate.

1. Route: installed size (the dependency closure, from each distribution's RECORD), import
   time and RSS of news-monitor's route (argostranslate.package + ctranslate2 + sentencepiece
   + MiniSBD/onnxruntime) against `import argostranslate.translate`, each in a fresh process.
2. Throughput through `Translator.translate_items`, threads 2, of items of one title and a
   two-sentence summary (3 sentences): in the worker's rounds (batch_size/4 = 8 items, one
   `translate_batch` each), everything in one call, and one call per item. On the tiny model
   (D=32, 1 layer) and a base-size one (D=512, 6+6 layers, 8 heads, FF 2048, vocabulary
   32,000: Transformer-base, the size of Argos's ar→en model) whose random-weight decoder is
   forced to emit 20 tokens and </s> for every sentence, so decoding costs what a real
   20-token English sentence costs. int8 and float32; beam 1, 2 and 4 on the base model.
3. RSS of a process that has loaded each model and translated one item.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import tiny_models  # noqa: E402

from monitor.config import Config, load_config  # noqa: E402
from monitor.translate import Translator, install  # noqa: E402
from monitor.translate import _engine as engine_module  # noqa: E402

BASE_VOCABULARY = 32_000
BASE_OUTPUT_TOKENS = 20


# Models ------------------------------------------------------------------------------------


def base_package(work: Path, tiny: tiny_models.TinyModels) -> Path:
    """A Transformer-base ar→en `.argosmodel` whose decoder says 20 tokens per sentence."""
    package = work / "translate-ar_en-base.argosmodel"
    if package.exists():
        return package
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tiny.sentencepiece))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    filler = [f"▁x{i}" for i in range(BASE_VOCABULARY - len(pieces))]
    says = [p for p in pieces if p.startswith("▁") and len(p) > 1][:BASE_OUTPUT_TOKENS]
    started = time.perf_counter()
    model = tiny_models.random_transformer(
        work / "base-model", pieces + filler, d_model=512, layers=6, heads=8, ffn=2048, says=says
    )
    tiny_models.write_argos_package(
        package, "ar", "en", tiny.sentencepiece, model, minisbd=False, version="base"
    )
    print(f"built the base-size model in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return package


def items(tokenizer: Path, count: int, language: str) -> list[tuple[str, str, str]]:
    """Title of 10 words, summary of two 16-word sentences: words the tokenizer keeps whole."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tokenizer))
    words = [
        piece[1:]
        for piece in (sp.id_to_piece(i) for i in range(sp.get_piece_size()))
        if piece.startswith("▁") and len(piece) > 2 and len(sp.encode(piece[1:])) == 1
    ]
    rng = random.Random(0)

    def sentence(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    return [(sentence(10), f"{sentence(16)}. {sentence(16)}.", language) for _ in range(count)]


def nllb_directory(work: Path, tiny: tiny_models.TinyModels) -> Path:
    """An NLLB-200-distilled-600M-shaped model (D=1024, 12+12 layers, 16 heads, FF 4096,
    vocabulary 256,206), NLLB style, whose decoder says 20 tokens after eng_Latn."""
    directory = work / "nllb-600m-shaped"
    if (directory / "model.bin").exists():
        return directory
    import sentencepiece as spm

    tokenizer = tiny.nllb / "sentencepiece.bpe.model"
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    filler = [f"▁x{i}" for i in range(256_206 - len(pieces))]
    says = [p for p in pieces if p.startswith("▁") and len(p) > 1][:BASE_OUTPUT_TOKENS]
    started = time.perf_counter()
    tiny_models.random_transformer(
        directory,
        pieces + filler,
        d_model=1024,
        layers=12,
        heads=16,
        ffn=4096,
        says=says,
        says_from=1,
        decoder_start="</s>",
    )
    shutil.copy(tokenizer, directory / "sentencepiece.bpe.model")
    print(f"built the NLLB-shaped model in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return directory


def config_for(work: Path, name: str, package: Path, compute_type: str) -> Config:
    """A config file in `work/name`, its state dir beside it, `package` installed there."""
    root = work / name
    root.mkdir(parents=True, exist_ok=True)
    source = root / "config.yaml"
    source.write_text(f"state_dir: .\ntranslation:\n  compute_type: {compute_type}\n")
    config = load_config(source)
    if not (root / "models" / "argos").is_dir():
        install(package, config)
    return config


# 1. The route ------------------------------------------------------------------------------


def closure(names: Sequence[str], follow: bool = True) -> dict[str, int]:
    """Installed bytes of these distributions and (if `follow`) everything they require."""
    from packaging.requirements import Requirement

    sizes: dict[str, int] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in sizes:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        total = 0
        for file in dist.files or ():
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                total += path.stat().st_size
        sizes[key] = total
        if follow:
            for spec in dist.requires or ():
                requirement = Requirement(spec)
                if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                    todo.append(requirement.name)
    return sizes


PROBE = r"""
import json, os, sys, time
def rss(field="VmRSS"):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
started = time.perf_counter()
route, config_path = sys.argv[1], sys.argv[2]
if route == "ours":
    from monitor.config import load_config
    from monitor.translate import Translator
    imported = time.perf_counter() - started
    rss_import = rss()
    t = time.perf_counter()
    translator = Translator.from_config(load_config(config_path))  # kept: the model stays
    (result,) = translator.translate_items([("هجوم في السوق. قتلى", "قالت الشرطة", "ar")])
else:
    import argostranslate.translate as argos
    imported = time.perf_counter() - started
    rss_import = rss()
    t = time.perf_counter()
    result = argos.translate("هجوم في السوق. قتلى", "ar", "en")
first = time.perf_counter() - t
print(json.dumps({"import_s": round(imported, 3), "rss_after_import_mb": round(rss_import, 1),
    "first_translation_s": round(first, 3), "rss_after_translation_mb": round(rss(), 1),
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's RSS at fork.
    "peak_rss_mb": round(rss("VmHWM"), 1),
    "torch_loaded": "torch" in sys.modules, "onnxruntime_loaded": "onnxruntime" in sys.modules}))
"""


def probe(route: str, config: Config, runs: int = 3) -> dict[str, Any]:
    """Best of `runs` fresh processes (by import time)."""
    packages = config.state_dir / "models" / "argos"
    private = config.state_dir / "models" / ".argos"
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "HOME": str(private / "home"),
        "ORT_DISABLE_TELEMETRY": "1",
        # The stock route needs its directories pointed at the installed package.
        "ARGOS_PACKAGES_DIR": str(packages),
        "XDG_DATA_HOME": str(private / "data"),
        "XDG_CONFIG_HOME": str(private / "config"),
        "XDG_CACHE_HOME": str(private / "cache"),
    }
    results = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", PROBE, route, str(config.source)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    best: dict[str, Any] = min(results, key=lambda r: r["import_s"])
    best["import_s_runs"] = [r["import_s"] for r in results]
    return best


def route_table(work: Path, tiny: tiny_models.TinyModels) -> dict[str, Any]:
    config = config_for(work, "route", tiny.argos_ar, "int8")
    ours_dists = ["ctranslate2", "sentencepiece", "minisbd", "onnxruntime", "packaging"]
    ours = closure(ours_dists) | closure(["argostranslate"], follow=False)
    stock = closure(["argostranslate"])
    result: dict[str, Any] = {
        "installed_mb": {
            "ours": round(sum(ours.values()) / 2**20, 1),
            "stock": round(sum(stock.values()) / 2**20, 1),
        },
        "distributions": {"ours": sorted(ours), "stock": sorted(stock)},
        "largest_stock": {
            k: round(v / 2**20, 1) for k, v in sorted(stock.items(), key=lambda kv: -kv[1])[:8]
        },
        "ours": probe("ours", config),
        "stock": probe("stock", config),
    }
    print("\n## Route: news-monitor's vs `import argostranslate.translate`\n")
    print("| | news-monitor | argostranslate.translate |")
    print("|---|---:|---:|")
    sizes = result["installed_mb"]
    print(f"| installed (dependency closure) | {sizes['ours']} MB | {sizes['stock']} MB |")
    rows = [
        ("import time, best of 3 (news-monitor: config + translate)", "import_s", "s"),
        ("RSS after import", "rss_after_import_mb", "MB"),
        (
            "first translation (tiny ar model; ours imports the libraries here)",
            "first_translation_s",
            "s",
        ),
        ("RSS after one translation", "rss_after_translation_mb", "MB"),
        ("peak RSS", "peak_rss_mb", "MB"),
        ("torch loaded", "torch_loaded", ""),
    ]
    for label, key, unit in rows:
        print(f"| {label} | {result['ours'][key]} {unit} | {result['stock'][key]} {unit} |")
    ours_total = result["ours"]["import_s"] + result["ours"]["first_translation_s"]
    stock_total = result["stock"]["import_s"] + result["stock"]["first_translation_s"]
    print(f"| import + first translation | {ours_total:.3f} s | {stock_total:.3f} s |")
    return result


# 2. Throughput -----------------------------------------------------------------------------


def timed(fn: Callable[[], Any], minimum: float = 1.0) -> float:
    """Seconds per call: repeated until `minimum` seconds have passed (after one warm-up)."""
    fn()
    calls, started = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        spent = time.perf_counter() - started
        if spent >= minimum:
            return spent / calls


def throughput(
    config: Config, batch: list[tuple[str, str, str]], per_item: int, minimum: float
) -> dict[str, float]:
    translator = Translator.from_config(config)
    round_size = config.translation.batch_size // 4

    def rounds() -> None:
        for start in range(0, len(batch), round_size):
            translator.translate_items(batch[start : start + round_size])

    def one_call() -> None:
        translator.translate_items(batch)

    def each() -> None:
        for item in batch[:per_item]:
            translator.translate_items([item])

    return {
        "rounds": len(batch) / timed(rounds, minimum),
        "one_call": len(batch) / timed(one_call, minimum),
        "per_item": per_item / timed(each, minimum),
    }


def throughput_table(
    work: Path, tiny: tiny_models.TinyModels, args: argparse.Namespace
) -> dict[str, Any]:
    models = {"tiny": (tiny.argos_fa, "fa")}
    if not args.quick:
        models["base"] = (base_package(work, tiny), "ar")
    if args.nllb:
        models["nllb-600m"] = (nllb_directory(work, tiny), "ckb")
    out: dict[str, Any] = {}
    default_beam = engine_module.BEAM_SIZE
    print("\n## Items per second (title + 2 sentences each; threads 2)\n")
    print("| model | compute | beam | rounds of 8 | one call | one call per item |")
    print("|---|---|---:|---:|---:|---:|")
    for name, (package, language) in models.items():
        tokenizer = (
            tiny.nllb / "sentencepiece.bpe.model" if name == "nllb-600m" else tiny.sentencepiece
        )
        batch = items(tokenizer, args.items, language)
        beams = [default_beam] if name == "tiny" else [1, 2, 4]
        # float32 on the 600M shape would take minutes and 4 GB: int8 is the default anyway.
        for compute in ("int8",) if name == "nllb-600m" else ("int8", "float32"):
            config = config_for(work, f"{name}-{compute}", package, compute)
            for beam in beams if compute == "int8" else [default_beam]:
                engine_module.BEAM_SIZE = beam
                rates = throughput(config, batch, args.per_item, args.min_seconds)
                out[f"{name}/{compute}/beam{beam}"] = rates
                print(
                    f"| {name} | {compute} | {beam} | {rates['rounds']:.1f} "
                    f"| {rates['one_call']:.1f} | {rates['per_item']:.1f} |"
                )
    engine_module.BEAM_SIZE = default_beam
    return out


# 3. Memory ---------------------------------------------------------------------------------


def memory_table(
    work: Path, tiny: tiny_models.TinyModels, args: argparse.Namespace
) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    cases = [("tiny", tiny.argos_fa)]
    if not args.quick:
        cases.append(("base", base_package(work, tiny)))
    for name, package in cases:
        for compute in ("int8", "float32"):
            config = config_for(work, f"{name}-{compute}", package, compute)
            rows[f"{name}/{compute}"] = probe("ours", config, runs=1)
    print("\n## Memory: one process, model loaded, one item translated\n")
    print("| model | compute | model.bin on disk | RSS | peak RSS |")
    print("|---|---|---:|---:|---:|")
    for key, row in rows.items():
        name, compute = key.split("/")
        disk = next((work / f"{name}-{compute}" / "models" / "argos").glob("*/model/model.bin"))
        size = disk.stat().st_size / 2**20
        print(
            f"| {name} | {compute} | {size:.1f} MB | {row['rss_after_translation_mb']} MB "
            f"| {row['peak_rss_mb']} MB |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the tiny model only")
    parser.add_argument(
        "--nllb", action="store_true", help="also an NLLB-600M-shaped model (4 GB on disk)"
    )
    parser.add_argument("--items", type=int, default=64, help="items per batched run")
    parser.add_argument("--per-item", type=int, default=16, help="items run one call each")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--work", type=Path, default=BENCH / ".work" / "translate")
    parser.add_argument("--results", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    tiny = tiny_models.build(args.work / "tiny")
    results = {
        "machine": {"cpus": len(os.sched_getaffinity(0))},
        "route": route_table(args.work, tiny),
        "throughput_items_per_s": throughput_table(args.work, tiny, args),
        "memory": memory_table(args.work, tiny, args),
        "bench_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.results / f"translate-{stamp}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nresults: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
