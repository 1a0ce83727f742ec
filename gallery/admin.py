from django.contrib import admin

from gallery.models import Case, Concern, Photo, Treatment


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
