from datetime import date

from django import forms
from django.forms.utils import ErrorDict
from django.utils import timezone

from consent.models import Consent
from gallery.models import (
    FITZPATRICK_CHOICES,
    FITZPATRICK_INFO,
    Case,
    Concern,
    Location,
    Photo,
    Practitioner,
    SessionRecord,
    SessionZone,
    Treatment,
    TreatmentSession,
    ZoneRecord,
    replace_sessions,
)


class FitzpatrickWidget(forms.RadioSelect):
    template_name = "staff/widgets/fitzpatrick.html"

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        for group in context["widget"]["optgroups"]:
            for option in group[1]:
                number = int(option["value"])
                option["description"], option["swatch"] = FITZPATRICK_INFO[number]
        return context


class CaseForm(forms.ModelForm):
    """Every fact of a case, with widgets that work with a finger on a tablet."""

    # The form's parts, in order, as the page shows them.
    SECTIONS = [
        ("Patient", ["consent"]),
        ("Treatment and skin", ["treatment", "concerns", "body_area", "fitzpatrick", "skin_type"]),
        # The sessions themselves come first in this section (``SessionEntries``).
        ("Sessions", ["weeks_after_entered", "zone_depths"]),
        ("Practitioner", ["location", "practitioner", "device"]),
        ("Notes", ["aftercare_notes", "side_effects_notes", "testimonial"]),
        ("Photos in the gallery", ["deidentified", "sensitive"]),
    ]

    class Meta:
        model = Case
        fields = [
            "consent",
            "treatment",
            "concerns",
            "body_area",
            "fitzpatrick",
            "skin_type",
            "weeks_after_entered",
            "zone_depths",
            "location",
            "practitioner",
            "device",
            "aftercare_notes",
            "side_effects_notes",
            "testimonial",
            "deidentified",
            "sensitive",
        ]
        widgets = {
            "treatment": forms.RadioSelect,
            "concerns": forms.CheckboxSelectMultiple,
            "fitzpatrick": FitzpatrickWidget,
            "skin_type": forms.RadioSelect,
            "weeks_after_entered": forms.NumberInput(
                attrs={"min": 0, "max": 520, "inputmode": "numeric"}
            ),
            "aftercare_notes": forms.Textarea(attrs={"rows": 3}),
            "side_effects_notes": forms.Textarea(attrs={"rows": 3}),
            "testimonial": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, patient, after_photo_on: date | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.patient = patient
        self.after_photo_on = after_photo_on
        self.instance.patient = patient
        # Only the patient's own consents that are in force can be chosen.
        self.fields["consent"].queryset = Consent.objects.active().filter(patient=patient)
        self.fields["consent"].empty_label = None
        self.fields["consent"].label_from_instance = lambda c: (
            f"Signed {c.signed_at:%d %b %Y}, until {c.expires_at:%d %b %Y}: "
            f"{', '.join(c.scopes()) or 'no use'}"
            f"{'' if c.identifiable else ' (de-identified photos only)'}"
        )
        self.fields["fitzpatrick"].choices = FITZPATRICK_CHOICES
        self.fields["concerns"].queryset = Concern.objects.order_by("name")
        self.fields["treatment"].empty_label = None
        # Radio buttons need no empty choice: no button checked is the empty answer.
        self.fields["skin_type"].choices = Case.SkinType.choices
        set_up_treated_by(self)

    def sections(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [(title, [self[name] for name in names]) for title, names in self.SECTIONS]

    def clean(self):
        data = super().clean()
        consent = data.get("consent")
        if consent and not consent.identifiable and not data.get("deidentified"):
            self.add_error(
                "deidentified",
                "This patient allowed only de-identified photos: crop out the face and any "
                "identifying feature, then tick this box.",
            )
        if self.after_photo_on is None and data.get("weeks_after_entered") is None:
            self.add_error(
                "weeks_after_entered",
                "Enter how many weeks after the last session the after photo was taken "
                "(the after photo has no capture date to count them from).",
            )
        return data


def set_up_treated_by(form: forms.ModelForm) -> None:
    """The location and practitioner fields: each practitioner labelled with where they
    work (the model's ``clean`` refuses one who does not work at the chosen location), and
    the only location chosen for a clinic that has one."""
    locations = list(Location.objects.order_by("name"))
    if "location" in form.fields:
        form.fields["location"].queryset = Location.objects.order_by("name")
        form.fields["location"].empty_label = "Choose the location"
        if len(locations) == 1 and not form.instance.location_id:
            form.fields["location"].initial = locations[0].pk
            form.fields["location"].empty_label = None
    if "practitioner" in form.fields:
        form.fields["practitioner"].queryset = Practitioner.objects.prefetch_related(
            "locations"
        ).order_by("name")
        form.fields["practitioner"].empty_label = "Choose the practitioner"
        form.fields["practitioner"].label_from_instance = lambda p: (
            f"{p.line()} ({', '.join(loc.name for loc in p.locations.all()) or 'no location'})"
        )


class SessionForm(forms.ModelForm):
    class Meta:
        model = TreatmentSession
        fields = ["performed_on", "device"]
        widgets = {"performed_on": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}

    def clean_performed_on(self):
        day = self.cleaned_data["performed_on"]
        if day > timezone.localdate():
            raise forms.ValidationError("A session cannot be in the future.")
        return day


class ZoneForm(forms.ModelForm):
    class Meta:
        model = SessionZone
        fields = ["zone", "needle_depth_mm", "rf_energy", "rf_passes"]
        labels = {"needle_depth_mm": "Depth (mm)", "rf_energy": "RF energy", "rf_passes": "Passes"}
        help_texts = {"rf_energy": ""}
        widgets = {
            "needle_depth_mm": forms.NumberInput(
                attrs={"step": "0.05", "min": "0.1", "max": "4", "inputmode": "decimal"}
            ),
            "rf_energy": forms.NumberInput(attrs={"min": 1, "max": 100, "inputmode": "numeric"}),
            "rf_passes": forms.NumberInput(attrs={"min": 1, "max": 10, "inputmode": "numeric"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["zone"].choices = [("", "Choose a zone"), *SessionZone.Zone.choices]


class BaseSessionFormSet(forms.BaseFormSet):
    default_error_messages = {
        **forms.BaseFormSet.default_error_messages,
        "too_few_forms": "Record at least one session.",
        "too_many_forms": "At most %(num)d sessions.",
    }


class BaseZoneFormSet(forms.BaseFormSet):
    default_error_messages = {
        **forms.BaseFormSet.default_error_messages,
        "too_few_forms": "Record at least one zone with its needle depth.",
        "too_many_forms": "Each zone once per session: at most %(num)d.",
    }

    @property
    def empty_form(self):
        # Its own placeholder, so that a page script can fill a new session's number and
        # a new zone's number into one name ("sessions-__prefix__-zones-__zone__-…").
        form = self.form(
            **self.get_form_kwargs(None),
            auto_id=self.auto_id,
            prefix=self.add_prefix("__zone__"),
            empty_permitted=True,
            use_required_attribute=False,
            renderer=self.form_renderer,
        )
        self.add_fields(form, None)
        return form

    def clean(self):
        zones = [
            f.cleaned_data.get("zone")
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        if len(zones) != len(set(zones)):
            raise forms.ValidationError("Each zone once per session: one depth for each.")


SessionFormSet = forms.formset_factory(
    SessionForm,
    formset=BaseSessionFormSet,
    extra=1,
    can_delete=True,
    min_num=1,
    validate_min=True,
    max_num=30,
    validate_max=True,
    # A tampered TOTAL_FORMS builds no more forms than a case may hold (Django's default
    # allows a thousand more, each with its own zones).
    absolute_max=30,
)
ZoneFormSet = forms.formset_factory(
    ZoneForm,
    formset=BaseZoneFormSet,
    extra=1,
    can_delete=True,
    min_num=1,
    validate_min=True,
    max_num=len(SessionZone.Zone.choices),
    validate_max=True,
    absolute_max=len(SessionZone.Zone.choices),
)


def _silence(formset: forms.BaseFormSet) -> None:
    for form in formset.forms:
        form._errors, form.cleaned_data = ErrorDict(), {}
    formset._errors, formset._non_form_errors = [], formset.error_class()


class SessionEntries:
    """The case's sessions on the staff form: a formset of sessions (date, device), each
    with a formset of zones (needle depth; RF energy and passes for RF microneedling).
    Saving replaces the case's records with what the form holds (session rows have no
    identity of their own worth keeping, and a swap of two dates cannot collide)."""

    prefix = "sessions"

    def __init__(self, data=None, case: Case | None = None):
        initial, zone_initial = [], []
        # Posted forms are read as they stand (no initial to compare with): a filled
        # session is a session whatever the management form claims.
        if data is None and case is not None and case.pk:
            for session in case.sessions.prefetch_related("zones"):
                initial.append({"performed_on": session.performed_on, "device": session.device})
                zone_initial.append(
                    [
                        {
                            "zone": z.zone,
                            "needle_depth_mm": z.needle_depth_mm,
                            "rf_energy": z.rf_energy,
                            "rf_passes": z.rf_passes,
                        }
                        for z in session.zones.all()
                    ]
                )
        self.sessions = SessionFormSet(data, initial=initial, prefix=self.prefix)
        # A new case starts with one blank session; an existing one offers one more.
        self.sessions.extra = 1 if case is not None and case.pk else 0
        self.zones = [
            ZoneFormSet(
                data,
                initial=zone_initial[n] if n < len(zone_initial) else None,
                prefix=f"{form.prefix}-zones",
            )
            for n, form in enumerate(self.sessions.forms)
        ]
        self.records: list[SessionRecord] = []
        self.refused = False  # checked, and something needs a fix

    def rows(self) -> list[tuple[forms.Form, forms.BaseFormSet]]:
        return list(zip(self.sessions.forms, self.zones, strict=True))

    def empty(self) -> tuple[forms.Form, forms.BaseFormSet]:
        """The blank session a page script adds, with its own blank zone rows."""
        form = self.sessions.empty_form
        return form, ZoneFormSet(prefix=f"{form.prefix}-zones")

    def _kept(self, n: int, form: forms.Form) -> bool:
        # A blank extra session is no session; an existing one stays unless removed.
        if form.cleaned_data.get("DELETE"):
            return False
        return n < self.sessions.initial_form_count() or form.has_changed()

    def is_valid(self, treatment: Treatment | None, after_photo_on: date | None) -> bool:
        self.refused = not self._check(treatment, after_photo_on)
        return not self.refused

    def _check(self, treatment: Treatment | None, after_photo_on: date | None) -> bool:
        valid = self.sessions.is_valid()
        kept = []
        for n, (form, zones) in enumerate(self.rows()):
            if form.is_valid() and not self._kept(n, form):
                _silence(zones)  # a blank or removed session's zones ask for nothing
                continue
            kept.append((form, zones))
            valid = zones.is_valid() and valid
        if not valid:
            return False
        if not kept:
            self.sessions._non_form_errors = self.sessions.error_class(
                ["Record at least one session."]
            )
            return False
        days = [form.cleaned_data["performed_on"] for form, _ in kept]
        if len(days) != len(set(days)):
            self.sessions._non_form_errors = self.sessions.error_class(
                ["Two sessions on the same day: record them as one session with its zones."]
            )
            return False
        rf = treatment is not None and treatment.uses_rf
        for form, zones in kept:
            day = form.cleaned_data["performed_on"]
            if after_photo_on is not None and day > after_photo_on:
                form.add_error(
                    "performed_on",
                    f"The after photo was taken on {after_photo_on:%d %b %Y}: a session "
                    "after it cannot be part of this result.",
                )
                valid = False
            records = []
            for zone_form in zones.forms:
                data = zone_form.cleaned_data
                if not data or data.get("DELETE"):
                    continue
                if not rf:
                    for name in ("rf_energy", "rf_passes"):
                        if data.get(name) is not None:
                            zone_form.add_error(name, "Only RF microneedling records this.")
                            valid = False
                records.append(
                    ZoneRecord(
                        data["zone"],
                        data["needle_depth_mm"],
                        data.get("rf_energy"),
                        data.get("rf_passes"),
                    )
                )
            if not records:
                zones._non_form_errors = zones.error_class(["Record at least one zone."])
                valid = False
            self.records.append(SessionRecord(day, form.cleaned_data["device"], tuple(records)))
        return valid

    def save(self, case: Case) -> None:
        """Replace the case's session records with the form's and derive its facts (call
        inside the transaction that saves the case)."""
        replace_sessions(case, self.records)


class PhotoUploadForm(forms.Form):
    file = forms.FileField()
    role = forms.ChoiceField(choices=Photo.Role.choices)
    view = forms.ChoiceField(choices=Photo.View.choices)


def _float_from(low: float, high: float, message: str) -> forms.FloatField:
    """A required number from ``low`` to ``high``; a missing, invalid or out-of-range value
    gets the one ``message``."""
    keys = ("required", "invalid", "min_value", "max_value")
    return forms.FloatField(
        min_value=low, max_value=high, error_messages=dict.fromkeys(keys, message)
    )


class CropForm(forms.Form):
    """Zoom, centre and turn of one photo's crop; the shape is the pair's common aspect.

    ``turn`` is how the photo turns in the editor's frame, as staff see it: degrees
    clockwise, negative anticlockwise. The crop turns the other way on the original, so
    the cleaned ``rotation`` (as ``Photo.rotation``) is its opposite; None, when no turn
    was sent, keeps the photo's own. ``limit`` is ``publication.rotation_limit``."""

    zoom = _float_from(1.0, 4.0, "the zoom must be from 1 to 4")
    centre_x = _float_from(0.0, 1.0, "the centre must be inside the photo (0 to 1 across)")
    centre_y = _float_from(0.0, 1.0, "the centre must be inside the photo (0 to 1 down)")
    turn = forms.FloatField(required=False)

    def __init__(self, *args, limit: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.limit = limit
        self.fields["turn"].error_messages["invalid"] = self._turn_message()

    def _turn_message(self) -> str:
        return f"the turn must be a number of degrees from −{self.limit:g} to {self.limit:g}"

    def clean_turn(self) -> float | None:
        turn = self.cleaned_data["turn"]
        if turn is not None and abs(turn) > self.limit:
            raise forms.ValidationError(self._turn_message())
        return turn

    def clean(self):
        cleaned = super().clean()
        turn = cleaned.get("turn")
        cleaned["rotation"] = None if turn is None else -turn
        return cleaned

    def problem(self) -> str:
        """The form's errors in one sentence, for a message after the redirect."""
        return "; ".join(e for errors in self.errors.values() for e in errors)
