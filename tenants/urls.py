from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("organizations/switch/", views.switch_organization, name="switch-organization"),
    path("tokens/", views.api_tokens, name="api-tokens"),
    path("tokens/<uuid:pk>/revoke/", views.revoke_api_token, name="revoke-api-token"),
]
