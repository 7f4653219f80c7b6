"""Can U learn rotation sharing from Rotated MNIST? The architectures and protocols tried, and what U learned.

Every configuration meta-trains on upright supports and queries rotated by
0/90/180/270° (exact on the pixel grid: the setting most favourable to
sharing), and reads, at the start and at the end:

- the accuracy on held-out tasks at 0° and on the rotated queries (upright
  supports, the same tasks at every angle);
- the corrected lens (msr.core.symmetry) on the first layer the model applies
  (its meta-learned initial filters) and on the layers its U generates from
  random v: orbit score (1 = rotated copies, 0 = as random filters) and the
  isotropic share (rotation-invariant energy, left out of the orbit score);
- how far the inner loop moves the first layer's filter parameters v on a
  task, ‖v_adapted − v₀‖ / ‖v₀‖: U is shaped only along the directions the
  inner loop moves v, so a small move leaves U's reach as it started.

Readouts beyond the app's flatten: ``gap`` (global average pooling of each
channel), ``ringsR`` (average over R rings around the image centre: a
quarter turn maps every ring onto itself, so each channel's ring profile is
exactly invariant once its filter's rotated copies are in the bank), and
``...+group`` (the mean over consecutive groups of four channels first, so
four channels that are rotated copies of one filter give an invariant
feature). A U that makes rotated copies pays off in all of these.

    nice -n 10 python benchmarks/symmetry_search.py --jobs 2 --update-docs
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks.common import machine, update_doc  # noqa: E402
from msr.core.data import TaskSampler, load_bundled  # noqa: E402
from msr.core.layers import BankedConv2d, BankedLinear, DenseConv2d, DenseLinear, KroneckerConv2d  # noqa: E402
from msr.core.choices import MetaConfig
from msr.core.meta import Episode, MetaLearner
from msr.core.models import MetaModel  # noqa: E402
from msr.core.symmetry import generated_filters, isotropic_share, orbit_score  # noqa: E402
from msr.synthetic.config import SyntheticConfig  # noqa: E402
from msr.synthetic.trainer import SyntheticTrainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "nice -n 10 python benchmarks/symmetry_search.py"
ANGLES = [0.0, 90.0, 180.0, 270.0]
SIDE = 26  # 28×28 images, 3×3 valid conv

# What was tried: readout, first layer, head, channels, conv latent, head
# latent, inner rate, inner steps, outer steps, rotation of the queries.
BASE = dict(readout="flatten", conv="dense", head="dense", channels=8, conv_latent=18, latent=8, inner_lr=0.1,
            inner_steps=2, steps=1500, rotation="query", ways=5, shots=5, queries=5, tasks=8)
CONFIGS: list[dict] = [
    dict(readout="flatten", channels=8, conv_latent=18),
    dict(readout="gap", channels=16, conv_latent=36, latent=20, inner_steps=1),
    dict(readout="gap", channels=16, conv_latent=36, latent=20, inner_steps=1, inner_lr=1.0),
    dict(readout="rings4", channels=16, conv_latent=36, latent=20, inner_steps=1),
    dict(readout="rings4", channels=16, conv_latent=36, latent=20, inner_steps=2, inner_lr=1.0),
    dict(readout="rings4+group", channels=16, conv_latent=36, latent=10, inner_steps=1),
    dict(readout="rings6", channels=32, conv_latent=72, latent=40, inner_steps=1, steps=4000),
    dict(readout="rings4", conv="plain", head="plain", channels=16, inner_steps=1),
    dict(readout="rings4+group", conv="plain", head="plain", channels=16, inner_steps=1),
    dict(readout="rings4", channels=16, conv_latent=36, latent=20, inner_steps=1, rotation="none"),
]


class PooledNet(MetaModel):
    """conv → ReLU → [mean over groups of four channels] → readout → head."""

    def __init__(self, conv, head, readout: str):
        super().__init__()
        self.conv, self.head = conv, head
        self.kind, _, group = readout.partition("+")
        self.group = group == "group"
        if self.kind.startswith("rings"):
            rings = int(self.kind[5:])
            c = (SIDE - 1) / 2
            yy, xx = torch.meshgrid(torch.arange(SIDE), torch.arange(SIDE), indexing="ij")
            d = ((yy - c) ** 2 + (xx - c) ** 2).sqrt()
            edges = torch.linspace(0, float(d.max()) + 1e-6, rings + 1)
            masks = torch.stack([((d >= edges[i]) & (d < edges[i + 1])).float() for i in range(rings)])
            self.register_buffer("masks", masks / masks.sum((1, 2), keepdim=True))

    def forward_with_activations(self, x, angle_idx=None):
        h = F.relu(self.conv(x))
        if self.group:
            h = h.reshape(h.shape[0], -1, 4, *h.shape[-2:]).mean(2)
        if self.kind == "flatten":
            f = h.flatten(1)
        elif self.kind == "gap":
            f = h.mean((-2, -1))
        else:
            f = torch.einsum("nchw,rhw->ncr", h, self.masks).flatten(1)
        return self.head(f), {"relu1": h}


def features(cfg: dict) -> int:
    kind, _, group = cfg["readout"].partition("+")
    c = cfg["channels"] // 4 if group else cfg["channels"]
    return c * SIDE * SIDE if kind == "flatten" else c if kind == "gap" else c * int(kind[5:])


def build(cfg: dict, seed: int) -> PooledNet:
    g = torch.Generator().manual_seed(seed)
    c = cfg["channels"]
    conv = {"plain": lambda: BankedConv2d(1, c, 3, generator=g),
            "kronecker": lambda: KroneckerConv2d(1, c, 3, generator=g),
            "dense": lambda: DenseConv2d(1, c, 3, latent=cfg["conv_latent"], generator=g)}[cfg["conv"]]()
    n = features(cfg)
    head = {"plain": lambda: BankedLinear(n, cfg["ways"], generator=g),
            "dense": lambda: DenseLinear(n, cfg["ways"], latent=cfg["latent"], generator=g)}[cfg["head"]]()
    return PooledNet(conv, head, cfg["readout"])


class _Upright(TaskSampler):
    """Upright supports, every query at one angle (the same draws at every angle)."""
    query_angle = 0

    def _angles(self, tasks, n_s, n_q):
        super()._angles(tasks, n_s, n_q)
        return torch.zeros(tasks, n_s, dtype=torch.long), torch.full((tasks, n_q), self.query_angle)


def read(learner: MetaLearner, cfg: dict, data, eval_tasks: int) -> dict:
    accs = []
    for i in range(len(ANGLES)):
        sampler = _Upright(data.test, ANGLES, cfg["ways"], cfg["shots"], cfg["queries"], "mixed",
                           torch.Generator().manual_seed(999))
        sampler.query_angle = i
        batch = sampler.sample(eval_tasks)
        out = learner.evaluate(Episode.of(batch)).query_out
        accs.append(float((out.argmax(-1) == batch.yq).float().mean()))
    conv = learner.model.conv
    with torch.no_grad():
        w = conv.effective_weight().detach()
    gen = generated_filters(conv, draws=4)
    u = [orbit_score(b).score for b in gen] if gen is not None else []
    moves = []
    for t in range(min(eval_tasks, 20)):  # how far the inner loop moves the first layer's v on a task
        adapted = learner.adapt_one(batch.xs[t], batch.ys[t])
        v0 = conv.weight.detach()
        moves.append(float((adapted["conv.weight"] - v0).norm() / v0.norm()))
    return {"acc0": accs[0], "acc_rot": sum(accs[1:]) / 3, "orbit": orbit_score(w).score, "move": sum(moves) / len(moves),
            "iso": isotropic_share(w), "u_orbit": sum(u) / len(u) if u else None,
            "u_iso": sum(isotropic_share(b) for b in gen) / len(gen) if gen is not None else None}


def run(cfg: dict, seed: int, eval_tasks: int) -> dict:
    torch.set_num_threads(1)
    cfg = {**BASE, **cfg}
    data = load_bundled()
    learner = MetaLearner(build(cfg, seed), MetaConfig(inner_lr=cfg["inner_lr"], inner_steps=cfg["inner_steps"],
                                                       outer_lr=1e-3))
    angles = ANGLES if cfg["rotation"] == "query" else [0.0]
    sampler = TaskSampler(data.train, angles, cfg["ways"], cfg["shots"], cfg["queries"], "query",
                          torch.Generator().manual_seed(2 * seed + 1))
    t0 = time.perf_counter()
    start = read(learner, cfg, data, eval_tasks)
    for _ in range(cfg["steps"]):
        learner.step(Episode.of(sampler.sample(cfg["tasks"])))
    end = read(learner, cfg, data, eval_tasks)
    return {"cfg": cfg, "seed": seed, "start": start, "end": end, "seconds": time.perf_counter() - t0}


def contrast(steps: int, seed: int) -> dict:
    """The same readings on rot4, the paper's 2-D problem made by a C4 group
    conv, with a dense U (its default latent): where sharing is learned."""
    torch.set_num_threads(1)
    trainer = SyntheticTrainer(SyntheticConfig(problem="rot4", model="msr-conv-dense", seed=seed, threads=1,
                                               test_tasks=20))
    conv = trainer.model.conv

    def reading() -> dict:
        gen = generated_filters(conv, draws=4)
        ep = trainer.test_episode(0, 20)
        v0 = conv.weight.detach()
        moves = [float((trainer.learner.adapt_one(ep.xs[t], ep.ys[t])["conv.weight"] - v0).norm() / v0.norm())
                 for t in range(20)]
        with torch.no_grad():
            w = conv.effective_weight().detach()
        return {"u_orbit": sum(orbit_score(b).score for b in gen) / len(gen), "orbit": orbit_score(w).score,
                "iso": isotropic_share(w), "move": sum(moves) / len(moves)}

    t0 = time.perf_counter()
    start = reading()
    for _ in range(steps):
        trainer.step()
    return {"start": start, "end": reading(), "steps": steps, "seconds": time.perf_counter() - t0}


def _f(x, spec=".2f") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def markdown(rows: list[dict]) -> str:
    lines = ["| readout | first layer / head | channels (conv latent) | inner rate, steps | outer steps | queries "
             "| accuracy 0° / rotated | applied orbit score (isotropic share) | U orbit score, start → end "
             "| inner-loop move of v |",
             "|---|---|---|---|---:|---|---|---|---|---:|"]
    for r in rows:
        c, s, e = r["cfg"], r["start"], r["end"]
        latent = f" ({c['conv_latent']})" if c["conv"] == "dense" else ""
        queries = "rotated 0/90/180/270°" if c["rotation"] == "query" else "upright (control)"
        u = f"{_f(s['u_orbit'])} → {_f(e['u_orbit'])}" if e["u_orbit"] is not None else "no U"
        lines.append(f"| {c['readout']} | {c['conv']} / {c['head']} | {c['channels']}{latent} | "
                     f"{c['inner_lr']:g}, {c['inner_steps']} | {c['steps']} | {queries} | "
                     f"{_f(e['acc0'], '.3f')} / {_f(e['acc_rot'], '.3f')} | {_f(e['orbit'])} ({_f(e['iso'])}) | {u} "
                     f"| {_f(e['move'], '.3f')} |")
    return "\n".join(lines)


def contrast_line(c: dict) -> str:
    s, e = c["start"], c["end"]
    return (f"For contrast, rot4 (the paper's 2-D problem, every task a C4 group conv with filters of its own), "
            f"dense U, {c['steps']} steps of the authors' protocol: U's orbit score {s['u_orbit']:.2f} → "
            f"{e['u_orbit']:.2f}, and the inner loop moves v by {e['move']:.2f} of its size on a task.")


def conclusion(rows: list[dict]) -> str:
    """What the table says, in words drawn from its numbers."""
    with_u = [r for r in rows if r["end"]["u_orbit"] is not None]
    if not with_u:
        return ""
    ends = [r["end"]["u_orbit"] for r in with_u]
    best = max(with_u, key=lambda r: r["end"]["u_orbit"])
    applied = max(rows, key=lambda r: r["end"]["orbit"] if r["end"]["orbit"] == r["end"]["orbit"] else -1)
    plain = [r["end"]["orbit"] for r in rows if r["cfg"]["conv"] == "plain"]
    moves = [r["end"]["move"] for r in with_u]
    learned = best["end"]["u_orbit"] >= 0.6
    text = (f"**U {'learned' if learned else 'did not learn'} rotation sharing here.** The orbit score of the layers "
            f"U generates ended between {min(ends):.2f} and {max(ends):.2f} in the {len(with_u)} configurations with "
            f"a U (start: {min(r['start']['u_orbit'] for r in with_u):.2f}–"
            f"{max(r['start']['u_orbit'] for r in with_u):.2f}; 1 = rotated copies).")
    if not learned:
        start = applied["start"]["orbit"]
        moved = applied["end"]["orbit"] >= max(0.3, start + 0.2)
        text += (" The filters the models apply (their meta-learned start U v₀) "
                 + (f"did move towards rotated copies (orbit score {start:.2f} → {applied['end']['orbit']:.2f}, "
                    f"{applied['cfg']['readout']} readout)" if moved else
                    f"reached an orbit score of {applied['end']['orbit']:.2f} at most")
                 + (f", plain MAML's {max(plain):.2f} at most" if plain else "")
                 + f". On a digit task the inner loop moves v by {min(moves):.2f}–{max(moves):.2f} of its size "
                   "(last column): U's gradient runs along the v it is applied to, so a U whose v barely moves is "
                   "shaped along v₀ and leaves the rest of what it can reach as it was.")
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (one torch thread each)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-tasks", type=int, default=100)
    p.add_argument("--steps", type=int, default=None, help="outer steps of every configuration (a quick check)")
    p.add_argument("--only", type=int, nargs="*", default=None, help="indices of CONFIGS to run")
    p.add_argument("--contrast-steps", type=int, default=1000,
                   help="steps of the rot4 contrast run (0: none)")
    p.add_argument("--update-docs", action="store_true", help="write the table into docs/results.md")
    args = p.parse_args(argv)
    configs = [c for i, c in enumerate(CONFIGS) if args.only is None or i in args.only]
    if args.steps is not None:
        configs = [{**c, "steps": args.steps} for c in configs]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        versus = pool.submit(contrast, args.contrast_steps, args.seed) if args.contrast_steps > 0 else None
        rows = list(pool.map(run, configs, [args.seed] * len(configs), [args.eval_tasks] * len(configs)))
        versus = versus.result() if versus is not None else None
    total = time.perf_counter() - t0
    table = markdown(rows)
    when = dt.datetime.now().strftime("%Y-%m-%d")
    text = (f"{conclusion(rows)}" + (f" {contrast_line(versus)}" if versus else "") + f"\n\n{table}\n\nEvery run: 5-way 5-shot, 5 queries per class, 8 tasks per step, per-layer learned inner "
            f"rates, Adam 1e-3, seed {args.seed}; read on {args.eval_tasks} held-out tasks with upright supports. "
            f"Random filters score an orbit score of about 0 and an isotropic share of about 0.3.\n\n"
            f"Machine: {machine()}; {args.jobs} run(s) at a time, 1 thread each; {total / 60:.1f} min ({when}).")
    print(text)
    command = f"{COMMAND} {shlex.join(list(argv if argv is not None else sys.argv[1:]))}".strip()
    if args.update_docs:
        update_doc("results.md", "symmetry-search", text, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
