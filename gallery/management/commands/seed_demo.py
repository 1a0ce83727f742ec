"""Idempotent demo data: synthetic cases, clearly labelled, never real people."""

import io
import random
import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from consent.models import ConsentForm, Patient, record_consent
from gallery.demo_images import skin_pair
from gallery.models import (
    Case,
    Concern,
    Location,
    Photo,
    Practitioner,
    SessionRecord,
    Treatment,
    ZoneRecord,
    derive_facts,
    replace_sessions,
)
from gallery.publication import add_photo, build_renditions
from gallery.workflow import publish, submit_for_review

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-gallery-2026"  # published in the README: only ever set with debug on
# Without a login, the demo cases are recorded and approved by this account, which has no
# usable password and cannot log in.
AUTHOR_USERNAME = "demo-author"

CONCERN_AREAS = {
    "acne-scars": "cheeks",
    "fine-lines-wrinkles": "face",
    "texture-pores": "face",
    "pigmentation": "face",
    "stretch-marks": "abdomen",
    "surgical-scars": "abdomen",
}
# Two locations: the clinic's own (the first location, made from the settings when
# locations arrived) and one in Australia, whose rules put a warning on every outcome
# image (gallery/jurisdictions.py). Three practitioners: slug, name, credentials,
# registration, and which of the two locations they work at.
SECOND_LOCATION = {
    "slug": "demo-sydney",
    "name": "Demo Skin Clinic Sydney",
    "address": "1 Demo Street\nSydney NSW 2000",
    "country": "AU",
    "booking_url": "https://example.com/book/sydney",
}

# Needle depth (mm) per zone by treatment and body area, after published protocols; RF
# microneedling adds the device's energy level and passes per zone.
ZONE_PROTOCOLS = {
    ("rf-microneedling", "face"): [
        ("forehead", "1.50", 20, 2),
        ("nose", "2.00", 25, 2),
        ("cheeks", "1.00", 30, 2),
        ("around_mouth", "0.50", 15, 1),
        ("neck", "1.50", 20, 2),
    ],
    ("rf-microneedling", "cheeks"): [("cheeks", "2.00", 35, 2), ("nose", "1.50", 25, 1)],
    ("rf-microneedling", "abdomen"): [("abdomen", "2.50", 40, 3)],
    ("microneedling", "face"): [
        ("forehead", "0.50", None, None),
        ("nose", "0.75", None, None),
        ("cheeks", "1.50", None, None),
        ("around_mouth", "0.50", None, None),
    ],
    ("microneedling", "cheeks"): [("cheeks", "2.00", None, None), ("nose", "1.00", None, None)],
    ("microneedling", "abdomen"): [("abdomen", "2.00", None, None)],
}

PRACTITIONERS = [
    ("amara-okafor", "Dr. Amara Okafor", "Consultant dermatologist", "GMC 7000001", (0,)),
    (
        "lena-brandt",
        "Lena Brandt",
        "Registered nurse, aesthetic practitioner",
        "Ahpra NMW0000000001",
        (1,),
    ),
    ("tomas-rivera", "Dr. Tomás Rivera", "Dermatologist", "MD 0000001", (0, 1)),
]


class Command(BaseCommand):
    help = (
        "Create demo cases (synthetic images, labelled as demo) and, with debug on, the "
        "demo staff login."
    )

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=30, help="number of demo cases")
        parser.add_argument(
            "--staging-login",
            action="store_true",
            help="with debug off: make the demo login anyway, with a new random password "
            "printed once (a staging site)",
        )

    def handle(self, *args, count: int, staging_login: bool, **options):
        staff = self.demo_login(staging_login) or self.demo_author()
        treatments = list(Treatment.objects.order_by("slug"))
        concerns = list(Concern.objects.order_by("slug"))
        form = ConsentForm.current()
        locations, practitioners = self.demo_clinics()
        now = timezone.now()
        created = 0
        for n in range(1, count + 1):
            rng = random.Random(n)
            # Every Fitzpatrick type within each run of six cases; the treatment switches
            # every six, so both treatments cover all six types.
            fitz = (n - 1) % 6 + 1
            treatment = treatments[(n // 6) % len(treatments)]
            concern = rng.choice(concerns)
            reference = f"DEMO-{n:03d}"
            if Case.objects.filter(patient__reference=reference, is_demo=True).exists():
                continue
            with transaction.atomic():
                patient, _ = Patient.objects.get_or_create(
                    reference=reference, defaults={"full_name": f"Demo patient {n}"}
                )
                consent = record_consent(
                    patient,
                    form,
                    staff,
                    None,
                    signed_at=now - timedelta(days=200 + n),
                    allow_website=True,
                    allow_education=rng.random() < 0.5,
                    identifiable=True,
                    patient_is_adult=True,
                    signed_by_name=patient.full_name,
                    expires_at=now + timedelta(days=3 * 365),
                )
                practitioner = practitioners[n % len(practitioners)]
                works_at = PRACTITIONERS[n % len(PRACTITIONERS)][4]
                location = locations[works_at[n % len(works_at)]]
                device = "Demo pen" if treatment.slug == "microneedling" else "Demo RF system"
                area = CONCERN_AREAS[concern.slug]
                records = demo_sessions(rng, treatment, area, device, timezone.localdate())
                weeks = treatment.min_weeks_after + rng.choice([0, 2, 4, 8])
                case = Case.objects.create(
                    treatment=treatment,
                    body_area=area,
                    fitzpatrick=fitz,
                    skin_type=rng.choice([c for c, _ in Case.SkinType.choices]),
                    weeks_after_entered=weeks,
                    **derive_facts(records, None, weeks),
                    patient=patient,
                    consent=consent,
                    location=location,
                    practitioner=practitioner,
                    device=device,
                    aftercare_notes="Gentle cleanser, moisturiser and SPF 50 for two weeks.",
                    side_effects_notes="Redness for two days after each session.",
                    is_demo=True,
                    created_by=staff,
                    created_at=now - timedelta(days=100 - n),
                )
                replace_sessions(case, records)
                extra = concerns[(concerns.index(concern) + 1) % len(concerns)]
                case.concerns.set([concern] if n % 3 else [concern, extra])
            before, after = skin_pair(seed=n, fitzpatrick=fitz, concern=concern.slug)
            for role, image in (("before", before), ("after", after)):
                buf = io.BytesIO()
                image.save(buf, format="JPEG", quality=90)
                buf.seek(0)
                add_photo(case, role, Photo.View.FRONT, buf, f"demo-{role}.jpg")
            build_renditions(case, public=True)  # published below: one rendering
            # Through the workflow, as on the staff pages: submitted, then published.
            submit_for_review(case, staff)
            publish(case, staff, override="Demo case: synthetic images.")
            created += 1
            self.stdout.write(f"  demo case {n}/{count}: {case.public_id}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: {created} new case(s), "
                f"{Case.objects.public().filter(is_demo=True).count()} public demo case(s)."
            )
        )

    def demo_clinics(self) -> tuple[list[Location], list[Practitioner]]:
        """The demo's two locations and three practitioners (made once)."""
        first = Location.objects.order_by("pk").first()
        if first is None:
            first = Location.objects.create(
                slug="demo-skin-clinic",
                name=settings.CLINIC_NAME,
                country=settings.CLINIC_COUNTRY,
                booking_url=settings.CLINIC_BOOKING_URL,
            )
        slug = SECOND_LOCATION["slug"]
        second = Location.objects.filter(slug=slug).first() or Location.objects.create(
            **SECOND_LOCATION
        )
        locations = [first, second]
        practitioners = []
        for slug, name, credentials, registration, works_at in PRACTITIONERS:
            practitioner, _ = Practitioner.objects.get_or_create(
                slug=slug,
                defaults={
                    "name": name,
                    "credentials": credentials,
                    "registration_number": registration,
                },
            )
            practitioner.locations.add(*(locations[i] for i in works_at))
            practitioners.append(practitioner)
        return locations, practitioners

    def demo_login(self, staging: bool) -> User | None:
        """The demo staff login in every role, or None on a site with debug off.

        Its password is published (README, Makefile), so it exists only where debug is on:
        a site with debug off may face the internet. A staging site asks for it with
        --staging-login and gets a random password instead.
        """
        if staging:
            password = secrets.token_urlsafe(16)
            user = self.demo_user()
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(
                self.style.WARNING(
                    f"Staging login: user {DEMO_USERNAME}  password {password}\n"
                    "  (shown this once; run again for a new one)"
                )
            )
            return user
        if settings.DEBUG:
            user = self.demo_user()
            if not user.has_usable_password():
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            return user
        self.stdout.write(
            self.style.WARNING(
                "Debug is off: no demo login made (its password is public). "
                "Use --staging-login for one with a random password."
            )
        )
        known = User.objects.filter(username=DEMO_USERNAME).first()
        if known and known.check_password(DEMO_PASSWORD):
            known.set_unusable_password()
            known.save(update_fields=["password"])
            self.stdout.write(self.style.WARNING("The existing demo login's password is removed."))
        return None

    def demo_user(self) -> User:
        user, made = User.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"is_staff": True, "email": "demo@example.com"}
        )
        if made:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        user.groups.set(
            Group.objects.filter(name__in=["Photographers", "Reviewers", "Consent officers"])
        )
        return user

    def demo_author(self) -> User:
        # Photographer and reviewer, so the demo goes through the workflow like any case;
        # with no usable password it can never log in.
        user, made = User.objects.get_or_create(username=AUTHOR_USERNAME)
        if made or user.has_usable_password():
            user.set_unusable_password()
            user.save(update_fields=["password"])
        user.groups.set(Group.objects.filter(name__in=["Photographers", "Reviewers"]))
        return user


def demo_sessions(rng, treatment, area: str, device: str, today) -> list[SessionRecord]:
    """A course of 1-6 sessions 4 or 6 weeks apart, ending weeks before ``today``, with
    the zone depths of ``ZONE_PROTOCOLS`` (RF energy a little higher each session)."""
    count = rng.choice([1, 2, 3, 3, 4, 5, 6])
    interval = rng.choice([4, 4, 6])
    last = today - timedelta(weeks=treatment.min_weeks_after + 8 + rng.randrange(8))
    zones = ZONE_PROTOCOLS[(treatment.slug, area)]
    return [
        SessionRecord(
            last - timedelta(weeks=interval * (count - 1 - n)),
            device,
            tuple(
                ZoneRecord(
                    zone,
                    Decimal(depth),
                    energy + 2 * n if energy else None,
                    passes,
                )
                for zone, depth, energy, passes in zones
            ),
        )
        for n in range(count)
    ]
