"""A tiny synthetic traffic-matrix dataset laid out like ../shared/data/geant, for TE tests.

Four nodes in a ring with one chord, directed links in bit/s, and 324 fifteen-minute
traffic matrices (GÉANT's split: fit on the first 216, evaluate on the rest) with a
daily cycle and seeded noise, so ``load_dataset("geant")`` and ``catalog.load("geant")``
read it when ``FORESIGHT_DATA_DIR`` points at the folder.
"""

from pathlib import Path

import numpy as np

from topologies.catalog import LinkSpec, SwitchSpec, TopologySpec

LABELS = ("n0", "n1", "n2", "n3")
# (a, b, capacity_mbps): a ring 0-1-2-3-0 and the chord 0-2; a thin link makes routing matter.
LINKS = ((0, 1, 1000.0), (1, 2, 1000.0), (2, 3, 1000.0), (0, 3, 400.0), (0, 2, 2500.0))
STEPS = 324
STEP_S = 900


def traffic(seed: int = 0, steps: int = STEPS) -> np.ndarray:
    """[steps, N, N] Mbit/s: per-pair level x daily cycle x noise, zero diagonal."""
    rng = np.random.default_rng(seed)
    n = len(LABELS)
    level = rng.uniform(20, 200, size=(n, n))
    phase = rng.uniform(0, 2 * np.pi, size=(n, n))
    t = np.arange(steps)[:, None, None]
    cube = level * (1 + 0.5 * np.sin(2 * np.pi * t / 96 + phase)) * rng.lognormal(0, 0.15, (steps, n, n))
    cube[:, np.arange(n), np.arange(n)] = 0.0
    return cube


def write_geant_like(root: Path, seed: int = 0) -> Path:
    folder = Path(root) / "geant"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nodes.csv").write_text("node_index,node_id,longitude,latitude\n" + "".join(
        f"{i},{label},{i}.0,{i}.0\n" for i, label in enumerate(LABELS)))
    rows = ["src_index,dst_index,src,dst,capacity_bps"]
    for a, b, cap in LINKS:
        for u, v in ((a, b), (b, a)):
            rows.append(f"{u},{v},{LABELS[u]},{LABELS[v]},{int(cap * 1e6)}")
    (folder / "links.csv").write_text("\n".join(rows) + "\n")
    cube = traffic(seed)
    n = len(LABELS)
    lines = ["timestamp_index,src,dst,value"]
    for t in range(cube.shape[0]):
        for i in range(n):
            for j in range(n):
                lines.append(f"{t},{i},{j},{cube[t, i, j]:.6f}")
    (folder / "tm_sndlib_15min_mbps.csv").write_text("\n".join(lines) + "\n")
    return Path(root)


def spec() -> TopologySpec:
    """The same four-node topology as a catalog spec (switches s1..s4, labels n0..n3)."""
    switches = tuple(SwitchSpec(f"s{i + 1}", i + 1, label) for i, label in enumerate(LABELS))
    ordered = sorted(LINKS, key=lambda link: (min(link[:2]), max(link[:2])))
    links = tuple(LinkSpec(f"s{min(a, b) + 1}", f"s{max(a, b) + 1}", cap) for a, b, cap in ordered)
    return TopologySpec("ring", switches, links, "test")


def series_names() -> list[str]:
    """Panel series ids in load_dataset's order: "n0->n1", "n0->n2", ..."""
    return [f"{a}->{b}" for a in LABELS for b in LABELS if a != b]


def od_series(steps: int = 40, seed: int = 1) -> np.ndarray:
    """[steps, OD] Mbit/s in series_names() order."""
    cube = traffic(seed=seed, steps=steps)
    n = cube.shape[1]
    return np.stack([cube[:, i, j] for i in range(n) for j in range(n) if i != j], axis=1)
