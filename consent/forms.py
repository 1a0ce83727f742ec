import base64
import binascii
import io
from datetime import timedelta

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from consent.models import Patient

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
            raise forms.ValidationError("The end date must be in the future.")
        if value > timezone.localdate() + timedelta(days=366 * 10):
            raise forms.ValidationError("A consent can last at most ten years.")
        return value

    def clean_signature_data(self) -> bytes | None:
        raw = self.cleaned_data.get("signature_data") or ""
        if not raw:
            return None
        prefix = "data:image/png;base64,"
        if not raw.startswith(prefix) or len(raw) > 2 * 1024 * 1024:
            raise forms.ValidationError("The signature could not be read. Clear it and sign again.")
        try:
            png = base64.b64decode(raw[len(prefix) :], validate=True)
        except (binascii.Error, ValueError):
            raise forms.ValidationError(
                "The signature could not be read. Clear it and sign again."
            ) from None
        from PIL import Image

        try:
            with Image.open(io.BytesIO(png), formats=["PNG"]) as im:
                im.load()
                alpha = im.convert("RGBA").getchannel("A")
                if im.width * im.height > 4_000_000 or alpha.getbbox() is None:
                    raise ValueError
        except Exception:
            raise forms.ValidationError("The signature pad is empty. Sign in the box.") from None
        return png

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
                "Sign in the signature box, or attach the scanned signed form."
            )
        return data

    def scopes_chosen(self) -> dict:
        return {name: self.cleaned_data[name] for name in SCOPE_FIELDS}


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
