from django import forms
from django.contrib import admin

from gallery.images import PhotoRejected
from gallery.models import Case, Concern, Photo, Treatment
from gallery.publication import add_photo, build_case_renditions


@admin.register(Treatment)
class TreatmentAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "min_weeks_after"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Concern)
class ConcernAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


class PhotoInline(admin.TabularInline):
    model = Photo
    extra = 0
    fields = ["role", "view", "taken_at", "width", "height", "sha256", "rendered_at", "alt_text"]
    readonly_fields = ["taken_at", "width", "height", "sha256", "rendered_at"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # photos enter through the upload pipeline, which validates them


class PhotoUploadForm(forms.ModelForm):
    """Adding a photo in the admin goes through the same pipeline as a web upload."""

    upload = forms.FileField(label="Photo (JPEG, PNG, WebP or HEIC)")

    class Meta:
        model = Photo
        fields = ["case", "role", "view"]

    def clean(self):
        data = super().clean()
        upload = data.get("upload")
        if upload and data.get("case") and data.get("role") and data.get("view"):
            try:
                self.instance = add_photo(
                    data["case"], data["role"], data["view"], upload, upload.name
                )
            except PhotoRejected as refusal:
                raise forms.ValidationError(refusal.message) from None
        return data


@admin.register(Photo)
class PhotoAdmin(admin.ModelAdmin):
    list_display = ["__str__", "case", "role", "view", "width", "height", "rendered_at"]
    list_filter = ["role", "view"]
    search_fields = ["case__public_id", "sha256"]
    readonly_fields = [
        "case",
        "role",
        "view",
        "original_format",
        "sha256",
        "width",
        "height",
        "taken_at",
        "rendered_at",
        "public_key",
    ]
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

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = PhotoUploadForm
            kwargs["fields"] = ["case", "role", "view", "upload"]
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ["case", "role", "view", "upload"] if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            if {"crop_left", "crop_top", "crop_width", "crop_height"} & set(form.changed_data):
                build_case_renditions.enqueue(obj.case_id)
        # A new photo was stored by the form's clean(): nothing more to save.

    def has_delete_permission(self, request, obj=None):
        return False  # removal goes through the pipeline, which deletes files after commit


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = [
        "public_id",
        "treatment",
        "fitzpatrick",
        "status",
        "is_public_display",
        "why_not_public",
    ]
    list_filter = ["status", "treatment", "fitzpatrick", "is_demo"]
    search_fields = ["public_id", "patient__reference"]
    autocomplete_fields = ["patient", "consent"]
    filter_horizontal = ["concerns"]
    readonly_fields = ["public_id", "reviewed_by", "published_at", "created_by"]
    inlines = [PhotoInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("treatment", "consent")
            .prefetch_related("photos")
        )

    @admin.display(boolean=True, description="public")
    def is_public_display(self, case: Case) -> bool:
        return case.is_public

    @admin.display(description="why not public")
    def why_not_public(self, case: Case) -> str:
        return " ".join(case.publication_problems())
