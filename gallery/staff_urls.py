from django.contrib.auth import views as auth_views
from django.urls import path

from gallery import staff

app_name = "staff"

urlpatterns = [
    path("", staff.dashboard, name="dashboard"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="staff/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("coverage/", staff.coverage, name="coverage"),
    path("photos/<int:pk>/original", staff.photo_original, name="photo-original"),
    path(
        "photos/<int:pk>/preview/<int:width>.<str:fmt>", staff.photo_preview, name="photo-preview"
    ),
]
