"""The audit trail in the admin: Django's LogEntry rows, read-only."""

from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

ACTION_NAMES = {ADDITION: "added", CHANGE: "changed", DELETION: "deleted"}


@admin.register(LogEntry)
class LogEntryAdmin(admin.ModelAdmin):
    list_display = ("action_time", "user", "content_type", "object_link", "action", "change_message_display")
    list_filter = ("user", "content_type", "action_flag")
    search_fields = ("object_repr", "change_message", "user__username")
    date_hierarchy = "action_time"
    ordering = ("-action_time",)
    list_select_related = ("user", "content_type")
    fields = ("action_time", "user", "content_type", "object_id", "object_repr", "action", "change_message_display")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # an audit trail nobody can edit from the admin

    @admin.display(description="action", ordering="action_flag")
    def action(self, entry: LogEntry) -> str:
        return ACTION_NAMES.get(entry.action_flag, str(entry.action_flag))

    @admin.display(description="change message")
    def change_message_display(self, entry: LogEntry) -> str:
        return entry.get_change_message()

    @admin.display(description="object", ordering="object_repr")
    def object_link(self, entry: LogEntry) -> str:
        if entry.action_flag == DELETION or entry.content_type is None:
            return entry.object_repr
        try:
            url = reverse(
                f"admin:{entry.content_type.app_label}_{entry.content_type.model}_change", args=[entry.object_id]
            )
        except NoReverseMatch:
            return entry.object_repr
        return format_html('<a href="{}">{}</a>', url, entry.object_repr)
