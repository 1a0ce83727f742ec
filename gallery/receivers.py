import contextlib

from gallery.models import Case
from gallery.publication import sync_cases


def consent_changed(sender, consent, reason: str, superseded=(), **kwargs) -> None:
    """A consent changed standing: bring every case under it in step with the rule.

    A new consent supersedes the patient's earlier ones: their cases move under it, so
    the patient's latest choices are the ones that count.
    """
    if superseded:
        Case.objects.filter(consent_id__in=superseded, patient_id=consent.patient_id).update(
            consent=consent
        )
    sync_cases(list(Case.objects.filter(consent=consent).values_list("pk", flat=True)))


def reference_data_changed(sender, **kwargs) -> None:
    """A treatment or concern was edited: drop the cached names and the cached pages."""
    from django.core.cache import cache

    from gallery.cache import new_generation
    from gallery.models import REFERENCE_CACHE_KEY

    cache.delete(REFERENCE_CACHE_KEY)
    new_generation()


def relist(sender, using="default", **kwargs) -> None:
    """After migrations: bring the listing in step with the rule (``gallery/listing.py``)."""
    from gallery.cache import new_generation
    from gallery.listing import sync_listing

    if sync_listing():
        # No cache table or server during a migration: then nothing is cached either.
        with contextlib.suppress(Exception):
            new_generation()
