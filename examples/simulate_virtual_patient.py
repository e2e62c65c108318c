"""Simulate the quadriceps program on the four virtual-patient presets, then compare a
constant-frequency train with a doublet-start train on one patient.

Run: .venv/bin/python examples/simulate_virtual_patient.py [OUT_DIR]
Writes presets.png and doublets.png (and prints a summary).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from opennmes.physiology import PRESETS, get_preset, simulate, simulate_train  # noqa: E402
from opennmes.stim import load_program  # noqa: E402

HERE = Path(__file__).resolve().parent


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    program = load_program(HERE / "programs" / "quadriceps.yaml")
    fig, axes = plt.subplots(2, 1, sharex=True, figsize=(8, 5))
    for name in PRESETS:
        res = simulate(program, get_preset(name), sfreq=100.0, t_end=200.0)
        f = res.force("quadriceps")
        axes[0].plot(res.t, f, lw=0.8, label=name)
        axes[1].plot(res.t, np.degrees(res.angle("knee")), lw=0.8, label=name)
        print(f"{name:>14}: peak force {f.max():6.1f} N, end A "
              f"{res.fatigue('quadriceps')['A'][-1]:7.1f} N/s")
    axes[0].set_ylabel("quadriceps force (N)")
    axes[1].set_ylabel("knee extension (deg)")
    axes[1].set_xlabel("time (s)")
    axes[0].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "presets.png", dpi=120)

    # constant-frequency (CFT) vs doublet-start (VFT) trains, 180 trains (Bickel 2004 style)
    cft = np.arange(6) * 0.07
    vft = np.array([0.0, 0.005, 0.075, 0.145, 0.215, 0.285])
    fti = {}
    for label, train in (("CFT", cft), ("VFT", vft)):
        pulses = (np.arange(180)[:, None] + train[None, :]).ravel()
        res = simulate_train("ding2003", pulses, t_end=180.0, sfreq=1000.0, fatigue=True)
        f = res["force"].reshape(-1)[:180000].reshape(180, 1000)
        fti[label] = f.sum(axis=1) / 1000.0
    fig, ax = plt.subplots(figsize=(8, 3))
    for label, v in fti.items():
        ax.plot(np.arange(1, 181), v, label=label)
    ax.set_xlabel("contraction")
    ax.set_ylabel("force-time integral (N s)")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(out_dir / "doublets.png", dpi=120)
    print(f"VFT/CFT force-time integral: fresh {fti['VFT'][0] / fti['CFT'][0]:.3f}, "
          f"after 180 trains {fti['VFT'][-1] / fti['CFT'][-1]:.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("."))
