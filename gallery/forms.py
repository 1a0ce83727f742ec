from django import forms

from consent.models import Consent
from gallery.models import (
    FITZPATRICK_CHOICES,
    FITZPATRICK_INFO,
    Case,
    Concern,
    Location,
    Photo,
    Practitioner,
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
        (
            "Sessions",
            [
                "needle_depth_mm",
                "zone_depths",
                "session_count",
                "session_interval_weeks",
                "last_session_on",
                "weeks_after_last_session",
            ],
        ),
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
            "needle_depth_mm",
            "zone_depths",
            "session_count",
            "session_interval_weeks",
            "last_session_on",
            "weeks_after_last_session",
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
            "needle_depth_mm": forms.NumberInput(
                attrs={"step": "0.25", "min": "0.25", "max": "4", "inputmode": "decimal"}
            ),
            "session_count": forms.NumberInput(attrs={"min": 1, "max": 20, "inputmode": "numeric"}),
            "session_interval_weeks": forms.NumberInput(
                attrs={"min": 1, "max": 52, "inputmode": "numeric"}
            ),
            "weeks_after_last_session": forms.NumberInput(
                attrs={"min": 0, "max": 520, "inputmode": "numeric"}
            ),
            "last_session_on": forms.DateInput(attrs={"type": "date"}),
            "aftercare_notes": forms.Textarea(attrs={"rows": 3}),
            "side_effects_notes": forms.Textarea(attrs={"rows": 3}),
            "testimonial": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, patient, **kwargs):
        super().__init__(*args, **kwargs)
        self.patient = patient
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
        return data


def set_up_treated_by(form: forms.ModelForm) -> None:
    """The location and practitioner fields: each practitioner labelled with where they
    work (the model's ``clean`` refuses one who does not work at the chosen location), and
    the only location chosen for a clinic that has one."""
    locations = list(Location.objects.order_by("name"))
    if "location" in form.fields:
        form.fields["location"].queryset = Location.objects.order_by("name")
        if len(locations) == 1 and not form.instance.location_id:
            form.fields["location"].initial = locations[0].pk
    if "practitioner" in form.fields:
        form.fields["practitioner"].queryset = Practitioner.objects.prefetch_related(
            "locations"
        ).order_by("name")
        form.fields["practitioner"].label_from_instance = lambda p: (
            f"{p.line()} ({', '.join(loc.name for loc in p.locations.all()) or 'no location'})"
        )


class PhotoUploadForm(forms.Form):
    file = forms.FileField()
    role = forms.ChoiceField(choices=Photo.Role.choices)
    view = forms.ChoiceField(choices=Photo.View.choices)


class CropForm(forms.Form):
    """Zoom and centre of one photo's crop; the shape is the pair's common aspect."""

    zoom = forms.FloatField(min_value=1.0, max_value=4.0)
    centre_x = forms.FloatField(min_value=0.0, max_value=1.0)
    centre_y = forms.FloatField(min_value=0.0, max_value=1.0)
