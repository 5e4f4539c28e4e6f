"""The fuzz campaign: atheris (libFuzzer) over every target in targets.py.

    python tests/fuzz/run.py --all --runs 1000000 --json

Each target runs in its own process (libFuzzer exits when done), starting from
a seed corpus of valid messages, with a 5 s per-input timeout (a hang is a
failure). The summary reports runs, seconds, crashes and timeouts per target;
a crash leaves its input in tests/fuzz/findings/ to become a regression test.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(target: str, runs: int, workdir: Path) -> None:
    import atheris

    with atheris.instrument_imports(include=["relsec_p2p"]):
        sys.path.insert(0, str(HERE))
        import targets

    function, seeds = targets.TARGETS[target]
    corpus = workdir / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(seeds()):
        (corpus / f"seed-{i}").write_bytes(seed)
    findings = HERE / "findings"
    findings.mkdir(exist_ok=True)
    atheris.Setup(
        [
            sys.argv[0],
            f"-runs={runs}",
            "-timeout=5",
            "-rss_limit_mb=4096",
            f"-artifact_prefix={findings}/{target}-",
            "-print_final_stats=1",
            str(corpus),
        ],
        function,
    )
    atheris.Fuzz()


def campaign(target: str, runs: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as workdir:
        started = time.monotonic()
        result = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                target,
                "--runs",
                str(runs),
                "--workdir",
                workdir,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.monotonic() - started
    log = result.stderr
    done = re.search(r"Done (\d+) runs", log)
    executed = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    return {
        "target": target,
        "runs": int(executed.group(1)) if executed else int(done.group(1)) if done else 0,
        "seconds": round(seconds, 1),
        "crashes": log.count("ERROR: libFuzzer: deadly signal") + log.count("Uncaught Python"),
        "timeouts": log.count("ERROR: libFuzzer: timeout"),
        "exit": result.returncode,
        "tail": "" if result.returncode == 0 else log[-2000:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("targets", nargs="*")
    parser.add_argument("--all", action="store_true")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--workdir")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.runs, Path(args.workdir))
        return 0
    sys.path.insert(0, str(HERE))
    import targets

    names = list(targets.TARGETS) if args.all else args.targets
    results = [campaign(name, args.runs) for name in names]
    if args.json:
        print(json.dumps(results))
    else:
        for r in results:
            print(
                f"{r['target']:>10}: {r['runs']} runs in {r['seconds']} s, "
                f"{r['crashes']} crashes, {r['timeouts']} timeouts (exit {r['exit']})"
            )
    return 0 if all(r["exit"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
