"""Reading runs for people: the symmetry lens, a model looked inside at a checkpoint, records as tables, the ablation.

- ``lens``: has a run's first layer learned rotation symmetry, and for which angles?
- ``inspection``: digits, activations, filters, symmetry matrices and confusions of a Rotated MNIST model;
- ``tables``: records, run lists and reports as pandas tables;
- ``ablation``: the first layer × head sweep read as gains and main effects.
"""
