from django.contrib import admin
from django.urls import path

from api.api import api

admin.site.site_header = "llmproxy administration"
admin.site.site_title = "llmproxy"
admin.site.index_title = "Keys, models and aliases"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", api.urls),
]
