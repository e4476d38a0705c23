"""The audit trail in the admin: Django's LogEntry rows, read-only."""

from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import CharField
from django.db.models.functions import Cast
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from keys.models import ApiKey
from teams.admin import administered_ids, visible_ids

ACTION_NAMES = {ADDITION: "added", CHANGE: "changed", DELETION: "deleted"}


@admin.register(LogEntry)
class LogEntryAdmin(admin.ModelAdmin):
    list_display = ("action_time", "user", "content_type", "object_link", "action", "change_message_display")
    # Only the users and types that appear in the rows this user may see, not every account of the site.
    list_filter = (("user", admin.RelatedOnlyFieldListFilter), ("content_type", admin.RelatedOnlyFieldListFilter),
                   "action_flag")  # fmt: skip
    search_fields = ("object_repr", "change_message", "user__username")
    date_hierarchy = "action_time"
    ordering = ("-action_time",)
    list_select_related = ("user", "content_type")
    fields = ("action_time", "user", "content_type", "object_id", "object_repr", "action", "change_message_display")
    readonly_fields = fields

    def get_queryset(self, request):
        """Entries about objects of a type this user may view: the trail shows names and old → new values.

        A team's admin or member sees only entries about the keys of the teams they administer (never about
        another team, a model, an alias or a user), whatever else their permissions say."""
        queryset = super().get_queryset(request)
        if request.user.is_superuser or not self.has_view_permission(request):
            return queryset  # nothing to narrow: every view refuses a user without the permission (a 403)
        if visible_ids(request):
            keys = ApiKey.objects.filter(team__in=administered_ids(request)).values(text_pk=Cast("pk", CharField()))
            return queryset.filter(content_type=ContentType.objects.get_for_model(ApiKey), object_id__in=keys)
        visible = [
            content_type.pk
            for content_type in ContentType.objects.all()
            if request.user.has_perm(f"{content_type.app_label}.view_{content_type.model}")
            or request.user.has_perm(f"{content_type.app_label}.change_{content_type.model}")
        ]
        return queryset.filter(content_type__in=visible)

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
