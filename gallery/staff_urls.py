from django.urls import path

from gallery import staff

app_name = "staff"

urlpatterns = [
    path("photos/<int:pk>/original", staff.photo_original, name="photo-original"),
    path(
        "photos/<int:pk>/preview/<int:width>.<str:fmt>", staff.photo_preview, name="photo-preview"
    ),
]
