from django.urls import path

from . import views

urlpatterns = [
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/logout/", views.SignOutView.as_view(), name="logout"),
    path("organizations/switch/", views.switch_organization, name="switch-organization"),
    path("tokens/", views.api_tokens, name="api-tokens"),
    path("tokens/<uuid:pk>/revoke/", views.revoke_api_token, name="revoke-api-token"),
]
