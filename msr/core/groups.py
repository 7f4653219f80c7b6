"""The rotation groups of 3×3 filters: C4, C8 and D8, each element a permutation of the nine taps.

A 3×3 filter's eight outer taps form a ring around the centre tap. Rotating
the filter by 45° shifts the ring by one position (exact for the steerable
filters the 2-D problems are made of, and for any filter at 90°, a shift by
two, which is ``torch.rot90``); mirroring reverses it. So every element of
these groups acts on a filter as a permutation of its taps.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

KERNEL = 3
# Ring of the 8 neighbours of the centre tap, counter-clockwise from east
# (as drawn, row 0 on top), as flat indices into the 3×3 kernel.
RING = (5, 2, 1, 0, 3, 6, 7, 8)
CENTRE = 4


@dataclass(frozen=True)
class Group:
    """A group of rotations (and mirror images) of a 3×3 filter."""
    name: str
    rotations: int  # rotation steps in a full turn
    step: int  # ring positions per rotation step (2: 90°, 1: 45°)
    flips: bool

    @property
    def order(self) -> int:
        return self.rotations * (2 if self.flips else 1)

    @property
    def degrees(self) -> float:
        return 360.0 / self.rotations

    def element_label(self, e: int) -> str:
        flip, r = divmod(e, self.rotations)
        return ("mirror, " if flip else "") + f"{r * self.degrees:g}°"


C4 = Group("C4", 4, 2, False)
C8 = Group("C8", 8, 1, False)
D8 = Group("D8", 8, 1, True)


def ring_permutation(shift: int = 0, mirror: bool = False) -> torch.Tensor:
    """(9,) source tap of every tap of a 3×3 filter mirrored (φ → −φ, if asked)
    and then rotated counter-clockwise by ``shift`` ring positions (45° each):
    ``copy.flatten() = filter.flatten()[perm]``."""
    perm = list(range(KERNEL * KERNEL))
    for j, tap in enumerate(RING):
        source = (shift - j) if mirror else (j - shift)
        perm[tap] = RING[source % 8]
    return torch.tensor(perm)


def element_permutations(group: Group) -> torch.Tensor:
    """(|G|, 9): the tap permutation of every group element, in channel order."""
    return torch.stack([ring_permutation(r * group.step, bool(s))
                        for s in range(2 if group.flips else 1) for r in range(group.rotations)])
