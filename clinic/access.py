"""The one access check every staff view uses (both apps share it)."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.files.storage import storages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header


def staff_required(*perms: str, any_of: bool = False) -> Callable:
    """Anonymous users are sent to log in; users without the permissions get 403.

    With ``any_of``, one of the permissions is enough.
    """

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            allowed = any(user.has_perm(p) for p in perms) if any_of else user.has_perms(perms)
            if not user.is_active or not allowed:
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapper.staff_permissions = perms  # read by the access-matrix test
        wrapper.staff_any_of = any_of
        return wrapper

    return decorator


def private_file_response(name: str, content_type: str, filename: str) -> HttpResponse:
    """Stream a private file (local storage) or redirect to a short-lived signed URL (S3)."""
    storage = storages["default"]
    try:
        storage.path(name)
    except NotImplementedError:
        return HttpResponseRedirect(storage.url(name))
    if not storage.exists(name):
        raise Http404
    response = FileResponse(storage.open(name, "rb"), content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(False, filename)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
