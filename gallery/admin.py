"""The admin is one more door to the same functions the staff pages use.

Workflow fields are read-only; publish, unpublish, archive and the rest are admin actions
that call ``gallery.workflow``; photos enter through the upload pipeline; nothing is
deleted here (archive instead; a patient's photos are erased through the take-down path,
see ``gallery/erasure.py``). Who may change a case follows ``workflow.can_edit``, as on
the staff pages. After any save, public storage, the listing and cached pages are brought
in step with the rule.
"""

from django import forms
from django.contrib import admin, messages
from django.db import transaction

from consent.models import Consent
from gallery import workflow
from gallery.forms import CaseForm, set_up_treated_by
from gallery.images import PhotoRejected
from gallery.models import (
    Case,
    Concern,
    Location,
    Photo,
    Practitioner,
    Treatment,
    TreatmentSession,
    record_facts,
    sessions_from_facts,
)
from gallery.publication import add_photo, build_case_renditions, sync_public_files


def _sync_after_commit(case_id: int) -> None:
    transaction.on_commit(lambda: sync_public_files(case_id))


@admin.register(Treatment)
class TreatmentAdmin(admin.ModelAdmin):
    # Saving starts a new publication generation (gallery/receivers.py): cached pages
    # never keep an old name or FAQ.
    list_display = ["name", "slug", "min_weeks_after", "prescription_only"]
    prepopulated_fields = {"slug": ["name"]}

    def has_delete_permission(self, request, obj=None):
        in_use = obj is not None and obj.cases.exists()
        return not in_use and super().has_delete_permission(request, obj)


class InUseKept(admin.ModelAdmin):
    """Locations and practitioners are named on public pages: saving one renews the
    reference data and cached pages, and a location's country change brings its cases in
    step with its new rules (gallery/receivers.py). One that cases name is never deleted."""

    def has_delete_permission(self, request, obj=None):
        in_use = obj is not None and obj.cases.exists()
        return not in_use and super().has_delete_permission(request, obj)


@admin.register(Location)
class LocationAdmin(InUseKept):
    list_display = ["name", "slug", "country", "booking_url"]
    list_filter = ["country"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "slug"]


@admin.register(Practitioner)
class PractitionerAdmin(InUseKept):
    list_display = ["name", "slug", "credentials", "registration_number"]
    list_filter = ["locations"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "slug", "registration_number"]
    filter_horizontal = ["locations"]


@admin.register(Concern)
class ConcernAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def has_delete_permission(self, request, obj=None):
        in_use = obj is not None and obj.cases.exists()
        return not in_use and super().has_delete_permission(request, obj)


class PhotoInline(admin.TabularInline):
    model = Photo
    extra = 0
    fields = ["role", "view", "taken_at", "width", "height", "sha256", "rendered_at", "alt_text"]
    readonly_fields = ["role", "view", "taken_at", "width", "height", "sha256", "rendered_at"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # photos enter through the upload pipeline, which validates them

    def has_change_permission(self, request, obj=None):
        return obj is not None and workflow.can_edit(request.user, obj)


class PhotoUploadForm(forms.ModelForm):
    """Adding a photo in the admin goes through the same pipeline as a web upload, and
    only to a case this user may edit."""

    upload = forms.FileField(label="Photo (JPEG, PNG, WebP or HEIC)")

    class Meta:
        model = Photo
        fields = ["case", "role", "view"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["case"].queryset = workflow.editable_cases(user)

    def clean(self):
        data = super().clean()
        upload, case = data.get("upload"), data.get("case")
        if case is not None and not workflow.can_edit(self.user, case):
            raise forms.ValidationError("You cannot add photos to this case.")
        if upload and case and data.get("role") and data.get("view"):
            try:
                self.instance = add_photo(case, data["role"], data["view"], upload, upload.name)
            except PhotoRejected as refusal:
                raise forms.ValidationError(refusal.message) from None
        return data


@admin.register(Photo)
class PhotoAdmin(admin.ModelAdmin):
    list_display = ["__str__", "case", "role", "view", "width", "height", "rendered_at"]
    list_filter = ["role", "view"]
    search_fields = ["case__public_id", "sha256"]
    # Crops are edited in the staff pair editor, which keeps both photos of a pair the
    # same shape; here they are shown only.
    fields = [
        "case",
        "role",
        "view",
        "original_format",
        "sha256",
        "width",
        "height",
        "taken_at",
        "alt_text",
        "crop_left",
        "crop_top",
        "crop_width",
        "crop_height",
        "rendered_at",
        "public_key",
    ]
    readonly_fields = [f for f in fields if f != "alt_text"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = PhotoUploadForm
            kwargs["fields"] = ["case", "role", "view", "upload"]
            form = super().get_form(request, obj, **kwargs)

            class WithUser(form):
                def __init__(self, *args, **inner):
                    super().__init__(*args, user=request.user, **inner)

            return WithUser
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ["case", "role", "view", "upload"] if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or workflow.can_edit(request.user, obj.case))

    def has_delete_permission(self, request, obj=None):
        return False  # removal goes through the staff page, which deletes files after commit

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            _sync_after_commit(obj.case_id)
            return
        # The form's clean() stored the photo through the pipeline; render its pair.
        case_id, view = obj.case_id, obj.view
        transaction.on_commit(lambda: build_case_renditions.enqueue(case_id, view))


class SessionInline(admin.TabularInline):
    """The treatment records, shown only: they are entered on the staff case form, which
    checks them against the treatment and the after photo."""

    model = TreatmentSession
    extra = 0
    fields = ["performed_on", "device", "zone_settings"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("zones")

    @admin.display(description="zones")
    def zone_settings(self, session: TreatmentSession) -> str:
        return ", ".join(str(z) for z in session.zones.all())


# A case added here brings its facts typed, as an import manifest does; they become
# session records (``sessions_from_facts``). Afterwards they are derived, so shown only.
TYPED_FACTS = [
    "needle_depth_mm",
    "session_count",
    "session_interval_weeks",
    "weeks_after_last_session",
]


class CaseAdminForm(forms.ModelForm):
    class Meta:
        model = Case
        fields = ["patient", *CaseForm.Meta.fields, *TYPED_FACTS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        set_up_treated_by(self)
        if "consent" in self.fields:
            self.fields["consent"].queryset = Consent.objects.active().select_related("patient")
            self.fields["consent"].label_from_instance = lambda c: (
                f"{c.patient.reference}: signed {c.signed_at:%d %b %Y}, "
                f"until {c.expires_at:%d %b %Y}"
            )

    def clean(self):
        data = super().clean()
        patient = data.get("patient") or getattr(self.instance, "patient", None)
        consent = data.get("consent")
        if consent is not None and patient is not None and consent.patient_id != patient.pk:
            self.add_error("consent", "Choose the consent in force of this case's patient.")
        if consent is not None and not consent.identifiable and not data.get("deidentified"):
            self.add_error(
                "deidentified",
                "This patient allowed only de-identified photos: tick this box once the "
                "photos show no face or identifying feature.",
            )
        return data


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    form = CaseAdminForm
    list_display = [
        "public_id",
        "treatment",
        "fitzpatrick",
        "status",
        "is_public_display",
        "why_not_public",
    ]
    list_filter = ["status", "treatment", "location", "practitioner", "fitzpatrick", "is_demo"]
    search_fields = ["public_id", "patient__reference"]
    autocomplete_fields = ["patient"]
    filter_horizontal = ["concerns"]
    readonly_fields = [
        "public_id",
        "status",
        "reviewed_by",
        "published_at",
        "review_comment",
        "check_override",
        "created_by",
    ]
    inlines = [SessionInline, PhotoInline]
    actions = ["submit", "publish", "unpublish", "archive", "reopen"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("treatment", "consent", "location")
            .prefetch_related("photos")
        )

    def get_readonly_fields(self, request, obj=None):
        # The patient of an existing case never changes; its consent may be renewed.
        if obj is None:
            return self.readonly_fields
        return self.readonly_fields + ["patient", *TYPED_FACTS, "last_session_on"]

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or workflow.can_edit(request.user, obj))

    def has_delete_permission(self, request, obj=None):
        return False  # archive instead; erasing a patient's photos is its own audited path

    def has_publish_permission(self, request):
        return request.user.has_perm("gallery.publish_case")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
            obj.status = Case.Status.DRAFT
        super().save_model(request, obj, form, change)
        _sync_after_commit(obj.pk)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        case = form.instance
        if not change:
            sessions_from_facts(
                case,
                needle_depth_mm=case.needle_depth_mm,
                session_count=case.session_count,
                session_interval_weeks=case.session_interval_weeks,
                weeks_after_last_session=case.weeks_after_last_session,
            )
        else:
            record_facts(case)  # the entered weeks after may have changed

    @admin.display(boolean=True, description="public")
    def is_public_display(self, case: Case) -> bool:
        return case.is_public

    @admin.display(description="why not public")
    def why_not_public(self, case: Case) -> str:
        return " ".join(case.publication_problems())

    def _each(self, request, queryset, action: str, run) -> None:
        done = 0
        for case in queryset.select_related("consent", "treatment"):
            try:
                run(case, request.user)
            except workflow.WorkflowError as error:
                self.message_user(
                    request, f"{case.public_id}: {' '.join(error.problems)}", messages.ERROR
                )
            else:
                done += 1
        if done:
            label = workflow.TRANSITIONS[action].label.lower()
            self.message_user(request, f"{label.capitalize()}: {done} case(s).", messages.SUCCESS)

    @admin.action(description="Submit for review", permissions=["change"])
    def submit(self, request, queryset):
        self._each(request, queryset, "submit", workflow.submit_for_review)

    @admin.action(description="Approve and publish", permissions=["publish"])
    def publish(self, request, queryset):
        # No written override here: a case with comparability warnings is refused, and
        # the reviewer publishes it from its staff page, where the reason is written.
        self._each(request, queryset, "publish", workflow.publish)

    @admin.action(description="Unpublish (back to review)", permissions=["publish"])
    def unpublish(self, request, queryset):
        self._each(request, queryset, "unpublish", workflow.unpublish)

    @admin.action(description="Archive", permissions=["publish"])
    def archive(self, request, queryset):
        self._each(request, queryset, "archive", workflow.archive)

    @admin.action(description="Reopen as a draft", permissions=["publish"])
    def reopen(self, request, queryset):
        self._each(request, queryset, "reopen", workflow.reopen)
