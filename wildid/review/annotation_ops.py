"""Editing the boxes on photos, as undoable operations.

A changed box makes that annotation's features and its encounter's match results stale, so they
are set aside (not lost: undo brings them back, and results computed after the edit come back
on redo). Viewpoint changes make only the match results stale (flanks are compared with flanks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, selectinload

from wildid.catalog.models import (
    VIEWPOINTS,
    Annotation,
    Decision,
    Encounter,
    Individual,
    Photo,
)
from wildid.errors import NotFoundError, ReviewError
from wildid.ingest.grouping import camera_key
from wildid.review.changes import Changes, Recorder
from wildid.review.details import chunks
from wildid.review.undoable import Operation

__all__ = ["add_annotation", "delete_annotation", "separate_annotation", "separate_annotations",
           "set_encounter_species", "update_annotation"]

# Annotation edits are not decisions; the operation still names who made them.
_EDITOR = "annotation editor"


def _photo(s: Session, photo_id: str) -> Photo:
    photo = s.get(Photo, photo_id)
    if photo is None:
        raise NotFoundError(f"no photo with id {photo_id}")
    return photo


def _annotation(s: Session, annotation_id: str) -> Annotation:
    ann = s.get(Annotation, annotation_id)
    if ann is None:
        raise NotFoundError(f"no annotation with id {annotation_id}")
    return ann


MIN_BOX_SIDE = 8.0
"""The smallest box side, in pixels of the original (or the photo's side, if smaller): less
holds nothing to identify, and a box 1 px wide has no features at all. The box editor's
handles stop here too."""


def _clip_box(box: Sequence[float], photo: Photo) -> tuple[float, float, float, float]:
    """The box clipped to the photo; refused when (nearly) nothing of it is on the photo, or
    what is left is under ``MIN_BOX_SIDE``."""
    if len(box) != 4 or not all(isinstance(v, int | float) and math.isfinite(v) for v in box):
        raise ReviewError("a box is four finite numbers: x, y, width, height")
    x, y, w, h = (float(v) for v in box)
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(photo.width), x + w), min(float(photo.height), y + h)
    if x1 - x0 < 1.0 or y1 - y0 < 1.0:
        raise ReviewError("the box is empty or outside the photo")
    if x1 - x0 < min(MIN_BOX_SIDE, photo.width) or y1 - y0 < min(MIN_BOX_SIDE, photo.height):
        raise ReviewError(f"the box is {x1 - x0:.0f}x{y1 - y0:.0f} px on the photo: a box needs "
                          f"at least {MIN_BOX_SIDE:.0f} px on each side")
    return x0, y0, x1 - x0, y1 - y0


def _viewpoint(viewpoint: str) -> str:
    if viewpoint not in VIEWPOINTS:
        raise ReviewError(f"unknown viewpoint {viewpoint!r} (use one of {', '.join(VIEWPOINTS)})")
    return viewpoint


def _species(species: str | None) -> str | None:
    return None if species is None else (species.strip() or None)


def add_annotation(catalog: Any, photo_id: str, box: Sequence[float], viewpoint: str = "unknown",
                   species: str | None = None, encounter_id: str | None = None,
                   reviewer: str = _EDITOR) -> Operation:
    """Draw another box on a photo.

    Without ``encounter_id`` the box is another animal, so it gets its own new encounter (same
    time, place, observer and camera as the photo); with it, the box joins that encounter,
    whose match results then need recomputing.
    """
    viewpoint = _viewpoint(viewpoint)
    species = _species(species)
    with catalog.session() as s:
        photo = _photo(s, photo_id)
        x, y, w, h = _clip_box(box, photo)
        rec = Recorder(s, reviewer)
        created = False
        if encounter_id is not None:
            enc = s.get(Encounter, encounter_id)
            if enc is None:
                raise NotFoundError(f"no encounter with id {encounter_id}")
            rec.set_aside_caches([], [enc.id], features=False)
        else:
            template = s.scalars(select(Encounter).join(Annotation, Annotation.encounter_id == Encounter.id)
                                 .where(Annotation.photo_id == photo.id)
                                 .order_by(Annotation.created_at).limit(1)).first()
            enc = Encounter(
                observer=template.observer if template else None,
                species=species or (template.species if template else None),
                taken_utc=photo.taken_utc, gps_lat=photo.gps_lat, gps_lon=photo.gps_lon,
                camera_key=template.camera_key if template else camera_key(photo),
                import_batch_id=photo.import_batch_id)
            rec.insert(enc)
            created = True
        ann = Annotation(photo_id=photo.id, encounter_id=enc.id, x=x, y=y, w=w, h=h,
                         full_frame=False, viewpoint=viewpoint, species=species or enc.species)
        rec.insert(ann)
        # Nothing is cached for the new box yet; this step makes undo set aside what the engine
        # computes for it in the meantime (and redo bring it back) instead of losing it.
        rec.set_aside_caches([ann.id], [enc.id] if created else [], referencing=True)
        return Operation.from_recorder("Add box", Changes(
            encounters=frozenset({enc.id}), annotations=frozenset({ann.id})), rec)


def update_annotation(catalog: Any, annotation_id: str,
                      box: Sequence[float] | None = None, viewpoint: str | None = None,
                      species: str | None = None, reviewer: str = _EDITOR) -> Operation:
    """Change a box, its viewpoint or its species (None leaves a value as it is).

    A changed box is no longer the full frame; its features and the encounter's match results
    are set aside, and a changed viewpoint or species sets the results aside. Either way the
    results of encounters still to review that showed this box as a candidate go too (they
    are matched again: ranked with the box as it was, their keypoint pairs would be drawn on
    the box as it is). Returns a no-op operation (``is_noop``) when nothing differs.
    """
    with catalog.session() as s:
        ann = _annotation(s, annotation_id)
        photo = _photo(s, ann.photo_id)
        fields: dict[str, Any] = {}
        if box is not None:
            clipped = _clip_box(box, photo)
            if clipped != (ann.x, ann.y, ann.w, ann.h):
                fields.update(x=clipped[0], y=clipped[1], w=clipped[2], h=clipped[3],
                              full_frame=False)
        if viewpoint is not None and _viewpoint(viewpoint) != ann.viewpoint:
            fields["viewpoint"] = viewpoint
        if species is not None and _species(species) != ann.species:
            fields["species"] = _species(species)
        rec = Recorder(s, reviewer)
        encounters = {ann.encounter_id} if ann.encounter_id else set()
        if "x" in fields:
            encounters |= rec.set_aside_caches([ann.id], encounters, referencing=True)
        elif "viewpoint" in fields or "species" in fields:
            # the species picks the profile and who is compared: candidates found under
            # the old one are stale (the engine redoes the local features of another profile)
            encounters |= rec.set_aside_caches([ann.id], encounters, features=False,
                                               referencing=True)
        rec.set(ann, **fields)
        label = "Edit box" if "x" in fields else ("Change viewpoint" if "viewpoint" in fields
                                                  else "Change species")
        changed = frozenset(encounters) if fields else frozenset()
        return Operation.from_recorder(label, Changes(
            encounters=changed, annotations=frozenset({ann.id}) if fields else frozenset()), rec)


def separate_annotation(catalog: Any, annotation_id: str,
                        reviewer: str = _EDITOR) -> Operation:
    """Give a box an encounter of its own: it shows another animal than the rest of its burst.

    Why: an import puts one camera's photos taken within the burst gap into one encounter,
    which is right for one animal and wrong for a herd photographed in quick succession; a
    reviewer confirming such an encounter would name every animal in it as one individual.
    The box keeps its features (it still shows what it showed). Its old encounter's match
    results are set aside, since the box was one of its queries, and so are the candidates of
    other encounters that showed the box, whose individual it no longer belongs to. The new
    encounter is still to review, with the photo's time and place and the old encounter's
    observer, species and camera. Refused for an encounter's only box.
    """
    return separate_annotations(catalog, [annotation_id], reviewer)


def separate_annotations(catalog: Any, annotation_ids: Sequence[str],
                         reviewer: str = _EDITOR) -> Operation:
    """Move boxes of one encounter into one new encounter together: the photos of a burst that
    show the same other animal (the second of two nyalas passing a trap), so that one
    decision names it, instead of one per photo. As :func:`separate_annotation` for each box
    otherwise; the new encounter takes the earliest photo's time and place. Refused when the
    boxes are of different encounters, or are all the boxes of theirs (it is that animal's
    encounter already).
    """
    wanted = list(dict.fromkeys(annotation_ids))
    if not wanted:
        raise ReviewError("no box given")
    with catalog.session() as s:
        boxes = [_annotation(s, a) for a in wanted]
        olds = {ann.encounter_id for ann in boxes}
        if None in olds:
            raise ReviewError("this box belongs to no encounter")
        if len(olds) > 1:
            raise ReviewError("these boxes are of different encounters: separate them one "
                              "encounter at a time")
        old = s.get(Encounter, olds.pop())
        assert old is not None
        others = s.scalar(select(func.count()).where(Annotation.encounter_id == old.id,
                                                      Annotation.id.not_in(wanted)))
        if not others:
            raise ReviewError("this box is the only one of its encounter: it has its own already"
                              if len(wanted) == 1 else
                              "these are all the boxes of their encounter: it is their own "
                              "already")
        photos = sorted((_photo(s, ann.photo_id) for ann in boxes),
                        key=lambda p: (p.taken_utc is None, p.taken_utc or 0, p.original_path))
        first = photos[0]
        rec = Recorder(s, reviewer)
        enc = Encounter(observer=old.observer, species=old.species, taken_utc=first.taken_utc,
                        gps_lat=first.gps_lat, gps_lon=first.gps_lon, camera_key=old.camera_key,
                        import_batch_id=first.import_batch_id)
        rec.insert(enc)
        touched = rec.set_aside_caches(wanted, {old.id}, features=False, referencing=True)
        for ann in boxes:
            rec.set(ann, encounter_id=enc.id)
        # nothing is cached for the new encounter yet: this step makes undo set aside what the
        # engine computes for it in the meantime (and redo bring it back)
        rec.set_aside_caches([], [enc.id], features=False)
        label = ("Separate box into its own encounter" if len(wanted) == 1 else
                 f"Separate {len(wanted)} boxes into an encounter of their own")
        return Operation.from_recorder(label, Changes(
            encounters=frozenset({old.id, enc.id} | touched),
            annotations=frozenset(wanted)), rec)


def delete_annotation(catalog: Any, annotation_id: str, reviewer: str = _EDITOR) -> Operation:
    """Remove a box. The last box of a photo is reset to the full frame instead.

    An encounter left without boxes is deleted too, unless decisions name it (the history must
    keep its rows); the queries then hide it. A box that decisions name is refused.
    """
    with catalog.session() as s:
        ann = _annotation(s, annotation_id)
        photo = _photo(s, ann.photo_id)
        enc_id = ann.encounter_id
        encounters = {enc_id} if enc_id else set()
        rec = Recorder(s, reviewer)
        on_photo = s.scalar(select(func.count()).where(Annotation.photo_id == photo.id))
        if on_photo == 1:
            x, y, w, h = photo.picture_box()  # less a camera trap's data strip, as at import
            full = dict(x=x, y=y, w=w, h=h, full_frame=True)
            if all(getattr(ann, k) == v for k, v in full.items()):
                return Operation.from_recorder("Reset box to full frame", Changes(), rec)
            rec.set_aside_caches([ann.id], encounters)
            rec.set(ann, **full)
            return Operation.from_recorder("Reset box to full frame", Changes(
                encounters=frozenset(encounters), annotations=frozenset({ann.id})), rec)
        if s.scalar(select(exists().where(Decision.candidate_annotation_id == ann.id))):
            raise ReviewError("this box is named by review decisions and cannot be deleted; "
                              "change it instead")
        encounters |= rec.set_aside_caches([ann.id], encounters, referencing=True)
        rec.delete(ann)
        if enc_id is not None:
            left = s.scalar(select(func.count()).where(Annotation.encounter_id == enc_id))
            has_history = s.scalar(select(exists().where(Decision.encounter_id == enc_id)))
            enc = s.get(Encounter, enc_id)
            if not left and not has_history and enc is not None:
                rec.delete(enc)
        return Operation.from_recorder("Delete box", Changes(
            encounters=frozenset(encounters), annotations=frozenset({ann.id})), rec)


def set_encounter_species(catalog: Any, encounter_ids: Sequence[str], species: str | None,
                          reviewer: str = _EDITOR) -> Operation:
    """Give encounters a species (None or blank: none), as one undoable operation.

    The way to mend an import whose species was forgotten or misspelled ("Nyala antelope" is
    matched by the generic profile): importing the card again skips every photo as a
    duplicate. Its boxes that had the encounter's species (or none; an import writes the
    species on both) follow it; a box given another species in the box editor keeps that.
    Each changed encounter's match results are set aside, so it is matched again under the
    new species' profile (the engine redoes the local features), and so are those of
    encounters still to review that showed one of its boxes as a candidate. The operation's
    changes name both. An individual all of whose sightings now have the species takes it too
    (:func:`_individuals_follow`).
    """
    wanted = _species(species)
    with catalog.session() as s:
        rec = Recorder(s, reviewer)
        changed: set[str] = set()
        boxes: set[str] = set()
        olds: dict[str, set[str]] = {}  # individual -> the old species of its changed encounters
        wanted_ids = list(dict.fromkeys(encounter_ids))
        # one read per chunk for the encounters and their boxes (a whole import at once)
        found = {e.id: e for part in chunks(wanted_ids)
                 for e in s.scalars(select(Encounter).where(Encounter.id.in_(part))
                                    .options(selectinload(Encounter.annotations)))}
        for enc_id in wanted_ids:
            enc = found.get(enc_id)
            if enc is None:
                raise NotFoundError(f"no encounter {enc_id}")
            old = (enc.species or "").strip().lower()
            # written at the next query's autoflush: a whole import at once (5,000
            # encounters took 3.4 s flushing row by row)
            moved = rec.set(enc, flush=False, species=wanted) is not None
            for ann in enc.annotations:
                if (ann.species or "").strip().lower() in ("", old) and \
                        rec.set(ann, flush=False, species=wanted) is not None:
                    boxes.add(ann.id)
                    moved = True
            if moved:
                changed.add(enc.id)
                if enc.individual_id is not None:
                    olds.setdefault(enc.individual_id, set()).add(old)
        label = (f"Set species {wanted}" if wanted else "Clear species") + \
            (f" on {len(changed)} encounters" if len(changed) != 1 else "")
        if changed:  # and other encounters' candidates that showed these boxes
            changed |= rec.set_aside_caches(boxes, changed, features=False, referencing=True)
        individuals = _individuals_follow(s, rec, olds, wanted)
        return Operation.from_recorder(label, Changes(encounters=frozenset(changed),
                                                      individuals=frozenset(individuals)), rec)


def _individuals_follow(s: Session, rec: Recorder, olds: dict[str, set[str]],
                        wanted: str | None) -> set[str]:
    """Individuals whose every encounter now has species ``wanted`` take it too, when they had
    the old species of those encounters (or none); returns the ones changed.

    An animal named from a misspelled import ("Nyala antelope") is that species too: left so
    after its sightings were mended, it counted as a second species when an import without a
    species looks for the catalog's one, and the individuals page filtered it apart. An
    individual given a species of its own (or with sightings of another) keeps it.
    """
    followed: set[str] = set()
    key = (wanted or "").strip().lower()
    for ind_id, old in olds.items():
        ind = s.get(Individual, ind_id)
        if ind is None or (ind.species or "").strip().lower() not in old | {""}:
            continue
        sightings = s.scalars(select(Encounter.species).where(Encounter.individual_id == ind_id))
        if all((sp or "").strip().lower() == key for sp in sightings) and \
                rec.set(ind, species=wanted) is not None:
            followed.add(ind_id)
    return followed
