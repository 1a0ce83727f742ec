"""The consent records in the admin: read-only evidence.

A signed consent is never edited: a change is a new consent recorded on the capture page
(``record_consent``, with its signature or scan), which supersedes the old one. Withdrawal
is an admin action that calls ``Consent.withdraw``. Consent records are for consent
officers (``consent.change_consent``) and clinic admins: photographers and reviewers do
not see them here. The signed document is reached only through the audited view.
"""

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from consent.hooks import erase_held_records
from consent.models import Consent, ConsentEvent, ConsentForm, ConsentSuperseded, Patient


def is_consent_officer(user) -> bool:
    return user.is_active and user.has_perm("consent.change_consent")


class OfficersOnly:
    """Admin access for consent officers and clinic admins only."""

    def has_module_permission(self, request):
        return is_consent_officer(request.user) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return is_consent_officer(request.user) and super().has_view_permission(request, obj)


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["reference", "full_name", "email", "created_at"]
    search_fields = ["reference", "full_name", "email"]
    actions = ["erase"]

    def has_delete_permission(self, request, obj=None):
        return False  # a patient's photos are erased by the action; the consent trail stays

    def has_erase_permission(self, request):
        return request.user.is_superuser

    @admin.action(
        description="Erase the selected patients' photos (withdraws consent)",
        permissions=["erase"],
    )
    def erase(self, request, queryset):
        """Withdraw, take every case down, delete cases, photos and files; keep the
        consent records and their history. Asks once more before doing it."""
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(
                request,
                "admin/consent/patient/erase_confirm.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Erase these patients' photos?",
                    "patients": queryset,
                    "action": "erase",
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                    "opts": self.model._meta,
                },
            )
        for patient in queryset:
            summary = erase_held_records(patient, by=request.user)
            self.message_user(
                request,
                f"{patient.reference}: consent withdrawn; {summary} erased. "
                "The consent records and their history are kept.",
                messages.SUCCESS,
            )
        return None


@admin.register(ConsentForm)
class ConsentFormAdmin(admin.ModelAdmin):
    list_display = ["version", "title", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        # A version someone signed is evidence: it can no longer be edited.
        if obj is not None and obj.in_use:
            return ["version", "title", "body", "created_at"]
        return []

    def has_delete_permission(self, request, obj=None):
        return (obj is None or not obj.in_use) and super().has_delete_permission(request, obj)


class ConsentEventInline(admin.TabularInline):
    model = ConsentEvent
    extra = 0
    can_delete = False
    fields = ["at", "kind", "actor", "actor_label", "details"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class StandingFilter(admin.SimpleListFilter):
    title = "standing"
    parameter_name = "standing"

    def lookups(self, request, model_admin):
        return [
            ("active", "Active"),
            ("expiring", "Expiring within 30 days"),
            ("expired", "Expired"),
            ("superseded", "Superseded"),
            ("withdrawn", "Withdrawn"),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        match self.value():
            case "active":
                return queryset.active()
            case "expiring":
                return queryset.expiring_within(30)
            case "expired":
                return queryset.filter(
                    expires_at__lte=now, withdrawn_at__isnull=True, superseded_at__isnull=True
                )
            case "superseded":
                return queryset.filter(superseded_at__isnull=False)
            case "withdrawn":
                return queryset.filter(withdrawn_at__isnull=False)
        return queryset


CONSENT_FIELDS = [
    "patient",
    "form",
    "allow_website",
    "allow_social",
    "allow_print",
    "allow_education",
    "identifiable",
    "patient_is_adult",
    "language",
    "signed_text",
    "signed_at",
    "signed_by_name",
    "representative_authority",
    "signed_document",
    "expires_at",
    "recorded_by",
    "recorded_at",
    "superseded_at",
    "superseded_by",
    "withdrawn_at",
    "withdrawn_by",
    "withdrawal_channel",
]


@admin.register(Consent)
class ConsentAdmin(OfficersOnly, admin.ModelAdmin):
    list_display = [
        "patient",
        "form",
        "signed_at",
        "expires_at",
        "status",
        "allow_website",
        "identifiable",
    ]
    list_filter = [StandingFilter, "allow_website", "identifiable", "patient_is_adult", "form"]
    search_fields = ["patient__reference", "patient__full_name", "signed_by_name"]
    fields = CONSENT_FIELDS
    readonly_fields = CONSENT_FIELDS
    inlines = [ConsentEventInline]
    actions = ["withdraw_selected"]

    @admin.display(description="signed document")
    def signed_document(self, consent: Consent) -> str:
        # Never the storage URL (a presigned link on S3): the audited view records who
        # looked at the document.
        if not consent.signature:
            return "none"
        return format_html(
            '<a href="{}">View (the view is recorded)</a>',
            reverse("consent:document", args=[consent.pk]),
        )

    def has_add_permission(self, request):
        return False  # recorded on the capture page, with the signature or scan

    def has_change_permission(self, request, obj=None):
        return False  # a signed consent is evidence; a change is a new consent

    def has_delete_permission(self, request, obj=None):
        return False  # consents are evidence: withdraw, never delete

    @admin.action(description="Withdraw the selected consents", permissions=["withdraw"])
    def withdraw_selected(self, request, queryset):
        done = 0
        for consent in queryset.select_related("patient"):
            try:
                done += consent.withdraw(by=request.user, channel=Consent.Channel.ADMIN)
            except ConsentSuperseded:
                self.message_user(
                    request,
                    f"{consent}: replaced by a newer consent; withdraw the consent in force.",
                    messages.WARNING,
                )
        self.message_user(
            request,
            f"{done} consent(s) withdrawn; their cases left the public gallery.",
            messages.SUCCESS,
        )

    def has_withdraw_permission(self, request):
        return request.user.has_perm("consent.withdraw_consent")


@admin.register(ConsentEvent)
class ConsentEventAdmin(OfficersOnly, admin.ModelAdmin):
    list_display = ["at", "kind", "consent", "actor", "actor_label"]
    list_filter = ["kind"]
    readonly_fields = ["consent", "kind", "at", "actor", "actor_label", "details"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
