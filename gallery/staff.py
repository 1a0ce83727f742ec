"""Staff views. Every one checks login and permission: anonymous users are sent to log in,
others without the permission get 403."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.files.storage import storages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404

from consent.models import ConsentEvent
from gallery.models import Photo

CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "heic": "image/heic",
    "avif": "image/avif",
}


def staff_required(*perms: str) -> Callable:
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not request.user.is_active or not request.user.has_perms(perms):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapper.staff_permissions = perms  # read by the access-matrix test
        return wrapper

    return decorator


def _private_file(name: str, content_type: str, filename: str) -> HttpResponse:
    """Stream a private file (local storage) or redirect to a short-lived signed URL (S3)."""
    storage = storages["default"]
    try:
        storage.path(name)
    except NotImplementedError:
        return HttpResponseRedirect(storage.url(name))
    if not storage.exists(name):
        raise Http404
    response = FileResponse(storage.open(name, "rb"), content_type=content_type)
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@staff_required("gallery.view_original")
def photo_original(request: HttpRequest, pk: int) -> HttpResponse:
    photo = get_object_or_404(Photo.objects.select_related("case"), pk=pk)
    ConsentEvent.record(
        photo.case.consent,
        ConsentEvent.Kind.ORIGINAL_VIEWED,
        actor=request.user,
        details={"case": photo.case.public_id, "photo": photo.pk, "sha256": photo.sha256},
    )
    return _private_file(
        photo.original.name,
        CONTENT_TYPES.get(photo.original_format, "application/octet-stream"),
        f"{photo.case.public_id}-{photo.role}-{photo.view}.{photo.original_format}",
    )


@staff_required("gallery.view_photo")
def photo_preview(request: HttpRequest, pk: int, width: int, fmt: str) -> HttpResponse:
    """A rendition from private storage: staff previews never use public URLs."""
    photo = get_object_or_404(Photo, pk=pk)
    for r in photo.renditions:
        if r["width"] == width and r["format"] == fmt:
            return _private_file(r["name"], CONTENT_TYPES[fmt], f"preview-{width}.{fmt}")
    raise Http404
