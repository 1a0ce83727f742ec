import contextlib
import logging

from django.db import transaction

from gallery.models import Case
from gallery.publication import sync_cases

log = logging.getLogger(__name__)


def consent_changing(sender, consent, superseded=(), **kwargs) -> None:
    """Inside the transaction that changes a consent's standing: the cases under the
    consents it replaces move under it, and the listing follows the rule for every case
    under it, so the list and its counts are right from the commit on, whether or not the
    after-commit work (public files) runs."""
    from gallery.cache import new_generation
    from gallery.listing import sync_listing

    if superseded:
        Case.objects.filter(consent_id__in=superseded, patient_id=consent.patient_id).update(
            consent=consent
        )
    sync_listing(Case.objects.filter(consent=consent).values_list("pk", flat=True))
    # Cached pages may show these cases: renew the generation now and again on commit, so
    # that no cached page outlives the change by more than this transaction's last moments.
    new_generation()
    transaction.on_commit(new_generation)


def consent_changed(sender, consent, reason: str, superseded=(), **kwargs) -> None:
    """After a consent changed standing: bring every case under it in step with the rule
    (public files, listing, cached pages)."""
    sync_cases(list(Case.objects.filter(consent=consent).values_list("pk", flat=True)))


def patient_page_path(token: str) -> str:
    from django.urls import reverse

    return reverse("patient-consent", args=[token])


def held_cases(*, patient=None, consent=None) -> list:
    """The cases under a consent (or of a patient), for the consent app's pages and its
    evidence bundle (``consent/hooks.py``)."""
    from django.urls import reverse

    from consent.hooks import HeldRecord

    cases = Case.objects.select_related("treatment").prefetch_related("photos").order_by("pk")
    cases = cases.filter(consent=consent) if consent is not None else cases.filter(patient=patient)
    public = set(
        Case.objects.public().filter(pk__in=[c.pk for c in cases]).values_list("pk", flat=True)
    )
    return [
        HeldRecord(
            label=f"{case.public_id}: {case.treatment.name}",
            status=case.get_status_display(),
            public=case.pk in public,
            url=reverse("staff:case", args=[case.pk]),
            files=tuple(
                {
                    "case": case.public_id,
                    "treatment": case.treatment.slug,
                    "status": case.status,
                    "role": photo.role,
                    "view": photo.view,
                    "sha256": photo.sha256,
                    "captured_at": photo.taken_at.isoformat() if photo.taken_at else "",
                    "width": photo.width,
                    "height": photo.height,
                }
                for photo in case.photos.all()
            ),
        )
        for case in cases
    ]


def reference_data_changed(sender, **kwargs) -> None:
    """A treatment or concern was edited: drop the cached names and the cached pages.
    For a practitioner's locations (m2m_changed), once the change is made, and only if
    it changed something: adding a location already there sends the signals too."""
    from django.core.cache import cache

    from gallery.cache import new_generation
    from gallery.models import REFERENCE_CACHE_KEY

    action = kwargs.get("action")
    if action is not None and (
        not action.startswith("post_") or (action != "post_clear" and not kwargs.get("pk_set"))
    ):
        return
    cache.delete(REFERENCE_CACHE_KEY)
    new_generation()


def rules_input_changed(sender, instance, **kwargs) -> None:
    """A location (its country) or a treatment (prescription-only) was saved: what its
    rules allow may have changed (``gallery/jurisdictions.py``), so its published cases
    are brought in step with the rule after commit: public files, listing, cached pages."""
    from gallery.models import Location

    field = "location" if isinstance(instance, Location) else "treatment"
    published = Case.objects.filter(**{field: instance}, status=Case.Status.PUBLISHED)
    ids = list(published.values_list("pk", flat=True))
    if ids:
        transaction.on_commit(lambda: sync_cases(ids))


def relist(sender, using="default", **kwargs) -> None:
    """After migrations: bring the listing in step with the rule (``gallery/listing.py``),
    and forget what the shared cache holds about the database. The cache can outlive the
    database (a file cache beside a deleted db.sqlite3, a restore): treatment and concern
    ids cached from another database would make every filter and count wrong."""
    from django.core.cache import cache
    from django.db import DatabaseError

    from gallery.cache import new_generation
    from gallery.listing import sync_listing
    from gallery.models import REFERENCE_CACHE_KEY

    try:
        sync_listing()
    except DatabaseError:
        # Migrated back to before a table the rule reads (a location's country): the
        # listing is rebuilt when the database is migrated forward again.
        log.warning("The listing was not rebuilt: the database is behind the code")
        return
    # No cache table or server during a migration: then nothing is cached either.
    with contextlib.suppress(Exception):
        cache.delete(REFERENCE_CACHE_KEY)
        new_generation()
