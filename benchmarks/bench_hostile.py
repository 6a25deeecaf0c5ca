"""Each hostile case of issue 15 through the real CLI: its time and peak memory.

Every case is a spec (or a path) that once cost unbounded CPU or memory, blocked, or crashed.
Each runs as its own ``python -m archviz shapes CASE`` process, so the figures include Python's
start-up (about 0.25 s and 60 MB): wall seconds, and the peak resident memory of that process
(``ru_maxrss`` from ``os.wait4``). Targets: every case under 1 s and 200 MB, with exit code 2
(bad input, a located error) and no traceback; the script exits 1 otherwise.

One more line, for information, is not a hostile case: ``repeat: 100000`` of a one-layer block
is a real 100,000-layer network, whose cost is the expanded network's (see bench_scale.py); it
is written as CSV, since a 100,000-row terminal table costs minutes of rich's layout by itself.

    python benchmarks/bench_hostile.py           # every case
    python benchmarks/bench_hostile.py --quick   # without the 100k-layer information line
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIME_S = 1.0
MEMORY_MB = 200.0
HEAD = "name: x\ninput: [3, 8, 8]\n"
RELU = "layers: [{name: a, op: relu}]\n"
BLOCK = "blocks: {b: {params: {n: 1}, layers: [{name: r, op: relu}]}}\n"


def laughs(use: str) -> str:
    """Nine levels of nine aliases: 9^9 = 387,420,489 strings once expanded."""
    anchors = "".join(f"  - &a{i} [" + ", ".join([f"*a{i - 1}" if i else "lol"] * 9) + "]\n"
                      for i in range(9))
    return "description:\n" + anchors + use


def cases(folder: Path) -> list[tuple[str, str | Path]]:
    """(label, spec text or a path) for every hostile case."""
    deep = "[" * 999 + "]" * 999
    fifo = folder / "fifo.yaml"
    os.mkfifo(fifo)
    big = folder / "big.yaml"
    with open(big, "w") as fh:   # 50 MB of valid layers
        fh.write(HEAD + "layers:\n")
        line = "  - {name: l%07d, op: relu}\n"
        fh.writelines(line % i for i in range(50 * 2**20 // len(line % 0)))
    return [
        ("gpus: 10^9", HEAD + "gpus: 1000000000\n" + RELU),
        ("repeat: 10^12", HEAD + BLOCK + "layers: [{name: u, block: b, repeat: 1000000000000}]\n"),
        ("repeat: 2·10^9 (below 2^31)", HEAD + BLOCK + "layers: [{name: u, block: b, repeat: 2000000000}]\n"),
        ("nested repeat: 10^5 × 10^5", HEAD + "blocks:\n  inner: {layers: [{name: r, op: relu}]}\n"
         "  outer: {layers: [{name: i, block: inner, repeat: 100000}]}\n"
         "layers: [{name: u, block: outer, repeat: 100000}]\n"),
        ("adaptive_avgpool out: 10^12", HEAD + "layers: [{name: a, op: adaptive_avgpool,"
         " out: 1000000000000}]\n"),
        ("adaptive_avgpool out: 2^31−1 (valid)", "name: x\ninput: [1, 2, 2]\n"
         "layers: [{name: a, op: adaptive_avgpool, out: 2147483647}, {name: f, op: flatten}]\n"),
        ("conv kernel 10^12, padding 5·10^11", HEAD + "layers: [{name: a, op: conv, out: 1,"
         " kernel: 1000000000000, padding: 500000000000}]\n"),
        ("maxpool kernel 2^31−1, padding 2^30", "name: x\ninput: [1, 8, 8]\nlayers: [{name: a, op: maxpool,"
         " kernel: 2147483647, stride: 7, padding: 1073741824}]\n"),
        ("billion laughs under name", laughs("name: *a8\ninput: [3, 8, 8]\n" + RELU)),
        ("billion laughs under input", laughs("name: x\ninput: *a8\n" + RELU)),
        ("billion laughs under note", laughs(HEAD + "layers: [{name: a, op: relu, note: *a8}]\n")),
        ("billion laughs under claims", laughs(HEAD + RELU + "claims: {params: *a8}\n")),
        ("billion laughs in a block argument",
         laughs(HEAD + BLOCK + "layers: [{name: u, block: b, args: {n: *a8}}]\n")),
        ("input nested 999 deep", f"name: x\ninput: {deep}\n" + RELU),
        ("op: [conv]", HEAD + "layers: [{name: a, op: [conv]}]\n"),
        ("block: {a: 1}", HEAD + BLOCK + "layers: [{name: u, block: {a: 1}}]\n"),
        ("dropout p: 10^400", HEAD + "layers: [{name: a, op: dropout, p: 1" + "0" * 400 + "}]\n"),
        ("claims params: 10^400", HEAD + RELU + "claims: {params: 1" + "0" * 400 + "}\n"),
        ("adaptive out: 10^400", HEAD + "layers: [{name: a, op: adaptive_avgpool, out: 1"
         + "0" * 400 + "}]\n"),
        ("/dev/zero as the spec", Path("/dev/zero")),
        ("a FIFO as the spec", fifo),
        ("a directory as the spec", folder),
        ("a 50 MB spec", big),
    ]


def run(spec: Path | None, *extra: str) -> tuple[int, float, float, str]:
    """(exit code, wall seconds, peak MB, first line of stderr) of ``archviz shapes spec``
    (``archviz --version`` when ``spec`` is None: the start-up alone)."""
    command = ["shapes", str(spec), *extra] if spec is not None else ["--version"]
    t = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "archviz", *command], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    first = "Traceback" if "Traceback" in text else (text.strip().splitlines() or [""])[0]
    return proc.returncode, seconds, usage.ru_maxrss / 1024, first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="leave out the 100k-layer information line")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"each case: `python -m archviz shapes CASE`, one process; targets < {TIME_S:g} s,"
              f" < {MEMORY_MB:g} MB, exit 2 (0 for a valid case), no traceback")
        _, seconds, mb, _ = run(None)
        print(f"{'(start-up alone: archviz --version)':38} exit 0  {seconds:5.2f} s  {mb:6.1f} MB")
        for i, (label, spec) in enumerate(cases(folder)):
            path = spec if isinstance(spec, Path) else folder / f"case{i}.yaml"
            if not isinstance(spec, Path):
                path.write_text(spec, encoding="utf-8")
            code, seconds, mb, first = run(path)
            expected = 0 if "(valid)" in label else 2
            good = code == expected and seconds < TIME_S and mb < MEMORY_MB and first != "Traceback"
            ok &= good
            shown = first.replace(str(folder), "TMP")[:90]
            print(f"{label:38} exit {code}  {seconds:5.2f} s  {mb:6.1f} MB  {'ok' if good else 'MISSED'}"
                  f"  {shown}")
        if not args.quick:
            path = folder / "repeat100k.yaml"
            path.write_text(HEAD + BLOCK + "layers: [{name: u, block: b, repeat: 100000}]\n")
            code, seconds, mb, first = run(path, "--format", "csv")
            print(f"{'(information) repeat: 100000, -f csv':38} exit {code}  {seconds:5.2f} s  {mb:6.1f} MB"
                  "  a real 100,000-layer network: the cost of the expanded network")
    print("all cases within the targets" if ok else "SOME CASES MISSED THE TARGETS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
