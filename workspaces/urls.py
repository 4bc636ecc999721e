from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("workspaces/new/", views.create, name="workspace-create"),
    path("workspaces/rows/", views.rows, name="workspace-rows"),
    path("workspaces/<uuid:pk>/", views.detail, name="workspace-page"),
    path("workspaces/<uuid:pk>/<slug:action>/", views.act, name="workspace-action"),
]
