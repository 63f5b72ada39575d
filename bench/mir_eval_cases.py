"""Reference numbers for the Rust beat metrics (analysis/src/metrics.rs).

Builds the same beat sequences as the Rust unit tests (same float operations), scores them
with mir_eval.beat.evaluate (trims the first 5 s, F-measure at +-70 ms, CMLc/CMLt/AMLc/AMLt)
and prints the numbers with full precision. Run: bench/.venv/bin/python bench/mir_eval_cases.py
"""

import math
import warnings

import mir_eval
import numpy as np


def regular(start, period, count):
    return [start + i * period for i in range(count)]


def ramp(start, period0, period1, count):
    # period moves linearly from period0 to period1 over the beats
    out, t = [], start
    for i in range(count):
        out.append(t)
        t += period0 + (period1 - period0) * (i / (count - 1))
    return out


def cases():
    ref = regular(0.25, 0.5, 70)
    yield "identical", ref, list(ref)
    yield "shifted_50ms", ref, [t + 0.05 for t in ref]
    yield "shifted_100ms", ref, [t + 0.1 for t in ref]
    yield "jittered", ref, [t + 0.075 * math.sin(1.7 * i) for i, t in enumerate(ref)]
    yield "double_time", ref, regular(0.25, 0.25, 139)
    yield "half_time", ref, regular(0.25, 1.0, 35)
    yield "half_time_odd", ref, regular(0.75, 1.0, 34)
    yield "off_beat", ref, regular(0.5, 0.5, 69)
    yield "missing_every_5th", ref, [t for i, t in enumerate(ref) if i % 5 != 4]
    yield "gap_12_to_20s", ref, [t for t in ref if not (12.0 < t < 20.0)]
    yield "extra_beats", ref, sorted(ref + [t + 0.21 for t in ref[::7]])
    yield "empty_estimate", ref, []
    yield "one_estimate", ref, [10.25]
    yield "ramp_jittered", ramp(0.3, 0.6, 0.45, 70), [t + 0.072 * math.sin(0.9 * i) for i, t in enumerate(ramp(0.3, 0.6, 0.45, 70))]
    yield "tempo_ramp_vs_constant", ramp(0.3, 0.6, 0.45, 70), regular(0.3, 0.52, 70)
    yield "ramp_tracked_late", ramp(0.3, 0.6, 0.45, 70), [t + 0.03 for t in ramp(0.3, 0.6, 0.45, 70)]
    yield "two_beats", [6.0, 6.5], [6.0, 6.5]
    yield "three_beats", [6.0, 6.5, 7.0], [6.02, 6.51, 7.3]
    yield "downbeats_every_4th", regular(0.25, 2.0, 18), regular(0.25, 0.5, 70)[::4]
    yield "downbeats_wrong_phase", regular(0.25, 2.0, 18), regular(1.25, 2.0, 17)


def main():
    warnings.simplefilter("ignore")
    print("mir_eval", mir_eval.__version__)
    for name, ref, est in cases():
        scores = mir_eval.beat.evaluate(np.array(ref), np.array(est))
        values = [scores[k] for k in (
            "F-measure",
            "Correct Metric Level Continuous",
            "Correct Metric Level Total",
            "Any Metric Level Continuous",
            "Any Metric Level Total",
        )]
        print(f"{name:24s} " + ", ".join(repr(float(v)) for v in values))


if __name__ == "__main__":
    main()
