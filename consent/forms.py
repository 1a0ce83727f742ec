import base64
import binascii
import io
import unicodedata
from datetime import timedelta

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from consent.models import Consent, Patient

YES_NO = [("yes", _("Yes")), ("no", _("No"))]
SCOPE_FIELDS = ["allow_website", "allow_social", "allow_print", "allow_education"]
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024


class PatientForm(forms.ModelForm):
    class Meta:
        model = Patient
        fields = ["reference", "full_name", "email"]


def yes_no(label: str, help_text: str = "") -> forms.TypedChoiceField:
    # Radio buttons with no initial value: every choice is made explicitly, none pre-ticked.
    return forms.TypedChoiceField(
        label=label,
        help_text=help_text,
        choices=YES_NO,
        coerce=lambda v: v == "yes",
        widget=forms.RadioSelect,
        required=True,
        error_messages={"required": _("Choose yes or no.")},
    )


class ConsentCaptureForm(forms.Form):
    allow_website = yes_no(_("The clinic's website gallery"))
    allow_social = yes_no(_("The clinic's social media"))
    allow_print = yes_no(_("Printed material in the clinic"))
    allow_education = yes_no(_("Education and training of health professionals"))
    identifiable = yes_no(
        _("May photos show your face or another feature by which you could be recognised?"),
        _("If no, only cropped photos that show no identifying feature are used."),
    )
    patient_is_adult = yes_no(_("Is the patient 18 or older?"))
    signed_by_name = forms.CharField(label=_("Name of the person signing"), max_length=200)
    representative_authority = forms.CharField(
        label=_("If a representative signs: their authority"),
        help_text=_(
            "e.g. parent, legal guardian, power of attorney. Leave blank when the patient signs."
        ),
        max_length=200,
        required=False,
    )
    expires_at = forms.DateField(
        label=_("Consent ends on"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Required. Photos leave every public place on this date."),
    )
    signature_data = forms.CharField(widget=forms.HiddenInput, required=False)
    document = forms.FileField(
        label=_("Or attach the scanned signed paper form (PDF, JPEG, PNG, WebP or HEIC)"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,image/*"}),
    )

    def clean_expires_at(self):
        value = self.cleaned_data["expires_at"]
        if value <= timezone.localdate():
            raise forms.ValidationError(_("The end date must be in the future."))
        if value > timezone.localdate() + timedelta(days=366 * 10):
            raise forms.ValidationError(_("A consent can last at most ten years."))
        return value

    def clean_signature_data(self) -> bytes | None:
        return read_signature(self.cleaned_data.get("signature_data") or "")

    def clean_document(self):
        upload = self.cleaned_data.get("document")
        if not upload:
            return None
        if upload.size > MAX_DOCUMENT_BYTES:
            raise forms.ValidationError(
                "The scan is larger than 20 MB. Scan at a lower resolution."
            )
        head = upload.read(8)
        upload.seek(0)
        if head.startswith(b"%PDF-"):
            data = upload.read()
            if b"%%EOF" not in data[-2048:]:
                raise forms.ValidationError("This PDF is incomplete. Scan the form again.")
            return ("pdf", data)
        # Images go through the same validation as photos (set by configuration, so the
        # consent app does not import the gallery).
        validate = import_string(settings.CONSENT_IMAGE_VALIDATOR)
        try:
            facts = validate(upload, upload.name, MAX_DOCUMENT_BYTES, settings.PHOTO_MAX_PIXELS)
        except ValueError as refusal:
            raise forms.ValidationError(getattr(refusal, "message", str(refusal))) from None
        upload.seek(0)
        return (facts.format, upload.read())

    def clean(self):
        data = super().clean()
        if not data.get("signature_data") and not data.get("document") and not self.errors:
            raise forms.ValidationError(
                _("Sign in the signature box, or attach the scanned signed form.")
            )
        return data

    def scopes_chosen(self) -> dict:
        return {name: self.cleaned_data[name] for name in SCOPE_FIELDS}


def read_signature(raw: str) -> bytes | None:
    """The PNG a signature pad sent (``static/consent/signature-pad.js``), checked: a
    real PNG of sensible size with something drawn on it. None when nothing was sent."""
    if not raw:
        return None
    prefix = "data:image/png;base64,"
    if not raw.startswith(prefix) or len(raw) > 2 * 1024 * 1024:
        raise forms.ValidationError(_("The signature could not be read. Clear it and sign again."))
    try:
        png = base64.b64decode(raw[len(prefix) :], validate=True)
    except (binascii.Error, ValueError):
        raise forms.ValidationError(
            _("The signature could not be read. Clear it and sign again.")
        ) from None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(png), formats=["PNG"]) as im:
            im.load()
            alpha = im.convert("RGBA").getchannel("A")
            if im.width * im.height > 4_000_000 or alpha.getbbox() is None:
                raise ValueError
    except Exception:
        raise forms.ValidationError(_("The signature pad is empty. Sign in the box.")) from None
    return png


def consent_kwargs(form: ConsentCaptureForm) -> dict:
    data = form.cleaned_data
    end = timezone.make_aware(
        timezone.datetime.combine(data["expires_at"], timezone.datetime.min.time())
    )
    return {
        **form.scopes_chosen(),
        "identifiable": data["identifiable"],
        "patient_is_adult": data["patient_is_adult"],
        "signed_by_name": data["signed_by_name"],
        "representative_authority": data["representative_authority"],
        "expires_at": end,
    }


class KioskConsentForm(ConsentCaptureForm):
    """The same choices, checks and signature as the staff form, worded for the patient
    holding the tablet; a scanned paper form is for staff to attach, so it is not offered."""

    document = None
    patient_is_adult = yes_no(_("Is the patient (the person in the photos) 18 or older?"))

    def clean(self):
        data = forms.Form.clean(self)
        if not data.get("signature_data") and not self.errors:
            raise forms.ValidationError(_("Sign in the signature box."))
        return data


# --- the patient's own page ------------------------------------------------------------

# The uses in the patient's words, as their page lists them.
PATIENT_SCOPE_LABELS = {
    "allow_website": _("The clinic's website gallery"),
    "allow_social": _("The clinic's social media"),
    "allow_print": _("Printed material in the clinic"),
    "allow_education": _("Education and training of health professionals"),
}


def same_name(typed: str, name: str) -> bool:
    """Whether a typed name is this name, forgiving case, accents, hyphens and spacing
    (a phone keyboard may not offer "é"; "Anne-Marie" and "anne marie" are one person)."""

    def plain(value: str) -> str:
        value = unicodedata.normalize("NFKD", value)
        value = "".join(c for c in value if not unicodedata.combining(c))
        return " ".join(value.casefold().replace("-", " ").split())

    return bool(plain(typed)) and plain(typed) == plain(name)


class PatientChoicesForm(forms.Form):
    """What the patient keeps of the consent in force, on their own page.

    Each use they allowed is a ticked box they may untick; a use they did not allow is
    not offered here: the link can be forwarded, so it may narrow a consent and renew it,
    never widen it (a wider consent is signed with the clinic). The patient confirms by
    typing their name as the clinic has it (or the name of the representative who signed
    the consent in force)."""

    replaces = forms.IntegerField(widget=forms.HiddenInput)
    signed_by_name = forms.CharField(
        label=_("Your full name"),
        max_length=200,
        help_text=_("Type your name to confirm that this is your decision."),
        error_messages={"required": _("Type your full name.")},
        widget=forms.TextInput(attrs={"autocomplete": "name", "autocapitalize": "words"}),
    )

    def __init__(self, *args, consent: Consent, **kwargs):
        super().__init__(*args, initial={"replaces": consent.pk}, **kwargs)
        self.consent = consent
        self.uses = []
        for name in SCOPE_FIELDS:
            if getattr(consent, name):
                self.fields[name] = forms.BooleanField(
                    label=PATIENT_SCOPE_LABELS[name], required=False, initial=True
                )
                self.uses.append(self[name])
        self.identifiable = None
        if consent.identifiable:
            self.fields["identifiable"] = forms.BooleanField(
                label=_("Photos in which I could be recognised"),
                help_text=_(
                    "Untick to allow only cropped photos that show no face or identifying feature."
                ),
                required=False,
                initial=True,
            )
            self.identifiable = self["identifiable"]
        self.not_allowed = [
            PATIENT_SCOPE_LABELS[name] for name in SCOPE_FIELDS if not getattr(consent, name)
        ]
        self.order_fields([*SCOPE_FIELDS, "identifiable", "signed_by_name"])

    def clean_replaces(self) -> int:
        if self.cleaned_data["replaces"] != self.consent.pk:
            raise forms.ValidationError(
                _("Your consent changed since this page was opened. Check your choices again.")
            )
        return self.consent.pk

    def clean_signed_by_name(self) -> str:
        typed = self.cleaned_data["signed_by_name"].strip()
        if same_name(typed, self.consent.patient.full_name) or same_name(
            typed, self.consent.signed_by_name
        ):
            return typed
        raise forms.ValidationError(
            _("Type your full name as the clinic has it, as in the greeting on your page.")
        )

    def chosen(self) -> dict[str, bool]:
        """The new consent's scope: what the patient kept (never more than it had)."""
        data = self.cleaned_data
        kept = {name: bool(data.get(name)) and getattr(self.consent, name) for name in SCOPE_FIELDS}
        kept["identifiable"] = bool(data.get("identifiable")) and self.consent.identifiable
        return kept

    def clean(self):
        data = super().clean()
        if not self.errors and not any(self.chosen()[name] for name in SCOPE_FIELDS):
            raise forms.ValidationError(
                _("Keep at least one use ticked. To stop every use, withdraw your consent instead.")
            )
        return data

    def consent_fields(self) -> dict:
        """The fields of the new consent, for ``record_consent``."""
        signer = self.cleaned_data["signed_by_name"]
        patient_signs = same_name(signer, self.consent.patient.full_name)
        return {
            **self.chosen(),
            "patient_is_adult": self.consent.patient_is_adult,
            "signed_by_name": signer,
            "representative_authority": (
                "" if patient_signs else self.consent.representative_authority
            ),
        }


class PatientNarrowForm(PatientChoicesForm):
    def clean(self):
        data = super().clean()
        if not self.errors:
            chosen = self.chosen()
            if all(chosen[name] == getattr(self.consent, name) for name in chosen):
                raise forms.ValidationError(
                    _("Nothing is changed: untick what you want to stop, or go back.")
                )
        return data


class PatientRenewalForm(PatientChoicesForm):
    signature_data = forms.CharField(
        widget=forms.HiddenInput,
        required=False,
    )

    def clean_signature_data(self) -> bytes:
        png = read_signature(self.cleaned_data.get("signature_data") or "")
        if png is None:
            raise forms.ValidationError(_("Your signature is missing: sign in the box."))
        return png
