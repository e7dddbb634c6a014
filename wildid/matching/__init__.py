"""Identification algorithms on arrays (no catalog code; the catalog layer wraps them).

Modules (import them directly; this package imports nothing heavy on its own):

* ``features``     — RootSIFT at a working size, :class:`LocalFeatures` and its compact bytes,
                     mirrored SIFT descriptors, colour histograms.
* ``local_index``  — one kNN index over all database descriptors (inverted file, ``_ivf``)
                     with LNBNN scores and correspondences; incremental add/remove.
* ``geometry``     — spatial verification of correspondences; inliers for the GUI.
* ``global_index`` — cosine shortlist over unit vectors with masks; incremental add/remove.
* ``calibration``  — raw scores -> P(same individual): logistic fusion, isotonic, JSON.
* ``aggregation``  — per-individual aggregation of annotation scores.
* ``identifier``   — the in-memory engine combining the above (:class:`Identifier`).
* ``profiles``     — per-species parameters and shipped calibration (``defaults/``).
* ``metrics``      — top-k, mAP, BAKS/BAUS, AUROC.
"""

from __future__ import annotations
