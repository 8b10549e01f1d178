"""Where bf16 may run: the standard draft job with each precision schedule, taking turns (issue 23).

Each variant is ``nst --quality draft`` at pastiche's working sizes and objective balance, as in
bench/openvino_draft.py, in a fresh process; its final image is scored by pastiche's own fp32
objective (bench/objective.py). The variants differ in where OpenVINO's bf16 runs and where MLAS's
fp32 does (``planning.schedule.Scale.exact_steps``, set here through the draft preset's
``exact_final_steps``); the targets of the fp32 steps are always fp32:

- ``cpu``: MLAS fp32 throughout (``--device cpu``);
- ``bf16``: OpenVINO bf16 throughout, targets included (``--device openvino-bf16``);
- ``all-bf16``: bf16 for every step with the schedule's device (exact_final_steps 0);
- ``polish-K``: bf16 until the top scale's last K steps, which run in fp32;
- ``top-fp32``: bf16 below the top scale and in its detail pass, the top's full pass in fp32;
- ``openvino``: what ``--device openvino`` runs (the draft preset's own exact_final_steps).

The bf16 steps' targets are computed by MLAS in fp32; a variant name ending in ``@own-targets``
computes them with the bf16 graphs instead (``engine.coarse_to_fine.FAST_TARGETS``).

``--quality normal`` runs (and sets ``exact_final_steps`` on) the normal preset instead of draft.

Variants run in turn (reversed every other round) for ``--rounds``; a shared host drifts, so only
ratios within a round mean much.

    NST_CACHE_DIR=/tmp/nst-bench python bench/precision_schedule.py --variants cpu top-fp32 polish-4 \
        --rounds 2 --out /tmp/ps

A cache of its own (NST_CACHE_DIR) keeps another checkout's runs from re-exporting the graphs in
the middle of a run (a checkout on another graph format overwrites them).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

OWN_TARGETS = "@own-targets"


def variant(name: str) -> tuple[str, int | str | None]:
    """(the device, the draft preset's exact_final_steps or "preset": the preset's own)."""
    if name == "cpu":
        return "cpu", "preset"
    if name == "bf16":
        return "openvino-bf16", "preset"
    if name == "all-bf16":
        return "openvino", 0
    if name == "top-fp32":
        return "openvino", None
    if name == "openvino":
        return "openvino", "preset"
    if name.startswith("polish-"):
        return "openvino", int(name.removeprefix("polish-"))
    raise SystemExit(f"unknown variant {name!r}")


def one(name: str, argv: list[str]) -> int:
    """Run nst in this process with the variant's schedule."""
    from nst_runtime.cli import main
    from nst_runtime.engine import coarse_to_fine
    from nst_runtime.planning import schedule

    if name.endswith(OWN_TARGETS):
        name = name.removesuffix(OWN_TARGETS)
        coarse_to_fine.FAST_TARGETS = "own"
    device, exact = variant(name)
    quality = argv[argv.index("--quality") + 1]
    if exact != "preset":
        schedule.PRESETS[quality] = replace(schedule.PRESETS[quality], exact_final_steps=exact)
    code = main([*argv, "--device", device])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(workdir: Path, content: Path, style: Path, name: str, index: int, size: int, quality: str) -> dict:
    from openvino_draft import pastiche_argv, timed

    out = workdir / f"nst-{name}-{index}.png"
    cmd = [sys.executable, __file__, "--one", name, "--", *pastiche_argv(content, style, out, size, quality)]
    return {"variant": name, "device": variant(name.removesuffix(OWN_TARGETS))[0], **timed(cmd, out, size)}


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        return one(sys.argv[2], sys.argv[4:])
    from openvino_draft import job_arguments
    from openvino_probe import cpu_flags
    from time_to_quality import prepared_inputs

    args = job_arguments(__doc__, "--variants", ["cpu", "openvino", "bf16"], "bench/results/precision-schedule")
    content, style = prepared_inputs(args.out, args.size)
    runs = []
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_flags": cpu_flags(),
        "command": "python bench/precision_schedule.py " + " ".join(sys.argv[1:]),
        "runs": runs,
    }
    for r in range(args.rounds):
        for name in args.variants if r % 2 == 0 else args.variants[::-1]:
            runs.append({"round": r, **run(args.out, content, style, name, r, args.size, args.quality)})
            row = runs[-1]
            print(
                f"round {r} {name:<18} {row['wall_seconds']:7.1f} s (cpu {row['cpu_seconds']} s)  "
                f"objective {row['objective']:.6g}  "
                f"on {row['ran_on']}, load {row['load_after']}, peak {row['peak_rss_gib']} GiB",
                flush=True,
            )
            (args.out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
