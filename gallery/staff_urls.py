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
    path("cases/new/", staff.case_new, name="case-new"),
    path("cases/new/<int:patient>/", staff.case_create, name="case-create"),
    path("cases/<int:pk>/", staff.case_detail, name="case"),
    path("cases/<int:pk>/edit/", staff.case_edit, name="case-edit"),
    path("cases/<int:pk>/renditions.json", staff.case_renditions, name="case-renditions"),
    path("cases/<int:pk>/photos/", staff.photo_upload, name="photo-upload"),
    path("cases/<int:pk>/photos/<int:photo>/delete/", staff.photo_delete, name="photo-delete"),
    path("cases/<int:pk>/photos/<int:photo>/crop/", staff.photo_crop, name="photo-crop"),
    path("cases/<int:pk>/photos/<int:photo>/frame.jpg", staff.photo_frame, name="photo-frame"),
    path("cases/<int:pk>/submit/", staff.case_submit, name="case-submit"),
    path("cases/<int:pk>/publish/", staff.case_publish, name="case-publish"),
    path("cases/<int:pk>/send-back/", staff.case_send_back, name="case-send-back"),
    path("cases/<int:pk>/unpublish/", staff.case_unpublish, name="case-unpublish"),
    path("cases/<int:pk>/reopen/", staff.case_reopen, name="case-reopen"),
    path("photos/<int:pk>/original", staff.photo_original, name="photo-original"),
    path(
        "photos/<int:pk>/preview/<int:width>.<str:fmt>", staff.photo_preview, name="photo-preview"
    ),
]
