from django.contrib import admin

from lockout.models import FailedLogin


@admin.register(FailedLogin)
class FailedLoginAdmin(admin.ModelAdmin):
    """Failed admin logins of the current window. Deleting a user's rows lifts their lockout."""

    list_display = ("attempted_at", "username", "ip_address")
    list_filter = ("attempted_at",)
    search_fields = ("username", "ip_address")
    readonly_fields = ("attempted_at", "username", "ip_address")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
