"""The review gate: sampling, verdicts, certification, applying reviews, and the review tools' backends.

* :mod:`curation.review.sampling` — plan and draw a stratified sample of a snapshot.
* :mod:`curation.review.verdicts` — verdicts from any backend into ``reviews``; majority and agreement.
* :mod:`curation.review.certification` — the certified figure from the stored reviews (every stratum).
* :mod:`curation.review.apply` — a child snapshot with the reviews applied.
* :mod:`curation.review.status` — what a lead reads: one summary.
* :mod:`curation.review.loop` — push to and pull from a review tool (:mod:`curation.review.backends`).
* :mod:`curation.review.stats` — the acceptance statistics (scipy; the ``review`` or ``dedup`` extra).

Nothing is imported here, so ``import curation.review.<module>`` costs only what that module needs.
"""
