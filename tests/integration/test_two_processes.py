"""Two wildid processes on one catalog: the app identifying in the background while
``wildid import`` runs in a terminal, or two imports at once.

Measured before these were handled (two imports of 60 nyala photos started a second apart):
the second import's identification failed on the features' unique constraint, and the first
reported each of the second's encounters "not matched: no features (extraction failed?)". The
other process is played here by a second handle on the same catalog file (its own connection),
acting at the moment that raced.
"""

from __future__ import annotations

from sqlalchemy import func, select

from tests.integration.animals import PATTERNS, encounter_of, import_photos
from wildid.catalog import open_catalog
from wildid.catalog.models import Feature, MatchCandidate
from wildid.engine import engine_for, extraction, identify_new
from wildid.engine.identification import CatalogEngine


def test_features_another_process_stored_first_are_kept(catalog, photos, known,
                                                        monkeypatch) -> None:
    """Both processes extract the same new annotations; the other stores its chunk first.
    This one keeps the stored features, goes on, and its identification is complete."""
    import_photos(catalog, photos["query"])
    real_store = extraction._store
    raced: list[int] = []

    def other_process_first(cat, rows) -> None:
        if not raced:
            other = open_catalog(catalog.root, create=False)
            try:
                real_store(other, [Feature(annotation_id=r.annotation_id, kind=r.kind,
                                           model_id=r.model_id, model_version=r.model_version,
                                           data=r.data) for r in rows])
            finally:
                other.close()
            raced.append(len(rows))
        real_store(cat, rows)

    monkeypatch.setattr(extraction, "_store", other_process_first)
    report = identify_new(catalog)
    assert raced and raced[0] > 0
    assert not report.skipped and not report.extraction.failed
    queries = [encounter_of(catalog, q) for q in photos["query"]]
    assert set(queries) <= set(report.matched)
    with catalog.session() as s:
        per_key = s.execute(select(func.count()).select_from(Feature).group_by(
            Feature.annotation_id, Feature.kind, Feature.model_id, Feature.model_version)).all()
        assert {n for (n,) in per_key} == {1}  # one row per annotation and source
        for p, enc in zip(PATTERNS, queries, strict=True):
            first = s.scalars(select(MatchCandidate.individual_id)
                              .where(MatchCandidate.encounter_id == enc)
                              .order_by(MatchCandidate.rank)).first()
            assert first == known[p]


def test_encounters_another_process_adds_meanwhile_are_left_to_it(catalog, photos, known,
                                                                  monkeypatch) -> None:
    """Another import lands while this identification extracts: its encounter is neither
    matched here without features nor reported as failed; it stays due for its own process
    (or the next run)."""
    import_photos(catalog, photos["query"][:2])
    mine = {encounter_of(catalog, q) for q in photos["query"][:2]}
    real_extract = CatalogEngine.extract

    def other_import_lands(self, *args, **kwargs):
        other = open_catalog(catalog.root, create=False)
        try:
            import_photos(other, photos["query"][2:3])
        finally:
            other.close()
        return real_extract(self, *args, **kwargs)

    monkeypatch.setattr(CatalogEngine, "extract", other_import_lands)
    report = identify_new(catalog)
    theirs = encounter_of(catalog, photos["query"][2])
    assert set(report.matched) == mine
    assert not report.skipped
    assert engine_for(catalog).pending_encounters() == [theirs]
    monkeypatch.setattr(CatalogEngine, "extract", real_extract)
    assert set(identify_new(catalog).matched) == {theirs}  # the next run matches it
