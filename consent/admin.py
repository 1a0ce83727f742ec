from django.contrib import admin, messages
from django.utils import timezone

from consent.models import Consent, ConsentEvent, ConsentForm, Patient


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["reference", "full_name", "email", "created_at"]
    search_fields = ["reference", "full_name", "email"]


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
                return queryset.filter(expires_at__lte=now, withdrawn_at__isnull=True)
            case "withdrawn":
                return queryset.filter(withdrawn_at__isnull=False)
        return queryset


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
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
    autocomplete_fields = ["patient"]
    readonly_fields = ["withdrawn_at", "withdrawn_by", "withdrawal_channel", "recorded_at"]
    inlines = [ConsentEventInline]
    actions = ["withdraw_selected"]

    def has_delete_permission(self, request, obj=None):
        return False  # consents are evidence: withdraw, never delete

    @admin.action(description="Withdraw the selected consents", permissions=["withdraw"])
    def withdraw_selected(self, request, queryset):
        done = sum(c.withdraw(by=request.user, channel=Consent.Channel.ADMIN) for c in queryset)
        self.message_user(
            request,
            f"{done} consent(s) withdrawn; their cases left the public gallery.",
            messages.SUCCESS,
        )

    def has_withdraw_permission(self, request):
        return request.user.has_perm("consent.withdraw_consent")

    def save_model(self, request, obj, form, change):
        if not change and obj.recorded_by_id is None:
            obj.recorded_by = request.user
        super().save_model(request, obj, form, change)
        if not change:
            ConsentEvent.record(obj, ConsentEvent.Kind.GRANTED, actor=request.user)


@admin.register(ConsentEvent)
class ConsentEventAdmin(admin.ModelAdmin):
    list_display = ["at", "kind", "consent", "actor", "actor_label"]
    list_filter = ["kind"]
    readonly_fields = ["consent", "kind", "at", "actor", "actor_label", "details"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
