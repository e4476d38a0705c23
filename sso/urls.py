from django.urls import path

from sso.views import SsoCallbackView, SsoLoginView

urlpatterns = [
    path("login/", SsoLoginView.as_view(), name="oidc_authentication_init"),
    path("callback/", SsoCallbackView.as_view(), name="oidc_authentication_callback"),
]
