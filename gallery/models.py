import io
import secrets
import string
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Exists, F, OuterRef, Q, StringAgg, Subquery, Value
from django.db.models.lookups import Exact
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop, ngettext, override, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from consent.models import Consent, Patient
from gallery import jurisdictions

PUBLIC_ID_ALPHABET = string.ascii_letters + string.digits


def new_public_id() -> str:
    # 10 random base-62 characters (~59 bits): not sequential, not guessable.
    return "".join(secrets.choice(PUBLIC_ID_ALPHABET) for _ in range(10))


class Treatment(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(unique=True)
    summary = models.CharField(max_length=300, blank=True)
    description = models.TextField(blank=True, help_text="What to expect, in paragraphs.")
    factors = models.JSONField(
        default=list, blank=True, help_text='What changes results: [{"name": …, "text": …}]'
    )
    faq = models.JSONField(default=list, blank=True, help_text='[{"q": …, "a": …}]')
    min_weeks_after = models.PositiveSmallIntegerField(
        default=4,
        help_text="The earliest number of weeks after the last session that an "
        "after photo is meaningful (a location's country may ask for more).",
    )
    prescription_only = models.BooleanField(
        "involves a prescription-only medicine",
        default=False,
        help_text="e.g. botulinum toxin. Some countries forbid advertising it to the public: "
        "cases of it at a location there are never public (gallery/jurisdictions.py).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def local_name(self) -> str:
        """The name in the page's language where the catalogue has it (``SEEDED_NAMES``),
        else as written."""
        return gettext(self.name)

    def get_absolute_url(self) -> str:
        return reverse("gallery:treatment", args=[self.slug])

    @property
    def uses_rf(self) -> bool:
        """Whether sessions of this treatment record radiofrequency energy and passes."""
        return self.slug in RF_TREATMENTS


# The treatments whose sessions carry an RF energy level and a number of passes.
RF_TREATMENTS = frozenset({"rf-microneedling"})


class Location(models.Model):
    """A clinic of the group. Its country selects the advertising rules its cases follow
    (``gallery/jurisdictions.py``)."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(unique=True)
    address = models.TextField(blank=True)
    country = models.CharField(
        max_length=2,
        choices=jurisdictions.country_choices(),
        help_text="Selects the advertising rules of the location's cases.",
    )
    booking_url = models.URLField(
        "booking URL",
        max_length=300,
        help_text="Where the consultation button goes; the case's id is added as ?case=.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("gallery:location", args=[self.slug])

    @property
    def rules(self) -> jurisdictions.Rules:
        return jurisdictions.rules_for(self.country)


def booking_url(base: str, public_id: str | None = None) -> str:
    """A booking link that carries the case it was followed from (``?case=<public_id>``),
    keeping any query the booking page already has. The one place the consultation
    button's target is made."""
    if not public_id:
        return base
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "case"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("case", public_id)])))


def _public_storage():
    return storages["public"]


class Practitioner(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    credentials = models.CharField(
        max_length=200, blank=True, help_text="As the public should read them, e.g. Dermatologist."
    )
    registration_number = models.CharField(
        max_length=50, blank=True, help_text="e.g. GMC 1234567, Ahpra MED0001234567."
    )
    photo = models.ImageField(
        upload_to="practitioners/", storage=_public_storage, blank=True, max_length=200
    )
    locations = models.ManyToManyField(Location, related_name="practitioners")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("gallery:practitioner", args=[self.slug])

    def line(self) -> str:
        return f"{self.name}, {self.credentials}" if self.credentials else self.name

    def save(self, *args, **kwargs):
        # A new photo goes to public storage re-encoded: upright, at most 800 px, and with
        # none of the camera's metadata (place, device, time) that the upload carried.
        if self.photo and not self.photo._committed:
            self.photo = ContentFile(portrait_jpeg(self.photo), name=f"{self.slug}.jpg")
        super().save(*args, **kwargs)


def portrait_jpeg(upload) -> bytes:
    from PIL import Image, ImageOps

    upload.seek(0)
    with Image.open(upload) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        im.thumbnail((800, 800))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=85, optimize=True)
    return buf.getvalue()


class Concern(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


FITZPATRICK_CHOICES = [
    (1, _("Type I")),
    (2, _("Type II")),
    (3, _("Type III")),
    (4, _("Type IV")),
    (5, _("Type V")),
    (6, _("Type VI")),
]

# The names of the treatments and concerns the first migration creates, for the catalogue:
# the filter panel and the home page show them in the page's language (``vocabulary``).
# Names a clinic adds or changes are shown as written.
SEEDED_NAMES = [
    gettext_noop("Microneedling"),
    gettext_noop("Microneedling with radiofrequency"),
    gettext_noop("Acne scars"),
    gettext_noop("Fine lines and wrinkles"),
    gettext_noop("Texture and pores"),
    gettext_noop("Pigmentation"),
    gettext_noop("Stretch marks"),
    gettext_noop("Surgical scars"),
]


def vocabulary(names: dict[str, str]) -> dict[str, str]:
    """slug -> name, each name in the page's language where the catalogue has it."""
    return {slug: gettext(name) for slug, name in names.items()}


# Plain descriptions a patient can recognise themselves in, and a swatch colour.
FITZPATRICK_INFO = {
    1: (_("Very fair, always burns, never tans"), "#f5d7c5"),
    2: (_("Fair, usually burns, tans with difficulty"), "#eac09f"),
    3: (_("Medium, sometimes burns, tans gradually"), "#d19f76"),
    4: (_("Olive, rarely burns, tans easily"), "#a97850"),
    5: (_("Brown, very rarely burns, tans darkly"), "#7b5034"),
    6: (_("Deeply pigmented dark brown to black, never burns"), "#4a2f21"),
}


class CaseQuerySet(models.QuerySet):
    def with_concern_slugs(self) -> "CaseQuerySet":
        """Annotate each case with its concern slugs in the same query (no prefetch)."""
        through = Case.concerns.through
        slugs = (
            through.objects.filter(case_id=OuterRef("pk"))
            .values("case_id")
            .annotate(joined=StringAgg("concern__slug", Value(",")))
            .values("joined")
        )
        return self.annotate(concern_slug_list=Subquery(slugs))

    def for_display(self) -> "CaseQuerySet":
        """What a public page needs, in two queries: the cases and their public photos."""
        return (
            self.select_related("treatment", "location", "practitioner")
            .with_concern_slugs()
            .prefetch_related(
                models.Prefetch("photos", queryset=Photo.objects.exclude(public_key=""))
            )
        )

    def public(self, at: datetime | None = None) -> "CaseQuerySet":
        """The publication rule, written once. Every public surface starts here.

        1. published and approved by a reviewer;
        2. its consent is active (signed, not expired, not withdrawn);
        3. the consent is the patient's own, allows the website, and the patient is an adult;
        4. the consent allows identifiable photos, or the case is de-identified;
        5. at least one complete before/after pair of one view with renditions;
        6. its location's country allows advertising its treatment
           (``gallery/jurisdictions.py``; its minimum age is condition 3's adult).
        """
        at = at or timezone.now()
        consent_ok = (
            Consent.objects.active(at)
            .filter(
                pk=OuterRef("consent_id"),
                patient_id=OuterRef("patient_id"),
                allow_website=True,
                patient_is_adult=True,
            )
            .filter(Q(identifiable=True) | Exact(OuterRef("deidentified"), True))
        )
        return self.filter(
            Exists(consent_ok),
            Exists(Photo.objects.complete_pairs().filter(case=OuterRef("pk"))),
            ~jurisdictions.refused_q(),
            status=Case.Status.PUBLISHED,
            reviewed_by__isnull=False,
            published_at__isnull=False,
        )

    def listed(self, at: datetime | None = None) -> "CaseQuerySet":
        """The cases the listing holds (``gallery/listing.py``): derived from ``public()``
        by ``sync_listing``, indexed for the list's sort orders. Never used alone to show
        a case: the list applies ``public()`` to the rows it picked from here."""
        return self.filter(listed_until__gt=at or timezone.now())


# A needle depth, on a case (its deepest setting) or a session's zone.
NEEDLE_DEPTH_VALIDATORS = [
    MinValueValidator(Decimal("0.10"), "Needle depth must be at least 0.1 mm."),
    MaxValueValidator(Decimal("4.00"), "Needle depth must be at most 4.0 mm."),
]


class Case(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        REVIEW = "review", "In review"
        PUBLISHED = "published", "Published"
        ARCHIVED = "archived", "Archived"

    class SkinType(models.TextChoices):
        NORMAL = "normal", pgettext_lazy("skin type", "Normal")
        DRY = "dry", pgettext_lazy("skin type", "Dry")
        OILY = "oily", pgettext_lazy("skin type", "Oily")
        COMBINATION = "combination", pgettext_lazy("skin type", "Combination")
        SENSITIVE = "sensitive", pgettext_lazy("skin type", "Sensitive")

    class BodyArea(models.TextChoices):
        FACE = "face", _("Face")
        FOREHEAD = "forehead", _("Forehead")
        CHEEKS = "cheeks", _("Cheeks")
        NECK = "neck", _("Neck")
        CHEST = "chest", _("Chest and décolletage")
        BACK = "back", _("Back")
        ABDOMEN = "abdomen", _("Abdomen")
        ARMS = "arms", _("Arms")
        THIGHS = "thighs", _("Thighs")
        HANDS = "hands", _("Hands")

    public_id = models.CharField(max_length=12, unique=True, default=new_public_id, editable=False)
    treatment = models.ForeignKey(Treatment, on_delete=models.PROTECT, related_name="cases")
    concerns = models.ManyToManyField(Concern, related_name="cases")
    body_area = models.CharField(max_length=20, choices=BodyArea.choices, default=BodyArea.FACE)
    fitzpatrick = models.PositiveSmallIntegerField(
        "Fitzpatrick skin type", choices=FITZPATRICK_CHOICES
    )
    skin_type = models.CharField(max_length=20, choices=SkinType.choices)
    # Derived from the treatment sessions by ``record_facts`` alone (the filters, the sort
    # orders and the listing's indexes read these columns): the deepest setting, the
    # number of sessions, their mean interval, the last session's date and the weeks
    # from it to the after photo.
    needle_depth_mm = models.DecimalField(
        "deepest needle setting (mm)",
        max_digits=3,
        decimal_places=2,
        validators=NEEDLE_DEPTH_VALIDATORS,
    )
    zone_depths = models.CharField(
        "other notes on depth",
        max_length=200,
        blank=True,
        help_text="Anything the sessions' zones do not say, e.g. stamping on the scar edges.",
    )
    session_count = models.PositiveSmallIntegerField(
        "number of sessions", validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    session_interval_weeks = models.PositiveSmallIntegerField(
        "weeks between sessions",
        default=4,
        validators=[MinValueValidator(1), MaxValueValidator(52)],
    )
    last_session_on = models.DateField("date of the last session", null=True, blank=True)
    weeks_after_last_session = models.PositiveSmallIntegerField(
        "weeks after the last session (after photo)", validators=[MaxValueValidator(520)]
    )
    weeks_after_entered = models.PositiveSmallIntegerField(
        "weeks after the last session",
        null=True,
        blank=True,
        validators=[MaxValueValidator(520)],
        help_text="Used only when the after photo has no capture date; otherwise the "
        "weeks are counted from the photo's own date.",
    )
    # The public view of the sessions (weeks from the first session, zones and settings,
    # never a date), written with the derived columns so that no public page or API
    # response needs a query for them.
    protocol = models.JSONField(default=list, blank=True, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="cases")
    consent = models.ForeignKey(Consent, on_delete=models.PROTECT, related_name="cases")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="cases")
    practitioner = models.ForeignKey(Practitioner, on_delete=models.PROTECT, related_name="cases")
    device = models.CharField(max_length=200, blank=True)
    aftercare_notes = models.TextField(blank=True)
    side_effects_notes = models.TextField("side effects", blank=True)
    testimonial = models.TextField(blank=True)
    deidentified = models.BooleanField(
        default=False, help_text="Photos are cropped so that no face or identifying feature shows."
    )
    sensitive = models.BooleanField(
        default=False, help_text="Blurred in the gallery until the viewer chooses to see it."
    )
    is_demo = models.BooleanField(default=False, editable=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    review_comment = models.TextField(
        blank=True, help_text="The reviewer's note to the photographer when sent back."
    )
    check_override = models.TextField(
        blank=True,
        help_text="The reviewer's written reason to publish despite comparability warnings.",
    )
    published_at = models.DateTimeField(null=True, blank=True)
    listed_until = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Set by the publication sync: the consent's expiry while the case is "
        "public, empty otherwise. The gallery list's indexes read it; the rule decides.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CaseQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at", "-created_at"]
        permissions = [
            ("publish_case", "Can approve, publish and unpublish cases"),
            ("view_original", "Can view original photos"),
        ]
        indexes = [
            models.Index(fields=["status", "-published_at"]),
            models.Index(fields=["fitzpatrick"]),
            models.Index(fields=["treatment", "status"]),
            # The list's three sort orders over listed cases: a page reads 24 index
            # entries in order instead of sorting every public case.
            models.Index(
                F("published_at").desc(),
                F("id").desc(),
                condition=Q(listed_until__isnull=False),
                name="gallery_case_listed_newest",
            ),
            models.Index(
                F("session_count").desc(),
                F("published_at").desc(),
                F("id").desc(),
                condition=Q(listed_until__isnull=False),
                name="gallery_case_listed_sessions",
            ),
            models.Index(
                F("needle_depth_mm").desc(),
                F("published_at").desc(),
                F("id").desc(),
                condition=Q(listed_until__isnull=False),
                name="gallery_case_listed_depth",
            ),
            # The sitemap's files, in id order.
            models.Index(
                fields=["id"],
                condition=Q(listed_until__isnull=False),
                name="gallery_case_listed_id",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(fitzpatrick__gte=1, fitzpatrick__lte=6),
                name="gallery_case_fitzpatrick_range",
            ),
            models.CheckConstraint(
                condition=Q(
                    needle_depth_mm__gte=Decimal("0.10"), needle_depth_mm__lte=Decimal("4.00")
                ),
                name="gallery_case_needle_depth_range",
            ),
            models.CheckConstraint(
                condition=Q(session_count__gte=1), name="gallery_case_sessions_at_least_one"
            ),
            models.CheckConstraint(
                condition=Q(session_interval_weeks__gte=1, session_interval_weeks__lte=52),
                name="gallery_case_interval_range",
            ),
            models.CheckConstraint(
                condition=Q(weeks_after_last_session__lte=520),
                name="gallery_case_weeks_after_range",
            ),
            models.CheckConstraint(
                condition=Q(skin_type__in=["normal", "dry", "oily", "combination", "sensitive"]),
                name="gallery_case_skin_type_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status="published")
                | Q(reviewed_by__isnull=False, published_at__isnull=False),
                name="gallery_case_published_is_reviewed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.treatment} case {self.public_id}"

    def get_absolute_url(self) -> str:
        return reverse("gallery:case", args=[self.public_id])

    def clean(self) -> None:
        errors = {}
        if self.consent_id and self.patient_id and self.consent.patient_id != self.patient_id:
            errors["consent"] = "This consent belongs to another patient."
        if (
            self.practitioner_id
            and self.location_id
            and not self.practitioner.locations.filter(pk=self.location_id).exists()
        ):
            errors["practitioner"] = (
                f"{self.practitioner.name} does not work at {self.location.name}: choose "
                "one of its practitioners, or add the location to theirs in the admin."
            )
        if errors:
            raise ValidationError(errors)

    def publication_problems(self, at: datetime | None = None) -> list[str]:
        """Why this case is not public, in plain words; empty when it is.

        The instance twin of ``Case.objects.public()``: a test proves they agree.
        """
        at = at or timezone.now()
        problems = []
        if self.status != self.Status.PUBLISHED or not self.reviewed_by_id or not self.published_at:
            problems.append("It is not published with a reviewer's approval.")
        consent = self.consent
        if not consent.is_active_at(at):
            problems.append(f"Its consent is not active ({consent.status}).")
        if consent.patient_id != self.patient_id:
            problems.append("Its consent belongs to another patient.")
        if not consent.allow_website:
            problems.append("Its consent does not allow the website.")
        if not consent.patient_is_adult:
            problems.append("The consent does not confirm the patient is an adult.")
        if not (consent.identifiable or self.deidentified):
            problems.append(
                "The consent allows only de-identified photos and the case is not de-identified."
            )
        if not self.complete_pairs():
            problems.append("It has no complete before/after pair with renditions.")
        problems += jurisdictions.refusals(self.location.country, self.treatment)
        return problems

    @property
    def is_public(self) -> bool:
        return not self.publication_problems()

    def complete_pairs(self) -> list[tuple["Photo", "Photo"]]:
        """(before, after) pairs with renditions, in view order. Uses prefetched photos."""
        by_view: dict[str, dict[str, Photo]] = {}
        for photo in self.photos.all():
            if photo.rendered_at is not None:
                by_view.setdefault(photo.view, {})[photo.role] = photo
        order = [v for v, _ in Photo.View.choices]
        return [
            (roles["before"], roles["after"])
            for view, roles in sorted(by_view.items(), key=lambda kv: order.index(kv[0]))
            if "before" in roles and "after" in roles
        ]

    def public_pairs(self) -> list[tuple["Photo", "Photo"]]:
        """Complete pairs whose renditions are in public storage."""
        return [(b, a) for b, a in self.complete_pairs() if b.public_key and a.public_key]

    def disclosure_facts(self) -> str:
        sessions = ngettext("%(count)s session", "%(count)s sessions", self.session_count) % {
            "count": self.session_count
        }
        depth = f"{self.needle_depth_mm.normalize():f}"
        if "." not in depth:
            depth += ".0"
        weeks = self.weeks_after_last_session
        weeks_text = ngettext(
            "after photo %(weeks)s week after the last session",
            "after photo %(weeks)s weeks after the last session",
            weeks,
        ) % {"weeks": weeks}
        text = gettext("%(sessions)s of %(treatment)s, deepest needle setting %(depth)s mm, ") % {
            "sessions": sessions,
            "treatment": self.treatment.local_name.lower(),
            "depth": depth,
        }
        text += weeks_text + ". "
        if self.is_demo:
            text += gettext("Demo case: synthetic images, not a real patient.") + " "
        else:
            text += gettext("Unretouched photos of a patient of this clinic.") + " "
        text += gettext("Individual results vary.")
        return text

    def disclosure(self) -> str:
        """The caption of the case: its facts, who treated it where, and the warning its
        location's rules ask for."""
        text = f"{self.disclosure_facts()} {self.practitioner_line()}"
        return f"{text} {self.warning}" if self.warning else text

    @property
    def warning(self) -> str:
        """The warning text every outcome image of this case carries ("" for none)."""
        warning = self.location.rules.warning
        return gettext(warning) if warning else ""  # in the page's language

    @property
    def booking_url(self) -> str:
        """Where this case's consultation button goes: its location's booking page, told
        which case the visitor came from."""
        return booking_url(self.location.booking_url, self.public_id)

    def protocol_rows(self) -> list[dict]:
        """The public protocol with each zone named in the page's language (the stored
        protocol names zones in English, as the API gives them)."""
        labels = dict(SessionZone.Zone.choices)
        return [
            {**s, "zones": [{**z, "name": labels.get(z["zone"], z["name"])} for z in s["zones"]]}
            for s in self.protocol
        ]

    def after_photo_week(self) -> int | None:
        """The after photo's week counted from the first session, as the protocol counts."""
        if not self.protocol:
            return None
        return self.protocol[-1]["week"] + self.weeks_after_last_session

    def concern_slugs(self) -> list[str]:
        """Concern slugs: from the ``with_concern_slugs()`` annotation when present."""
        annotated = getattr(self, "concern_slug_list", None)
        if annotated is not None:
            return sorted(annotated.split(",")) if annotated else []
        return sorted(self.concerns.values_list("slug", flat=True))

    def practitioner_line(self) -> str:
        return gettext("Treated at %(location)s by %(name)s.") % {
            "location": self.location.name,
            "name": self.practitioner.line(),
        }


class PhotoQuerySet(models.QuerySet):
    def complete_pairs(self) -> "PhotoQuerySet":
        """Before photos with renditions whose after photo of the same view has them too."""
        after = Photo.objects.filter(
            case=OuterRef("case"),
            view=OuterRef("view"),
            role=Photo.Role.AFTER,
            rendered_at__isnull=False,
        )
        return self.filter(role=Photo.Role.BEFORE, rendered_at__isnull=False).filter(Exists(after))


def original_upload_to(instance: "Photo", filename: str) -> str:
    # The uploaded name never reaches a path: the pipeline names originals itself.
    return f"originals/{secrets.token_urlsafe(24)}"


class Photo(models.Model):
    class Role(models.TextChoices):
        BEFORE = "before", _("Before")
        AFTER = "after", _("After")

    class View(models.TextChoices):
        FRONT = "front", _("Front")
        LEFT_OBLIQUE = "left_oblique", _("Left oblique")
        RIGHT_OBLIQUE = "right_oblique", _("Right oblique")
        LEFT_PROFILE = "left_profile", _("Left profile")
        RIGHT_PROFILE = "right_profile", _("Right profile")
        CLOSE_UP = "close_up", _("Close-up")

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="photos")
    role = models.CharField(max_length=10, choices=Role.choices)
    view = models.CharField(max_length=20, choices=View.choices, default=View.FRONT)
    taken_at = models.DateTimeField(null=True, blank=True)
    # A FileField, not an ImageField: dimensions come from the pipeline (upright, after
    # EXIF orientation), and no model load should ever open an image.
    original = models.FileField(upload_to=original_upload_to, max_length=200)
    original_format = models.CharField(max_length=10)
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField(help_text="Upright width of the original in pixels.")
    height = models.PositiveIntegerField(help_text="Upright height of the original in pixels.")
    # The pair crop, as fractions of the upright original (None: the default centred crop).
    crop_left = models.FloatField(null=True, blank=True)
    crop_top = models.FloatField(null=True, blank=True)
    crop_width = models.FloatField(null=True, blank=True)
    crop_height = models.FloatField(null=True, blank=True)
    # Degrees the crop rectangle is turned about its centre (clockwise on the upright
    # original), so an after photo taken at a slight tilt lines up with its before photo.
    # None: not turned. Set by the automatic pair alignment.
    rotation = models.FloatField(null=True, blank=True)
    alt_text = models.CharField(max_length=300, blank=True)
    # Built renditions, kept in private storage: [{"format", "width", "height", "name", "bytes"}].
    renditions = models.JSONField(default=list, blank=True)
    rendered_at = models.DateTimeField(null=True, blank=True)
    # Set only while copies of the renditions sit in public storage under this random prefix.
    public_key = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = PhotoQuerySet.as_manager()

    class Meta:
        ordering = ["case", "view", "role"]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "role", "view"], name="gallery_photo_one_per_case_role_view"
            ),
            models.CheckConstraint(
                condition=Q(width__gte=1, height__gte=1), name="gallery_photo_has_size"
            ),
            models.CheckConstraint(
                condition=Q(crop_left__isnull=True)
                | Q(
                    crop_left__gte=0,
                    crop_top__gte=0,
                    crop_width__gt=0,
                    crop_height__gt=0,
                    crop_width__lte=1,
                    crop_height__lte=1,
                ),
                name="gallery_photo_crop_inside",
            ),
            models.CheckConstraint(
                condition=Q(rotation__isnull=True) | Q(rotation__gte=-45, rotation__lte=45),
                name="gallery_photo_rotation_small",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} {self.get_view_display().lower()} of {self.case_id}"

    def default_alt(self) -> str:
        return self.alt_text or (
            gettext("%(role)s treatment, %(view)s view")
            % {"role": self.get_role_display(), "view": self.get_view_display().lower()}
        )

    def crop_aspect(self) -> float | None:
        """The stored crop's shape (width / height, in pixels), or None on the default."""
        if self.crop_left is None:
            return None
        return (self.crop_width * self.width) / (self.crop_height * self.height)

    def crop_controls(self) -> dict[str, float]:
        """The stored crop as the editor's zoom and centre (1, ½, ½ for the default)."""
        if self.crop_left is None:
            return {"zoom": 1.0, "centre_x": 0.5, "centre_y": 0.5}
        from gallery.images import centred_crop

        base = centred_crop(self.width, self.height, self.crop_aspect())
        return {
            "zoom": round(base.width / self.crop_width, 2),
            "centre_x": round(self.crop_left + self.crop_width / 2, 3),
            "centre_y": round(self.crop_top + self.crop_height / 2, 3),
        }

    def largest_jpeg(self) -> dict | None:
        """The widest JPEG rendition entry (staff previews), or None before rendering."""
        jpegs = [r for r in self.renditions if r["format"] == "jpeg"]
        return max(jpegs, key=lambda r: r["width"]) if jpegs else None

    def public_sources(self) -> dict[str, list[dict]]:
        """Public rendition URLs by format, widest last. No storage I/O: names are on the row."""
        if not self.public_key:
            return {}
        storage = storages["public"]
        sources: dict[str, list[dict]] = {}
        for r in sorted(self.renditions, key=lambda r: r["width"]):
            sources.setdefault(r["format"], []).append(
                {
                    "url": storage.url(public_name(self.public_key, r)),
                    "width": r["width"],
                    "height": r["height"],
                }
            )
        return sources


class TreatmentSession(models.Model):
    """One treatment session of a case, as the practitioner recorded it."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="sessions")
    performed_on = models.DateField("date")
    device = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["case", "performed_on", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "performed_on"], name="gallery_treatmentsession_one_per_day"
            ),
        ]

    def __str__(self) -> str:
        return f"Session on {self.performed_on:%Y-%m-%d} of case {self.case_id}"


class SessionZone(models.Model):
    """The settings used on one zone in one session: published protocols set the needle
    depth per facial zone (deeper on the cheeks than around the mouth), and RF
    microneedling adds an energy level and a number of passes."""

    class Zone(models.TextChoices):
        WHOLE_AREA = "whole_area", _("Whole treated area")
        FOREHEAD = "forehead", _("Forehead")
        AROUND_EYES = "around_eyes", _("Around the eyes")
        NOSE = "nose", _("Sides of the nose")
        CHEEKS = "cheeks", _("Cheeks")
        AROUND_MOUTH = "around_mouth", _("Around the mouth")
        CHIN_JAWLINE = "chin_jawline", _("Chin and jawline")
        NECK = "neck", _("Neck")
        CHEST = "chest", _("Chest and décolletage")
        BACK = "back", _("Back")
        ABDOMEN = "abdomen", _("Abdomen")
        ARMS = "arms", _("Arms")
        THIGHS = "thighs", _("Thighs")
        HANDS = "hands", _("Hands")
        SCAR = "scar", _("Scar")

    session = models.ForeignKey(TreatmentSession, on_delete=models.CASCADE, related_name="zones")
    zone = models.CharField(max_length=20, choices=Zone.choices)
    needle_depth_mm = models.DecimalField(
        "needle depth (mm)",
        max_digits=3,
        decimal_places=2,
        validators=NEEDLE_DEPTH_VALIDATORS,
    )
    rf_energy = models.PositiveSmallIntegerField(
        "RF energy level",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="The device's own energy setting (RF microneedling only).",
    )
    rf_passes = models.PositiveSmallIntegerField(
        "RF passes",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
    )

    class Meta:
        ordering = ["session", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "zone"], name="gallery_sessionzone_one_per_zone"
            ),
            models.CheckConstraint(
                condition=Q(
                    needle_depth_mm__gte=Decimal("0.10"), needle_depth_mm__lte=Decimal("4.00")
                ),
                name="gallery_sessionzone_depth_range",
            ),
            models.CheckConstraint(
                condition=Q(rf_energy__isnull=True) | Q(rf_energy__gte=1, rf_energy__lte=100),
                name="gallery_sessionzone_rf_energy_range",
            ),
            models.CheckConstraint(
                condition=Q(rf_passes__isnull=True) | Q(rf_passes__gte=1, rf_passes__lte=10),
                name="gallery_sessionzone_rf_passes_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_zone_display()} at {self.needle_depth_mm} mm"


ZONE_ORDER = {zone: n for n, zone in enumerate(SessionZone.Zone.values)}


@dataclass(frozen=True)
class ZoneRecord:
    zone: str
    needle_depth_mm: Decimal
    rf_energy: int | None = None
    rf_passes: int | None = None


@dataclass(frozen=True)
class SessionRecord:
    """A session as plain data: from saved rows or from a form's cleaned data."""

    performed_on: date
    device: str
    zones: tuple[ZoneRecord, ...]


def session_records(case: Case) -> list[SessionRecord]:
    """The case's saved sessions as records (two queries, or none when prefetched)."""
    return [
        SessionRecord(
            s.performed_on,
            s.device,
            tuple(
                ZoneRecord(z.zone, z.needle_depth_mm, z.rf_energy, z.rf_passes)
                for z in s.zones.all()
            ),
        )
        for s in case.sessions.prefetch_related("zones")
    ]


def after_photo_date(case: Case) -> date | None:
    """The capture date of the case's earliest dated after photo, in the clinic's time
    zone: the fewest weeks any after photo can claim."""
    taken = (
        Photo.objects.filter(case=case, role=Photo.Role.AFTER, taken_at__isnull=False)
        .order_by("taken_at")
        .values_list("taken_at", flat=True)
        .first()
    )
    return timezone.localtime(taken).date() if taken else None


def derive_facts(
    sessions: list[SessionRecord],
    after_photo_on: date | None,
    weeks_entered: int | None,
    interval_default: int = 4,
) -> dict:
    """The case's derived columns from its sessions: the number of sessions, their mean
    interval in whole weeks (``interval_default`` with a single session), the deepest
    setting of any zone, the last session's date, the weeks from it to the after photo
    (from the photo's capture date when known, else as entered) and the public protocol.
    """
    ordered = sorted(sessions, key=lambda s: s.performed_on)
    first, last = ordered[0].performed_on, ordered[-1].performed_on
    if len(ordered) > 1:
        mean_days = (last - first).days / (len(ordered) - 1)
        interval = min(52, max(1, int(mean_days / 7 + 0.5)))
    else:
        interval = interval_default
    if after_photo_on is not None:
        weeks = min(520, max(0, (after_photo_on - last).days // 7))
    else:
        weeks = weeks_entered if weeks_entered is not None else 0
    with override("en"):  # the stored protocol (and the API) names zones in English
        labels = {code: str(label) for code, label in SessionZone.Zone.choices}
    protocol = [
        {
            "number": n,
            "week": (s.performed_on - first).days // 7,
            "device": s.device,
            "zones": [
                {
                    "zone": z.zone,
                    "name": labels.get(z.zone, z.zone),
                    "needle_depth_mm": f"{z.needle_depth_mm:.2f}",
                    "rf_energy": z.rf_energy,
                    "rf_passes": z.rf_passes,
                }
                for z in sorted(s.zones, key=lambda z: ZONE_ORDER.get(z.zone, 99))
            ],
        }
        for n, s in enumerate(ordered, start=1)
    ]
    return {
        "session_count": len(ordered),
        "session_interval_weeks": interval,
        "needle_depth_mm": max(z.needle_depth_mm for s in ordered for z in s.zones),
        "last_session_on": last,
        "weeks_after_last_session": weeks,
        "protocol": protocol,
    }


def record_facts(case: Case) -> None:
    """Write the case's derived columns from its saved sessions and after photos: the one
    writer of those columns. Called wherever the sessions, the entered weeks or the after
    photos change (staff form, admin, import, demo seed, photo upload and removal)."""
    sessions = session_records(case)
    if not sessions or not all(s.zones for s in sessions):
        return  # a half-entered record derives nothing; the forms never leave one
    # Without a dated after photo and with no weeks entered (a photo's date was counted
    # from until the photo went), the weeks counted last stand.
    entered = case.weeks_after_entered
    facts = derive_facts(
        sessions,
        after_photo_date(case),
        entered if entered is not None else case.weeks_after_last_session,
        case.session_interval_weeks,
    )
    for name, value in facts.items():
        setattr(case, name, value)
    Case.objects.filter(pk=case.pk).update(**facts)


def replace_sessions(case: Case, records: list[SessionRecord]) -> None:
    """Replace the case's session records with these, then derive its facts (call inside
    the transaction that saves the case)."""
    case.sessions.all().delete()
    for record in records:
        session = TreatmentSession.objects.create(
            case=case, performed_on=record.performed_on, device=record.device
        )
        SessionZone.objects.bulk_create(
            SessionZone(
                session=session,
                zone=z.zone,
                needle_depth_mm=z.needle_depth_mm,
                rf_energy=z.rf_energy,
                rf_passes=z.rf_passes,
            )
            for z in record.zones
        )
    record_facts(case)


def sessions_from_facts(
    case: Case,
    *,
    needle_depth_mm: Decimal,
    session_count: int,
    session_interval_weeks: int,
    weeks_after_last_session: int,
) -> None:
    """Turn a case's typed facts (an import manifest's, the admin's) into session records
    that derive the same facts: ``session_count`` sessions ``session_interval_weeks``
    apart, each on one zone (the body area when it is a zone, else the whole treated
    area) at the deepest setting, the last one dated
    ``weeks_after_last_session`` weeks before the after photo's capture date (today when
    the photo has none, or there is no photo yet)."""
    anchor = after_photo_date(case) or timezone.localdate()
    last = anchor - timedelta(weeks=weeks_after_last_session)
    zone = case.body_area if case.body_area in ZONE_ORDER else SessionZone.Zone.WHOLE_AREA
    sessions = TreatmentSession.objects.bulk_create(
        TreatmentSession(
            case=case,
            performed_on=last - timedelta(weeks=session_interval_weeks * (session_count - 1 - n)),
            device=case.device,
        )
        for n in range(session_count)
    )
    SessionZone.objects.bulk_create(
        SessionZone(session=s, zone=zone, needle_depth_mm=needle_depth_mm) for s in sessions
    )
    case.weeks_after_entered = weeks_after_last_session
    case.session_interval_weeks = session_interval_weeks
    Case.objects.filter(pk=case.pk).update(weeks_after_entered=weeks_after_last_session)
    record_facts(case)


def public_name(public_key: str, rendition: dict) -> str:
    ext = {"jpeg": "jpg"}.get(rendition["format"], rendition["format"])
    return f"r/{public_key}/{rendition['width']}.{ext}"


def reference_data() -> dict:
    """Treatments, concerns, locations and practitioners (slug -> name, and slug -> id
    under "*_ids"), cached: the filters and facets need them on every request and they
    change only when an admin edits them. Filters compare ids, so PostgreSQL estimates
    them from the case table's own statistics instead of a join on a slug."""
    from django.core.cache import cache

    data = cache.get(REFERENCE_CACHE_KEY)
    if data is None:
        data = {
            "treatments": dict(Treatment.objects.values_list("slug", "name")),
            "concerns": dict(Concern.objects.values_list("slug", "name")),
            "treatment_ids": dict(Treatment.objects.values_list("slug", "id")),
            "concern_ids": dict(Concern.objects.values_list("slug", "id")),
            "locations": dict(Location.objects.values_list("slug", "name")),
            "practitioners": dict(Practitioner.objects.values_list("slug", "name")),
            "location_ids": dict(Location.objects.values_list("slug", "id")),
            "practitioner_ids": dict(Practitioner.objects.values_list("slug", "id")),
        }
        cache.set(REFERENCE_CACHE_KEY, data, 3600)
    return data


REFERENCE_CACHE_KEY = "gallery:reference:v3"
