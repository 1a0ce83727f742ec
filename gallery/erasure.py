"""Erasing a patient's cases and photos (the admin's "erase" action, through
``consent.hooks.erase_held_records``, which withdraws the consent first)."""

from django.db import transaction

from gallery.cache import new_generation
from gallery.models import Case
from gallery.publication import remove_photo, sync_public_files


def erase_cases(patient) -> dict[str, int]:
    cases = photos = 0
    for case in Case.objects.filter(patient=patient).order_by("pk"):
        # The consent is withdrawn: the rule refuses the case, so this takes its public
        # copies down (and unlists it) before anything is deleted.
        sync_public_files(case.pk)
        with transaction.atomic():
            for photo in case.photos.all():
                remove_photo(photo)  # files deleted after commit
                photos += 1
            case.delete()
        cases += 1
    new_generation()
    return {"cases": cases, "photos": photos}
