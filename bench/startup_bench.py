"""Start-up of the short commands, version against version (issue 14).

Each command runs as a fresh process, in rounds; within a round every version runs it in turn,
the order alternating between rounds, so load from other work falls on every version alike.
Wall is `perf_counter` from spawning to `wait`; CPU is user+sys from `RUSAGE_CHILDREN`, which
counts the command and anything it waited for (the feed server runs in this process, so its
CPU is not in it). Medians, with min–max.

    .venv/bin/python bench/startup_bench.py                      # git HEAD against the tree
    .venv/bin/python bench/startup_bench.py --rounds 20 --importtime
    .venv/bin/python bench/startup_bench.py --impl old=/path/to/checkout --impl new=.

A version is a directory that holds the `monitor` package (a checkout), or `git:REV`, which is
extracted with `git archive` into a temporary directory. Commands: `--help`, `--version`,
`check-config`, and `poll-once` of one feed that answers 304 (a first, unmeasured run stores
it), with a Slack sink configured and nothing to send. `--importtime` adds each version's
`python -X importtime` for `poll-once`: the top-level imports that cost the most.

Bytecode is cached (in a private `PYTHONPYCACHEPREFIX`) and one unmeasured round warms it,
as an installed package has its `.pyc` files: with `PYTHONDONTWRITEBYTECODE` set, every run
would compile every module of the package again. `--no-bytecode` keeps the environment's
setting.

`--hide rich --hide twisted` runs every command as if those packages were not installed: a
development virtualenv has them (for typer and the Matrix test server), a runtime install does
not, and structlog imports both whenever they are there.
"""

from __future__ import annotations

import argparse
import http.server
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

FEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Desk</title><link>https://desk.example.org/</link>
<description>one item</description>
<item><title>Diyarbakir city walls reopen</title><guid isPermaLink="false">desk-1</guid>
<pubDate>Wed, 01 Jan 2025 10:00:00 +0000</pubDate></item>
</channel></rss>
"""

CONFIG = """\
database: monitor.db
polling:
  timeout: 5s
  jitter: 0
feeds:
  - name: Local desk
    url: {url}
    language: en
translation:
  mode: off
watchlists:
  - name: khanaqin
    terms: [Khanaqin]
sinks:
  - name: desk-chat
    type: slack
    url: http://127.0.0.1:9/services/T0/B0/x
"""

COMMANDS: dict[str, list[str]] = {
    "--help": ["--help"],
    "--version": ["--version"],
    "check-config": ["--config", "config.yaml", "check-config"],
    "poll-once (304)": ["--config", "config.yaml", "poll-once"],
}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.send_header("ETag", '"v1"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(FEED)))
        self.end_headers()
        self.wfile.write(FEED)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def feed_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/desk.xml"
    finally:
        server.shutdown()
        server.server_close()


def resolve(source: str, scratch: Path) -> Path:
    if not source.startswith("git:"):
        return Path(source).resolve()
    rev = source.removeprefix("git:")
    target = scratch / f"git-{rev.replace('/', '_')}"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "monitor"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    code = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False).returncode
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, code


def importtime(cmd: list[str], cwd: Path, env: dict[str, str], top: int) -> list[str]:
    done = subprocess.run(
        [cmd[0], "-X", "importtime", *cmd[1:]], cwd=cwd, env=env, capture_output=True, text=True
    )
    rows: list[tuple[int, str]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        if name.startswith(" ") and not name.startswith("  "):  # imported by the script itself
            rows.append((int(cumulative), name.strip()))
    total = sum(us for us, _ in rows)
    lines = [f"  all top-level imports: {total / 1000:.0f} ms"]
    for us, name in sorted(rows, reverse=True)[:top]:
        lines.append(f"  {us / 1000:7.1f} ms  {name}")
    return lines


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--impl",
        action="append",
        metavar="NAME=SOURCE",
        help="a version: a checkout directory or git:REV (default: head=git:HEAD, tree=.)",
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--importtime", action="store_true", help="top imports of poll-once")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to run")
    parser.add_argument(
        "--hide", action="append", default=[], metavar="PACKAGE", help="run as if not installed"
    )
    parser.add_argument("--no-bytecode", action="store_true", help="keep the environment's")
    args = parser.parse_args()
    specs = args.impl or ["head=git:HEAD", f"tree={REPO}"]
    # The editable install's import hook comes before PYTHONPATH: without it out of the way,
    # every implementation would run the working tree.
    unhook = "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]; "
    hide = "".join(f"sys.modules[{name!r}] = None; " for name in args.hide)
    base = [
        args.python,
        "-c",
        f"import runpy, sys; {unhook}{hide}runpy.run_module('monitor', run_name='__main__',"
        " alter_sys=True)",
    ]

    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp, feed_server() as url:
        scratch = Path(tmp)
        impls: dict[str, tuple[Path, dict[str, str]]] = {}
        for spec in specs:
            name, _, source = spec.partition("=")
            root = resolve(source, scratch)
            work = scratch / f"run-{name}"
            work.mkdir()
            (work / "config.yaml").write_text(CONFIG.format(url=url), encoding="utf-8")
            # Outside the repository, so that the working directory on sys.path is no checkout.
            env = {**os.environ, "PYTHONPATH": str(root)}
            if not args.no_bytecode:
                env.pop("PYTHONDONTWRITEBYTECODE", None)
                env["PYTHONPYCACHEPREFIX"] = str(scratch / f"pycache-{name}")
            impls[name] = (work, env)
            first = subprocess.run(
                [*base, *COMMANDS["poll-once (304)"]], cwd=work, env=env, capture_output=True
            )
            if first.returncode != 0:
                sys.exit(f"{name}: the first poll-once failed:\n{first.stderr.decode()}")

        results: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
        names = list(impls)
        for round_ in range(-1, args.rounds):  # round -1: the warm-up, not recorded
            order = names if round_ % 2 == 0 else names[::-1]
            for label, argv in COMMANDS.items():
                for name in order:
                    work, env = impls[name]
                    wall, cpu, code = timed([*base, *argv], work, env)
                    if code != 0:
                        sys.exit(f"{name}: {label} exited {code}")
                    if round_ < 0:
                        continue
                    walls, cpus = results.setdefault((label, name), ([], []))
                    walls.append(wall)
                    cpus.append(cpu)

        hidden = f"; hidden: {', '.join(args.hide)}" if args.hide else ""
        hidden += "; no bytecode cache" if args.no_bytecode else ""
        print(f"{args.rounds} rounds, {os.cpu_count()} CPUs{hidden}; seconds, median (min–max)\n")
        print("| command | " + " | ".join(f"{n} wall | {n} CPU" for n in names) + " |")
        print("|---|" + "---|---|" * len(names))
        for label in COMMANDS:
            cells = []
            for name in names:
                walls, cpus = results[(label, name)]
                cells += [summary(walls), summary(cpus)]
            print(f"| `{label}` | " + " | ".join(cells) + " |")
        if args.importtime:
            for name, (work, env) in impls.items():
                cmd = [*base, *COMMANDS["poll-once (304)"]]
                print(f"\n{name}: python -X importtime, poll-once (304)")
                print("\n".join(importtime(cmd, work, env, 12)))


if __name__ == "__main__":
    main()
