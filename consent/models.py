import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy

from clinic.validators import validate_patient_reference
from consent.signals import consent_changed, consent_changing


class Patient(models.Model):
    reference = models.CharField(
        max_length=64,
        unique=True,
        help_text="The clinic's chart reference.",
        validators=[validate_patient_reference],
    )
    full_name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["reference"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(reference=""), name="consent_patient_reference_not_blank"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} ({self.full_name})"

    @property
    def reference_for_files(self) -> str:
        """The chart reference as it may stand in a download's name. It is the clinic's own
        text: keep only what is safe in any header or file system, whatever was imported
        before references were validated."""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", self.reference).strip("-.") or "patient"

    def consent_in_force(self) -> "Consent | None":
        """The consent that speaks for the patient now: the newest one no later consent
        has superseded (it may be withdrawn or expired; then nothing is in force)."""
        return (
            self.consents.filter(superseded_at__isnull=True)
            .order_by("-signed_at", "-pk")
            .select_related("form")
            .first()
        )


class ConsentForm(models.Model):
    """A version of the consent text, in the default language (``title``, ``body``) and in
    any other (``translations``: {"es": {"title": …, "body": …}}). Immutable once a
    consent references it, except that a language may be added: what a patient signed, in
    the language they read it, never changes."""

    version = models.CharField(max_length=32, unique=True)
    title = models.CharField(max_length=200)
    body = models.TextField()
    translations = models.JSONField(
        default=dict,
        blank=True,
        help_text='The text in other languages: {"es": {"title": "…", "body": "…"}}.',
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-version"]

    def __str__(self) -> str:
        return f"{self.title} (version {self.version})"

    @classmethod
    def current(cls) -> "ConsentForm | None":
        return cls.objects.order_by("-created_at", "-pk").first()

    @property
    def in_use(self) -> bool:
        return self.pk is not None and self.consents.exists()

    @property
    def languages(self) -> list[str]:
        """The languages this version can be read and signed in, the default first."""
        return [settings.LANGUAGE_CODE, *sorted(set(self.translations) - {settings.LANGUAGE_CODE})]

    def text(self, language: str | None = None) -> tuple[str, str]:
        """(title, body) in ``language``; the default language's for any other."""
        translated = self.translations.get(language or "") or {}
        if language != settings.LANGUAGE_CODE and translated.get("body"):
            return translated.get("title") or self.title, translated["body"]
        return self.title, self.body

    def signed_text(self, language: str | None = None) -> str:
        """The exact text a patient reads and signs in ``language``: the title, then the body."""
        title, body = self.text(language)
        return f"{title}\n\n{body}"

    def clean(self) -> None:
        translations = self.translations
        if not isinstance(translations, dict) or not all(
            code in dict(settings.LANGUAGES)
            and isinstance(text, dict)
            and isinstance(text.get("title", ""), str)
            and isinstance(text.get("body"), str)
            and text["body"].strip()
            for code, text in translations.items()
        ):
            raise ValidationError(
                {
                    "translations": 'Write {"<language>": {"title": "…", "body": "…"}} with a '
                    "language of settings.LANGUAGES and a text for each."
                }
            )

    def save(self, *args, **kwargs) -> None:
        # A patient agreed to this exact text: changing it would falsify the record.
        if self.in_use:
            stored = ConsentForm.objects.get(pk=self.pk)
            kept = all(
                self.translations.get(code) == text for code, text in stored.translations.items()
            )
            if (stored.version, stored.title, stored.body) != (
                self.version,
                self.title,
                self.body,
            ) or not kept:
                raise ValidationError(
                    "This consent form version has been signed and can no longer be changed. "
                    "Create a new version instead (a new language may be added)."
                )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.in_use:
            raise ValidationError("A signed consent form version cannot be deleted.")
        return super().delete(*args, **kwargs)


# The uses a patient may allow, as their own pages name them (in the page's language).
SCOPE_NAMES = {
    "allow_website": gettext_lazy("clinic website"),
    "allow_social": gettext_lazy("social media"),
    "allow_print": gettext_lazy("print"),
    "allow_education": gettext_lazy("education and training"),
}


class ConsentQuerySet(models.QuerySet):
    def active(self, at: datetime | None = None) -> "ConsentQuerySet":
        """Consents in force at ``at`` (default: now): signed, not expired, not withdrawn,
        not superseded by a later consent."""
        at = at or timezone.now()
        return self.filter(
            Q(superseded_at__isnull=True) | Q(superseded_at__gt=at),
            signed_at__lte=at,
            expires_at__gt=at,
            withdrawn_at__isnull=True,
        )

    def expiring_within(self, days: int, at: datetime | None = None) -> "ConsentQuerySet":
        at = at or timezone.now()
        return self.active(at).filter(expires_at__lte=at + timedelta(days=days))

    def reminder_due(self, days: int, after_days: int = 0, at: datetime | None = None):
        """Active consents ending within ``days`` (but not within ``after_days``, the next
        reminder's window) whose ``days`` reminder has not been sent or listed yet."""
        at = at or timezone.now()
        sent = ConsentReminder.objects.filter(consent=models.OuterRef("pk"), days=days)
        return (
            self.expiring_within(days, at)
            .filter(expires_at__gt=at + timedelta(days=after_days))
            .exclude(models.Exists(sent))
        )

    def lapsed_unrecorded(self, at: datetime | None = None) -> "ConsentQuerySet":
        """Expired consents whose expiry has not been written to the audit trail yet."""
        at = at or timezone.now()
        recorded = ConsentEvent.objects.filter(
            consent=models.OuterRef("pk"), kind=ConsentEvent.Kind.EXPIRED
        )
        return self.filter(
            expires_at__lte=at, withdrawn_at__isnull=True, superseded_at__isnull=True
        ).exclude(models.Exists(recorded))


# The signed document's type, by the extension ``signature_upload_to`` kept.
SIGNATURE_CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "pdf": "application/pdf",
    "webp": "image/webp",
    "heic": "image/heic",
}


def signature_upload_to(instance: "Consent", filename: str) -> str:
    # The uploaded name never reaches a path: only the extension, from an allowlist.
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    ext = ext if ext in SIGNATURE_CONTENT_TYPES else "bin"
    return f"signatures/{secrets.token_urlsafe(24)}.{ext}"


class Consent(models.Model):
    class Channel(models.TextChoices):
        STAFF = "staff", "Recorded by clinic staff"
        PATIENT_PAGE = "patient_page", "By the patient on their consent page"
        EMAIL = "email", "By email"
        PHONE = "phone", "By phone"
        PAPER = "paper", "In writing"
        ADMIN = "admin", "In the admin"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="consents")
    form = models.ForeignKey(
        ConsentForm,
        on_delete=models.PROTECT,
        related_name="consents",
        verbose_name="consent form version",
    )
    allow_website = models.BooleanField(
        "clinic website", default=False, help_text="Photos may appear in the public gallery."
    )
    allow_social = models.BooleanField("social media", default=False)
    allow_print = models.BooleanField("print", default=False)
    allow_education = models.BooleanField("education and training", default=False)
    identifiable = models.BooleanField(
        "identifiable photos allowed",
        default=False,
        help_text="A recognisable face or feature may be shown. "
        "Otherwise only de-identified crops may be published.",
    )
    patient_is_adult = models.BooleanField("patient is an adult", default=False)
    language = models.CharField(
        max_length=16,
        default=settings.LANGUAGE_CODE,
        help_text="The language of the text the patient read and signed.",
    )
    signed_text = models.TextField(
        blank=True,
        editable=False,
        help_text="The exact text the patient read and signed (the form version's, in "
        "their language).",
    )
    signed_at = models.DateTimeField()
    signed_by_name = models.CharField("signed by", max_length=200)
    representative_authority = models.CharField(
        max_length=200,
        blank=True,
        help_text="When a representative signs for the patient: their authority "
        "(e.g. parent, legal guardian, power of attorney). Blank when the patient signed.",
    )
    signature = models.FileField(
        upload_to=signature_upload_to,
        max_length=200,
        blank=True,
        help_text="Drawn signature or scanned signed form (private).",
    )
    expires_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    recorded_at = models.DateTimeField(default=timezone.now)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    withdrawal_channel = models.CharField(max_length=20, choices=Channel.choices, blank=True)
    # Set in the transaction that records the newer consent (``record_consent``): from
    # then on this one no longer speaks for the patient.
    superseded_at = models.DateTimeField(null=True, blank=True, editable=False)
    superseded_by = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="supersedes",
    )
    # The patient's private link: only a hash is stored, the token itself is sent once.
    access_token_hash = models.CharField(max_length=64, blank=True, db_index=True)

    objects = ConsentQuerySet.as_manager()

    class Meta:
        ordering = ["-signed_at"]
        permissions = [
            ("withdraw_consent", "Can withdraw a consent"),
            ("export_evidence", "Can export a consent evidence bundle"),
        ]
        # The next expiry (the page cache's horizon, gallery/cache.py) and the consents
        # expiring soon are read in expiry order.
        indexes = [models.Index(fields=["expires_at"], name="consent_expires_at_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("signed_at")),
                name="consent_consent_expires_after_signing",
            ),
            models.CheckConstraint(
                condition=Q(withdrawn_at__isnull=True) | Q(withdrawn_at__gte=F("signed_at")),
                name="consent_consent_withdrawn_not_before_signing",
            ),
            models.CheckConstraint(
                condition=(Q(withdrawn_at__isnull=True) & Q(withdrawal_channel=""))
                | (Q(withdrawn_at__isnull=False) & ~Q(withdrawal_channel="")),
                name="consent_consent_withdrawal_has_channel",
            ),
            models.CheckConstraint(
                condition=~Q(signed_by_name=""), name="consent_consent_signer_named"
            ),
            models.CheckConstraint(
                condition=Q(superseded_at__isnull=True, superseded_by__isnull=True)
                | Q(superseded_at__isnull=False, superseded_by__isnull=False),
                name="consent_consent_superseded_by_one",
            ),
        ]

    def __str__(self) -> str:
        return f"Consent of {self.patient.reference} signed {self.signed_at:%Y-%m-%d}"

    @property
    def is_active(self) -> bool:
        return self.is_active_at(timezone.now())

    def is_active_at(self, at: datetime) -> bool:
        """Instance twin of ``Consent.objects.active(at)``."""
        return (
            self.signed_at is not None
            and self.expires_at is not None
            and self.signed_at <= at < self.expires_at
            and self.withdrawn_at is None
            and (self.superseded_at is None or self.superseded_at > at)
        )

    @property
    def status(self) -> str:
        return self.status_at(timezone.now())

    def status_at(self, at: datetime) -> str:
        if self.withdrawn_at:
            return "withdrawn"
        if self.superseded_at:
            return "superseded"
        if self.expires_at and self.expires_at <= at:
            return "expired"
        if self.signed_at and self.signed_at > at:
            return "not yet in force"
        return "active"

    @property
    def signature_content_type(self) -> str:
        ext = self.signature.name.rsplit(".", 1)[-1]
        return SIGNATURE_CONTENT_TYPES.get(ext, "application/octet-stream")

    def scope_names(self) -> list[str]:
        """The uses allowed, in the page's language, for the patient's own pages. (The
        records keep ``scopes()``, in the default language.)"""
        return [str(SCOPE_NAMES[name]) for name in SCOPE_NAMES if getattr(self, name)]

    def scopes(self) -> list[str]:
        return [
            str(self._meta.get_field(name).verbose_name)
            for name in ("allow_website", "allow_social", "allow_print", "allow_education")
            if getattr(self, name)
        ]

    def clean(self) -> None:
        errors = {}
        if self.signed_at and self.expires_at and self.expires_at <= self.signed_at:
            errors["expires_at"] = "The consent must expire after the date it was signed."
        if self.withdrawn_at and self.signed_at and self.withdrawn_at < self.signed_at:
            errors["withdrawn_at"] = "A consent cannot be withdrawn before it was signed."
        if bool(self.withdrawn_at) != bool(self.withdrawal_channel):
            errors["withdrawal_channel"] = "A withdrawal needs both its time and its channel."
        if errors:
            raise ValidationError(errors)

    def new_access_token(self) -> str:
        """Make a new private link token; only its hash is kept. Caller saves."""
        token = secrets.token_urlsafe(32)
        self.access_token_hash = hash_token(token)
        return token

    def withdraw(self, by=None, channel: str = Channel.STAFF, details: dict | None = None) -> bool:
        """Withdraw this consent. Returns False when it was already withdrawn.

        A superseded consent no longer speaks for the patient: withdrawing it is refused
        (``ConsentSuperseded``); ``Patient.withdraw_consent`` withdraws the one in force.
        The row is kept; the change is recorded as an event, and ``consent_changed`` is
        sent after commit so every case under the consent leaves the public surfaces.
        """
        with transaction.atomic():
            locked = lock_patient_consents(self.patient_id)[self.pk]
            if locked.superseded_at is not None:
                raise ConsentSuperseded(locked)
            done = locked._withdraw_locked(by, channel, details)
        for name in ("withdrawn_at", "withdrawn_by_id", "withdrawal_channel"):
            setattr(self, name, getattr(locked, name))
        return done

    def _withdraw_locked(self, by, channel: str, details: dict | None) -> bool:
        if self.withdrawn_at is not None:
            return False
        self.withdrawn_at = max(timezone.now(), self.signed_at)
        self.withdrawn_by = by if (by is not None and by.is_authenticated) else None
        self.withdrawal_channel = channel
        self.save(update_fields=["withdrawn_at", "withdrawn_by", "withdrawal_channel"])
        ConsentEvent.record(
            self,
            ConsentEvent.Kind.WITHDRAWN,
            actor=self.withdrawn_by,
            details={"channel": channel, **(details or {})},
        )
        consent_changing.send(sender=Consent, consent=self, superseded=())
        transaction.on_commit(
            lambda: consent_changed.send(sender=Consent, consent=self, reason="withdrawn")
        )
        return True


class ConsentSuperseded(Exception):
    def __init__(self, consent: Consent):
        super().__init__("This consent was replaced by a newer one; withdraw the consent in force.")
        self.consent = consent


class ConsentStandingChanged(Exception):
    """A new consent was to replace one that, by the time the patient's consents were
    locked, was no longer the open one in force (replaced or withdrawn meanwhile)."""

    def __init__(self, consent: Consent):
        super().__init__("The consent in force changed meanwhile; nothing was recorded.")
        self.consent = consent


def renewal_expiry(replacing: Consent, at: datetime) -> datetime:
    """When a consent renewed at ``at`` ends: one renewal term from then
    (``CONSENT_RENEWAL_DAYS``), never earlier than the consent it replaces ends, so
    renewing early never shortens what the patient agreed to."""
    return max(at + timedelta(days=settings.CONSENT_RENEWAL_DAYS), replacing.expires_at)


def lock_patient_consents(patient_id: int) -> dict[int, Consent]:
    """Lock every consent of a patient, in one order (recording, withdrawing and
    superseding all take the same locks the same way, so they never deadlock and never
    decide on a standing that another transaction is changing)."""
    rows = Consent.objects.select_for_update().filter(patient_id=patient_id).order_by("pk")
    return {c.pk: c for c in rows}


def withdraw_patient_consent(
    patient: Patient, by=None, channel: str = Consent.Channel.STAFF, details: dict | None = None
) -> Consent | None:
    """Withdraw whatever consent speaks for the patient now (through any link they ever
    received, or a staff page). Returns it, or None when nothing was left to withdraw."""
    with transaction.atomic():
        consents = lock_patient_consents(patient.pk).values()
        open_ = [c for c in consents if c.superseded_at is None and c.withdrawn_at is None]
        for consent in open_:
            consent._withdraw_locked(by, channel, details)
    return max(open_, key=lambda c: (c.signed_at, c.pk)) if open_ else None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def consent_for_token(token: str) -> Consent | None:
    """The consent a private link was made for (superseded or not), or None."""
    if not (20 <= len(token) <= 100):
        return None
    digest = hash_token(token)
    consent = (
        Consent.objects.select_related("patient", "form").filter(access_token_hash=digest).first()
    )
    # The lookup is by hash; the final comparison is constant-time all the same.
    if consent is None or not hmac.compare_digest(consent.access_token_hash, digest):
        return None
    return consent


class ConsentEventQuerySet(models.QuerySet):
    # The audit trail is append-only: bulk changes are refused like single ones.
    def update(self, **kwargs):
        raise ValidationError("Consent events are append-only and cannot be changed.")

    def delete(self):
        raise ValidationError("Consent events are append-only and cannot be deleted.")


class ConsentEvent(models.Model):
    class Kind(models.TextChoices):
        GRANTED = "granted", "Consent granted"
        RENEWED = "renewed", "Consent renewed"
        SUPERSEDED = "superseded", "Superseded by a newer consent"
        WITHDRAWN = "withdrawn", "Consent withdrawn"
        EXPIRED = "expired", "Consent expired"
        DOCUMENT_VIEWED = "document_viewed", "Signed document viewed"
        ORIGINAL_VIEWED = "original_viewed", "Original photo viewed"
        EXPORTED = "exported", "Evidence exported"
        LINK_SENT = "link_sent", "Patient link sent"
        PAGE_VIEWED = "page_viewed", "Patient viewed their consent page"
        ERASED = "erased", "Patient's photos erased"
        REMINDER_EMAILED = "reminder_emailed", "Renewal reminder emailed"
        REMINDER_CALL = "reminder_call", "Listed for a renewal call (no email)"

    consent = models.ForeignKey(Consent, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(
        max_length=200, blank=True, help_text="Who acted when it was not a staff user."
    )
    details = models.JSONField(default=dict, blank=True)

    objects = ConsentEventQuerySet.as_manager()

    class Meta:
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["consent", "kind"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M}"

    @classmethod
    def record(cls, consent: Consent, kind: str, actor=None, label: str = "", details=None):
        if actor is not None and not actor.is_authenticated:
            actor = None
        return cls.objects.create(
            consent=consent, kind=kind, actor=actor, actor_label=label, details=details or {}
        )

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValidationError("Consent events are append-only and cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("Consent events are append-only and cannot be deleted.")


def record_consent(
    patient: Patient,
    form: ConsentForm,
    recorded_by,
    document: tuple[str, bytes] | None,
    signed_at: datetime | None = None,
    *,
    language: str | None = None,
    channel: str = Consent.Channel.STAFF,
    details: dict | None = None,
    replaces: Consent | None = None,
    actor_label: str = "",
    **fields,
) -> Consent:
    """Record a signed consent with its signature or scan. In the same transaction it
    supersedes the patient's earlier consents that were neither withdrawn nor superseded
    (their rows and history are kept), and ``consent_changing`` moves their records
    under it, so the patient's latest choices count from the moment this commits.

    An older consent recorded after a newer one (an import of paper history) is born
    superseded by the newer one. The document is written to private storage before the
    transaction and removed again if the row cannot be saved, so no file is left without
    a row.

    ``channel`` and ``details`` go into the events recorded, and ``actor_label`` names
    who acted when no staff user did (the patient on their own page). With ``replaces``, the
    consent is recorded only if that one is still the patient's open consent in force once
    their consents are locked (``ConsentStandingChanged`` otherwise): a patient who
    narrowed or renewed what their page showed never replaces a newer decision.

    ``language`` is the language the patient read the form in (the default language when
    not given); the consent keeps it and the exact text of the form in it. A language the
    form version has no text in is refused.
    """
    from django.core.files.base import ContentFile

    language = language or settings.LANGUAGE_CODE
    if language not in form.languages:
        raise ValidationError(
            {"language": f"Consent form version {form.version} has no text in {language!r}."}
        )
    from django.core.files.storage import default_storage

    stored = ""
    if document is not None:
        ext, data = document
        stored = default_storage.save(signature_upload_to(None, f"x.{ext}"), ContentFile(data))
    try:
        with transaction.atomic():
            locked = lock_patient_consents(patient.pk)
            previous = list(locked.values())
            if replaces is not None:
                current = locked.get(replaces.pk)
                if current is None or current.superseded_at or current.withdrawn_at:
                    raise ConsentStandingChanged(current or replaces)
            consent = Consent(
                patient=patient,
                form=form,
                recorded_by=recorded_by,
                signed_at=signed_at or timezone.now(),
                signature=stored,
                language=language,
                signed_text=form.signed_text(language),
                **fields,
            )
            consent.full_clean()
            consent.save()
            kind = ConsentEvent.Kind.RENEWED if previous else ConsentEvent.Kind.GRANTED
            said = {"channel": channel, **(details or {})}
            ConsentEvent.record(
                consent,
                kind,
                actor=recorded_by,
                label=actor_label,
                details={
                    "form_version": form.version,
                    "language": language,
                    "scopes": consent.scopes(),
                    "identifiable": consent.identifiable,
                    "expires_at": consent.expires_at.isoformat(),
                    **said,
                },
            )
            open_ = [c for c in previous if c.superseded_at is None and c.withdrawn_at is None]
            later = [c for c in open_ if c.signed_at > consent.signed_at]
            if later:
                newest = max(later, key=lambda c: (c.signed_at, c.pk))
                superseded = [consent]
                _supersede([consent], newest, recorded_by, actor_label, said)
            else:
                superseded = open_
                _supersede(open_, consent, recorded_by, actor_label, said)
            consent_changing.send(
                sender=Consent, consent=consent, superseded=[c.pk for c in superseded]
            )
            transaction.on_commit(
                lambda: consent_changed.send(
                    sender=Consent,
                    consent=consent,
                    reason="granted",
                    superseded=[c.pk for c in superseded],
                )
            )
    except BaseException:
        if stored:
            default_storage.delete(stored)
        raise
    return consent


def _supersede(olds: list[Consent], new: Consent, actor, label: str, said: dict) -> None:
    at = timezone.now()
    for old in olds:
        old.superseded_at = at
        old.superseded_by = new
        old.save(update_fields=["superseded_at", "superseded_by"])
        ConsentEvent.record(
            old,
            ConsentEvent.Kind.SUPERSEDED,
            actor=actor,
            label=label,
            details={"by_consent": new.pk, **said},
        )


class ConsentReminder(models.Model):
    """A renewal reminder for a consent nearing its end, at most one per consent and
    stage (30 or 7 days before): emailed with its own renewal link (only the hash is
    kept), or, for a patient without an email address, listed for a phone call.

    The row is written before the email leaves, so two runs never send the same reminder:
    the unique constraint lets only one of them claim it."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Emailed"
        PHONE = "phone", "Listed for a call"

    consent = models.ForeignKey(Consent, on_delete=models.PROTECT, related_name="reminders")
    days = models.PositiveSmallIntegerField(help_text="Days before the consent ends.")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    created_at = models.DateTimeField(default=timezone.now)
    # The renewal link's token, hashed like the patient's private link; blank for calls.
    token_hash = models.CharField(max_length=64, blank=True, db_index=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["consent", "days"], name="consent_consentreminder_once_per_stage"
            ),
            models.CheckConstraint(
                condition=(Q(channel="email") & ~Q(token_hash=""))
                | (Q(channel="phone") & Q(token_hash="")),
                name="consent_consentreminder_link_only_by_email",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_channel_display()} {self.days} days before consent {self.consent_id} ends"
        )


# A reminder's renewal link still opens the renewal this long after the consent ended:
# the patient who reads the last reminder late can still renew.
RENEWAL_LINK_GRACE = timedelta(days=30)


def consent_for_renewal_token(token: str, at: datetime | None = None) -> Consent | None:
    """The consent a reminder's renewal link was made for, while that link may renew it:
    not withdrawn, not already renewed (superseded), ended no longer than
    ``RENEWAL_LINK_GRACE`` ago. Otherwise None.

    The link is single-purpose: it opens the renewal of this one consent and nothing else
    (``consent_for_token``, the patient's private link, does not know it), and it stops
    working once the consent is renewed or withdrawn."""
    if not (20 <= len(token) <= 100):
        return None
    digest = hash_token(token)
    reminder = (
        ConsentReminder.objects.select_related("consent__patient", "consent__form")
        .filter(token_hash=digest, channel=ConsentReminder.Channel.EMAIL)
        .first()
    )
    if reminder is None or not hmac.compare_digest(reminder.token_hash, digest):
        return None
    consent = reminder.consent
    at = at or timezone.now()
    if consent.withdrawn_at is not None or consent.superseded_at is not None:
        return None
    if consent.expires_at + RENEWAL_LINK_GRACE <= at:
        return None
    return consent
