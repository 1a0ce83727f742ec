"""Practitioners from the names cases carried, and the clinic's first location.

The location is made from the settings (CLINIC_NAME, CLINIC_COUNTRY, CLINIC_BOOKING_URL);
each distinct practitioner name and credentials becomes one practitioner working there, so
every caption names the same person with the same credentials as before."""

from django.conf import settings
from django.db import migrations
from django.utils.text import slugify

from gallery import jurisdictions


def unique_slug(model, text: str, fallback: str) -> str:
    base = slugify(text)[:40] or fallback
    slug, n = base, 2
    while model.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def forwards(apps, schema_editor):
    Case = apps.get_model("gallery", "Case")
    Location = apps.get_model("gallery", "Location")
    Practitioner = apps.get_model("gallery", "Practitioner")
    country = settings.CLINIC_COUNTRY
    if country not in jurisdictions.COUNTRIES:
        raise ValueError(
            f"CLINIC_COUNTRY={country!r} has no advertising rules in gallery/jurisdictions.py: "
            f"set it to one of {', '.join(sorted(jurisdictions.COUNTRIES))}."
        )
    location = Location.objects.order_by("pk").first()
    if location is None:
        location = Location.objects.create(
            name=settings.CLINIC_NAME[:100],
            slug=unique_slug(Location, settings.CLINIC_NAME, "clinic"),
            country=country,
            booking_url=settings.CLINIC_BOOKING_URL,
        )
    pairs = (
        Case.objects.filter(practitioner__isnull=True)
        .values_list("practitioner_name", "practitioner_credentials")
        .distinct()
    )
    for name, credentials in sorted(set(pairs)):
        practitioner = Practitioner.objects.create(
            name=name[:200] or "Not recorded",
            slug=unique_slug(Practitioner, name, "practitioner"),
            credentials=credentials,
        )
        practitioner.locations.add(location)
        Case.objects.filter(
            practitioner__isnull=True, practitioner_name=name, practitioner_credentials=credentials
        ).update(practitioner=practitioner)
    Case.objects.filter(location__isnull=True).update(location=location)


def backwards(apps, schema_editor):
    Case = apps.get_model("gallery", "Case")
    for case in Case.objects.select_related("practitioner"):
        case.practitioner_name = case.practitioner.name
        case.practitioner_credentials = case.practitioner.credentials
        case.save(update_fields=["practitioner_name", "practitioner_credentials"])


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0013_location_practitioner"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
