"""Photos in, renditions out, and public storage kept in step with the publication rule.

Storage I/O never happens inside a database transaction: files are written first and
removed again if the rows cannot be saved; files are deleted only after the rows that
pointed at them are gone (``transaction.on_commit``).
"""

import contextlib
import logging
import math
import secrets
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import IntegrityError, transaction
from django.tasks import task
from django.utils import timezone

from gallery import alignment, images
from gallery.cache import new_generation
from gallery.listing import sync_listing
from gallery.models import Case, Photo, public_name, record_facts

log = logging.getLogger(__name__)


def private_storage():
    return storages["default"]


def public_storage():
    return storages["public"]


def delete_quietly(storage, names: list[str]) -> None:
    """Delete files; a failure is logged and left to the sweep, never raised at the user."""
    for name in names:
        try:
            storage.delete(name)
        except Exception:
            log.exception("Could not delete %s; the sweep will retry", name)


def delete_after_commit(storage, names: list[str]) -> None:
    if names:
        transaction.on_commit(lambda: delete_quietly(storage, list(names)))


def delete_unreferenced(storage, names: list[str], referenced) -> None:
    """Clean up the files of a failed database write whose outcome is unknown.

    Found by tests/test_faults.py: the error can arrive after the change was made (the
    connection lost after COMMIT, or after an UPDATE in autocommit), and deleting the
    files then left a row pointing at missing files. ``referenced()`` returns the names
    rows point at now; only the others are deleted. If the rows cannot be read, the files
    are left to the sweep, which deletes only what no row points at.
    """
    try:
        keep = referenced()
    except Exception:
        log.exception("Could not check which files rows point at; the sweep will decide")
        return
    delete_quietly(storage, [n for n in names if n not in keep])


def add_photo(case: Case, role: str, view: str, fp: BinaryIO, name: str) -> Photo:
    """Validate an uploaded photo, store the original untouched, and record it.

    Raises images.PhotoRejected with a clear sentence for a file we cannot use, and
    ValueError when the case already has a photo for this role and view.
    """
    facts = images.validate_photo(
        fp, name, max_bytes=settings.PHOTO_MAX_BYTES, max_pixels=settings.PHOTO_MAX_PIXELS
    )
    existing = Photo.objects.filter(case=case, role=role, view=view).first()
    if existing is not None and existing.sha256 == facts.sha256:
        return existing  # the same file sent twice: one photo
    if existing is not None:
        raise images.PhotoRejected(
            f"This case already has a {role} photo of the {view.replace('_', ' ')} view. "
            "Remove it first to replace it."
        )
    fp.seek(0)
    stored = private_storage().save(
        f"originals/{secrets.token_urlsafe(24)}.{facts.format}", ContentFile(fp.read())
    )
    try:
        with transaction.atomic():
            photo = Photo.objects.create(
                case=case,
                role=role,
                view=view,
                original=stored,
                original_format=facts.format,
                sha256=facts.sha256,
                width=facts.width,
                height=facts.height,
                taken_at=facts.taken_at,
            )
            if role == Photo.Role.AFTER:
                record_facts(case)  # the weeks after count from the photo's capture date
    except IntegrityError:
        delete_quietly(private_storage(), [stored])
        existing = Photo.objects.filter(case=case, role=role, view=view).first()
        if existing is not None and existing.sha256 == facts.sha256:
            return existing
        raise images.PhotoRejected(
            "Another photo for this role and view arrived at the same time. Reload and check."
        ) from None
    except BaseException:
        delete_unreferenced(
            private_storage(),
            [stored],
            lambda: {stored} if Photo.objects.filter(original=stored).exists() else (),
        )
        raise
    return photo


def remove_photo(photo: Photo) -> None:
    """Delete a photo row and, after commit, its original and renditions everywhere."""
    files = [photo.original.name] + [r["name"] for r in photo.renditions]
    public = (
        [public_name(photo.public_key, r) for r in photo.renditions] if photo.public_key else []
    )
    with transaction.atomic():
        photo.delete()
        if photo.role == Photo.Role.AFTER:
            record_facts(photo.case)
        delete_after_commit(private_storage(), files)
        delete_after_commit(public_storage(), public)


def pair_crops(before: Photo, after: Photo) -> tuple[images.Crop, images.Crop]:
    """The stored pair crop, or the default centred on the pair's common aspect."""
    aspect = images.common_aspect([(before.width, before.height), (after.width, after.height)])
    crops = []
    for photo in (before, after):
        if photo.crop_left is not None:
            crops.append(
                images.Crop(photo.crop_left, photo.crop_top, photo.crop_width, photo.crop_height)
            )
        else:
            crops.append(images.centred_crop(photo.width, photo.height, aspect))
    return crops[0], crops[1]


# How far staff may turn a photo in the crop editor, either way (degrees); a larger turn
# the alignment found (up to ``alignment.MAX_ROTATION``) may be kept or reduced.
ROTATION_LIMIT = 15.0


def rotation_limit(photo: Photo) -> float:
    """The largest turn, either way, ``set_pair_crop`` accepts for this photo."""
    return max(ROTATION_LIMIT, math.ceil(abs(photo.rotation or 0.0) * 10) / 10)


def set_pair_crop(
    photo: Photo, zoom: float, centre_x: float, centre_y: float, rotation: float | None = None
) -> None:
    """Crop one photo at this zoom and centre (fractions of the photo), turned by
    ``rotation`` (degrees, as ``Photo.rotation``; None keeps the photo's turn), keeping the
    shape of its pair, and render the pair again, once; the original is never altered.

    The shape is the partner's own crop when it has one, else the pair's common aspect;
    a partner still on its default crop gets that default fixed to the same shape, so the
    two crops stay equal in shape whichever is adjusted later. A turned crop stays inside
    the photo (``images.crop_at``), as an aligned one does. A turn beyond
    ``rotation_limit`` raises ValueError before anything is stored."""
    if rotation is None:
        rotation = photo.rotation or 0.0
    if not math.isfinite(rotation) or abs(rotation) > rotation_limit(photo):
        raise ValueError(f"A turn of {rotation}° is beyond ±{rotation_limit(photo)}°.")
    rotation = round(rotation, 3)
    partner = (
        Photo.objects.filter(case_id=photo.case_id, view=photo.view).exclude(pk=photo.pk).first()
    )
    sizes = [(photo.width, photo.height)] + ([(partner.width, partner.height)] if partner else [])
    aspect = (partner and partner.crop_aspect()) or images.common_aspect(sizes)
    crop = images.crop_at(photo.width, photo.height, aspect, zoom, centre_x, centre_y, rotation)
    with transaction.atomic():
        Photo.objects.filter(pk=photo.pk).update(**_crop_fields(crop), rotation=rotation or None)
        if partner and partner.crop_left is None:
            own = images.centred_crop(partner.width, partner.height, aspect)
            Photo.objects.filter(pk=partner.pk).update(**_crop_fields(own))
    build_case_renditions.enqueue(photo.case_id, photo.view)


def align_pair(before: Photo, after: Photo) -> None:
    """Line the after photo up with the before photo, when staff have not cropped the pair.

    The after photo's crop becomes the before crop carried through the similarity found by
    feature matching (``gallery.alignment``), turned by its rotation; the before photo
    keeps its crop (a staff crop, say a de-identifying one, is only ever shrunk). A pair
    that cannot be aligned keeps the default crop: the comparability check reports it.
    Reads the originals, so it runs outside any transaction; the crops are stored only if
    no staff crop arrived meanwhile.
    """
    if after.crop_left is not None:
        return
    try:
        greys = []
        for photo in (before, after):
            with private_storage().open(photo.original.name, "rb") as fp:
                greys.append(images.upright_grey(fp, alignment.LONGEST)[0])
        sim = alignment.estimate(
            greys[0], greys[1], (before.width, before.height), (after.width, after.height)
        )
    except Exception:
        # Alignment is an improvement, never a reason to leave a pair unrendered.
        log.exception("Could not align photos %s and %s", before.pk, after.pk)
        return
    if sim is None:
        log.info("Could not align photos %s and %s: too little in common", before.pk, after.pk)
        return
    start, start_after = pair_crops(before, after)
    aligned = alignment.aligned_crops(
        sim, (before.width, before.height), (after.width, after.height), start, start_after
    )
    if aligned is None:
        return
    fields = {
        before: {**_crop_fields(aligned.before), "rotation": before.rotation},
        after: {**_crop_fields(aligned.after), "rotation": aligned.rotation},
    }
    with transaction.atomic():
        updated = Photo.objects.filter(pk=after.pk, crop_left__isnull=True).update(**fields[after])
        if updated:
            updated = Photo.objects.filter(
                pk=before.pk, crop_left=before.crop_left, crop_width=before.crop_width
            ).update(**fields[before])
        if not updated:
            # Staff cropped the pair while it was being aligned: theirs stands.
            transaction.set_rollback(True)
    if updated:
        for photo in (before, after):
            for name, value in fields[photo].items():
                setattr(photo, name, value)
    else:
        for photo in (before, after):
            photo.refresh_from_db(
                fields=["crop_left", "crop_top", "crop_width", "crop_height", "rotation"]
            )


def _crop_fields(crop: images.Crop) -> dict[str, float]:
    return {
        "crop_left": crop.left,
        "crop_top": crop.top,
        "crop_width": crop.width,
        "crop_height": crop.height,
    }


def _render_group(
    photos: list[Photo], crops: list[images.Crop], formats: tuple[str, ...]
) -> list[list[dict]]:
    """Render each photo's crop at the group's shared sizes into private storage."""
    boxes = []
    for photo, crop in zip(photos, crops, strict=True):
        x0, y0, x1, y1 = crop.pixels(photo.width, photo.height)
        boxes.append((x1 - x0, y1 - y0))
    # The shared aspect is taken from the crops themselves, so sizes match exactly.
    aspect = boxes[0][0] / boxes[0][1]
    sizes = images.pair_output_sizes(boxes, aspect)
    results = []
    written: list[str] = []
    try:
        for photo, crop in zip(photos, crops, strict=True):
            with private_storage().open(photo.original.name, "rb") as fp:
                outputs = images.render_crop(
                    fp,
                    crop,
                    sizes,
                    formats=formats,
                    watermark=settings.GALLERY_WATERMARK_TEXT,
                    rotation=photo.rotation or 0.0,
                )
            token = secrets.token_urlsafe(16)
            entries = []
            for fmt, width, height, data in outputs:
                ext = {"jpeg": "jpg"}.get(fmt, fmt)
                name = private_storage().save(
                    f"renditions/{token}/{width}.{ext}", ContentFile(data)
                )
                written.append(name)
                entries.append(
                    {
                        "format": fmt,
                        "width": width,
                        "height": height,
                        "name": name,
                        "bytes": len(data),
                    }
                )
            results.append(entries)
    except BaseException:
        delete_quietly(private_storage(), written)
        raise
    return results


def _rendition_names(photo_ids: list[int]) -> set[str]:
    rows = Photo.objects.filter(pk__in=photo_ids).values_list("renditions", flat=True)
    return {r["name"] for renditions in rows for r in renditions}


def has_public_set(photo: Photo) -> bool:
    """Whether a photo's renditions include every public format, not only the JPEGs."""
    return set(images.RENDITION_FORMATS) <= {r["format"] for r in photo.renditions}


def build_renditions(case: Case, view: str | None = None, public: bool = False) -> None:
    """(Re)build the renditions of a case's photos, pair by pair (only ``view``'s when
    given: an upload or a crop changes one pair, and the others need no new work).

    New files are written first; the rows switch to them in one transaction; the old
    files are deleted after commit. Then public storage is brought in step.

    Staff previews first, the public set later: until a case is published (or ``public``
    says it is about to be), its photos get the JPEG renditions only, which the staff
    pages, the previews and the checks read. The AVIF and WebP renditions, which cost most
    of the rendering time, are made for a complete pair of a published case: by
    ``build_public_set`` when it is published, and here after any change to it later.
    So a photographer's upload or crop waits for the JPEGs alone, and a case that is
    never published never costs its public set.
    """
    public = public or case.status == Case.Status.PUBLISHED
    photos = list(case.photos.all() if view is None else case.photos.filter(view=view))
    by_view: dict[str, dict[str, Photo]] = {}
    for photo in photos:
        by_view.setdefault(photo.view, {})[photo.role] = photo
    plans = []
    for roles in by_view.values():
        if "before" in roles and "after" in roles:
            group = [roles["before"], roles["after"]]
            align_pair(*group)
            crops = list(pair_crops(*group))
            formats = images.RENDITION_FORMATS if public else ("jpeg",)
        else:
            group = list(roles.values())
            crops = [images.centred_crop(p.width, p.height, p.width / p.height) for p in group]
            formats = ("jpeg",)
        plans.append((group, crops, formats))
    for group, crops, formats in plans:
        rendered = _render_group(group, crops, formats)
        new_files = [e["name"] for entries in rendered for e in entries]
        try:
            with transaction.atomic():
                old_private: list[str] = []
                old_public: list[str] = []
                for photo, entries in zip(group, rendered, strict=True):
                    locked = Photo.objects.select_for_update().filter(pk=photo.pk).first()
                    if locked is None:
                        raise Photo.DoesNotExist
                    old_private += [r["name"] for r in locked.renditions]
                    if locked.public_key:
                        old_public += [public_name(locked.public_key, r) for r in locked.renditions]
                    Photo.objects.filter(pk=photo.pk).update(
                        renditions=entries, rendered_at=timezone.now(), public_key=""
                    )
                delete_after_commit(private_storage(), old_private)
                if old_public:
                    # Found by tests/test_faults.py: cached public pages link the old
                    # copies. Renew the page cache before deleting them; the final sync
                    # below is not enough, as a later pair's failure never reaches it.
                    transaction.on_commit(new_generation)
                delete_after_commit(public_storage(), old_public)
        except BaseException:
            ids = [p.pk for p in group]
            delete_unreferenced(private_storage(), new_files, lambda ids=ids: _rendition_names(ids))
            # Found by tests/test_faults.py: when the error came after the commit (its answer
            # lost), the on-commit work above never ran. Renew the page cache anyway, so no
            # cached page keeps linking old public copies that the sweep will remove.
            with contextlib.suppress(Exception):
                new_generation()
            raise
    sync_public_files(case.pk)


def build_public_set(case: Case) -> None:
    """Render the public formats of every complete pair that has only its JPEGs, before
    the case is published (``workflow.publish``), so that it never goes public with a
    pair it could not show. Runs in the caller's process on any tasks backend: the
    reviewer's publish waits for it, and no published case waits for a worker."""
    pairs = Case.objects.get(pk=case.pk).complete_pairs()
    views = sorted({b.view for b, a in pairs if not (has_public_set(b) and has_public_set(a))})
    for view in views:
        build_renditions(case, view, public=True)


@task
def build_case_renditions(case_id: int, view: str | None = None) -> None:
    case = Case.objects.filter(pk=case_id).first()
    if case is not None:
        build_renditions(case, view)


def sync_public_files(case_id: int) -> bool:
    """Make public storage match the rule for one case. Returns whether it is public."""
    case = (
        Case.objects.select_related("consent", "treatment", "location")
        .prefetch_related("photos")
        .filter(pk=case_id)
        .first()
    )
    if case is None:
        new_generation()
        return False
    # Whatever happens below, cached public pages may now be wrong: start a new generation
    # (also on the way out, so a page rendered while files moved is not kept).
    new_generation()
    try:
        return _sync_public_files(case)
    except Exception:
        # Found by tests/test_faults.py: this runs after the user's change committed (on
        # commit of publish, unpublish, a consent change), so a failed copy or update here
        # reached the user as a 500 for a change that was made, and stopped the other
        # cases of a withdrawal. No row points at a missing copy (see _publish_photo and
        # _unpublish_photo); sync_publication, run every few minutes, tries again.
        log.exception("Could not bring public storage in step for case %s", case_id)
        return False
    finally:
        # The listing follows the rule whatever happened to the files (a case taken
        # down stays unlisted even if a copy could not be deleted).
        try:
            sync_listing([case_id])
        except Exception:
            log.exception("Could not update the listing for case %s", case_id)
        new_generation()


def _sync_public_files(case: Case) -> bool:
    case_id = case.pk
    if case.is_public:
        pairs = case.complete_pairs()
        if not all(has_public_set(photo) for pair in pairs for photo in pair):
            # Only JPEGs (a crop landed while the case was being published): the public set
            # first; its build ends with this same sync (in a worker, or here and now).
            build_case_renditions.enqueue(case_id)
            return Case.objects.public().filter(pk=case_id).exists()
        pair_ids = {photo.pk for pair in pairs for photo in pair}
        for photo in case.photos.all():
            if photo.pk in pair_ids and not photo.public_key:
                _publish_photo(photo)
            elif photo.pk not in pair_ids and photo.public_key:
                _unpublish_photo(photo)
        # The rule may have changed while files were copied (a withdrawal): check again.
        if Case.objects.public().filter(pk=case_id).exists():
            return True
    for photo in Photo.objects.filter(case_id=case_id).exclude(public_key=""):
        _unpublish_photo(photo)
    return False


def _publish_photo(photo: Photo) -> None:
    key = secrets.token_urlsafe(16)
    written = []
    try:
        for r in photo.renditions:
            with private_storage().open(r["name"], "rb") as fp:
                written.append(public_storage().save(public_name(key, r), ContentFile(fp.read())))
        claimed = Photo.objects.filter(pk=photo.pk, public_key="", rendered_at=photo.rendered_at)
        if claimed.update(public_key=key) != 1:
            delete_quietly(public_storage(), written)
            return
    except BaseException:
        delete_unreferenced(
            public_storage(),
            written,
            lambda: (
                set(written) if Photo.objects.filter(pk=photo.pk, public_key=key).exists() else ()
            ),
        )
        raise
    photo.public_key = key


def _unpublish_photo(photo: Photo) -> None:
    # The row stops pointing at the public copies first, so no page links them; then the
    # copies go. A failed delete leaves a file with no row, which the sweep removes.
    names = [public_name(photo.public_key, r) for r in photo.renditions]
    Photo.objects.filter(pk=photo.pk, public_key=photo.public_key).update(public_key="")
    photo.public_key = ""
    delete_quietly(public_storage(), names)


def sync_cases(case_ids) -> None:
    """Bring these cases' public files in step with the rule now (withdrawal, unpublish,
    archive remove them; a new consent or publication puts them up)."""
    for case_id in case_ids:
        sync_public_files(case_id)


class SyncReport:
    def __init__(self):
        self.expired: list = []
        self.taken_down: list[int] = []
        self.put_up: list[int] = []
        self.expiring: list = []
        self.relisted = 0


def sync_publication(expiring_days: int = 30) -> SyncReport:
    """Bring public storage in step with the rule for every case, record lapsed consents."""
    from consent.models import Consent, ConsentEvent
    from consent.signals import consent_changed

    report = SyncReport()

    def cases_with_public_files() -> set[int]:
        return set(Photo.objects.exclude(public_key="").values_list("case_id", flat=True))

    before = cases_with_public_files()
    for consent in Consent.objects.lapsed_unrecorded().select_related("patient"):
        ConsentEvent.record(
            consent,
            ConsentEvent.Kind.EXPIRED,
            label="sync_publication",
            details={"expires_at": consent.expires_at.isoformat()},
        )
        consent_changed.send(sender=Consent, consent=consent, reason="expired")
        report.expired.append(consent)
    public_ids = set(Case.objects.public().values_list("pk", flat=True))
    for case_id in sorted(cases_with_public_files() - public_ids):
        sync_public_files(case_id)
    report.taken_down = sorted(before - cases_with_public_files())
    # Public cases whose files are missing (e.g. a crash between commit and copy).
    missing = set(
        Photo.objects.complete_pairs()
        .filter(case_id__in=public_ids)
        .filter(public_key="")
        .values_list("case_id", flat=True)
    )
    for case_id in sorted(missing):
        if sync_public_files(case_id):
            report.put_up.append(case_id)
    # Cases whose listing had drifted from the rule (changed outside the app's paths).
    report.relisted = sync_listing()
    if report.relisted:
        new_generation()
    report.expiring = list(
        Consent.objects.expiring_within(expiring_days)
        .select_related("patient")
        .order_by("expires_at")
    )
    return report


def walk_storage(storage, path: str = ""):
    """Every file name under path (recursive), for FileSystemStorage and S3 alike."""
    try:
        dirs, files = storage.listdir(path)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{path}/{name}" if path else name
    for d in dirs:
        yield from walk_storage(storage, f"{path}/{d}" if path else d)


def sweep_storage(grace_minutes: int = 60, dry_run: bool = False) -> list[tuple[str, str]]:
    """Delete files no row points at, older than the grace period."""
    from consent.models import Consent

    cutoff = timezone.now() - timedelta(minutes=grace_minutes)
    private_known: set[str] = set()
    public_known: set[str] = set()
    for original, renditions, key in Photo.objects.values_list(
        "original", "renditions", "public_key"
    ):
        private_known.add(original)
        private_known.update(r["name"] for r in renditions)
        if key:
            public_known.update(public_name(key, r) for r in renditions)
    private_known.update(
        n for n in Consent.objects.exclude(signature="").values_list("signature", flat=True)
    )
    removed = []
    for storage_name, storage, known, prefixes in (
        ("default", private_storage(), private_known, ("originals", "renditions", "signatures")),
        ("public", public_storage(), public_known, ("r",)),
    ):
        for prefix in prefixes:
            for name in walk_storage(storage, prefix):
                if name in known:
                    continue
                try:
                    if storage.get_modified_time(name) > cutoff:
                        continue
                except (OSError, NotImplementedError):
                    continue
                removed.append((storage_name, name))
                if not dry_run:
                    delete_quietly(storage, [name])
    return removed
