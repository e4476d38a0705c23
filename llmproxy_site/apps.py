from django.contrib.admin.apps import AdminConfig


class LlmproxyAdminConfig(AdminConfig):
    """django.contrib.admin with our site (llmproxy_site.admin_site) as `admin.site`."""

    default_site = "llmproxy_site.admin_site.LlmproxyAdminSite"
