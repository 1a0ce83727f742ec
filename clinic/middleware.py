"""The project's own response headers.

Permissions-Policy is written by hand: django-permissions-policy sets one policy for the
whole site, and the camera must be allowed on the staff upload page only."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.middleware.gzip import GZipMiddleware

DENY_ALL = (
    "accelerometer=(), autoplay=(), camera=(), display-capture=(), geolocation=(), "
    "gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()"
)


def allows_camera(view: Callable) -> Callable:
    """Mark a view whose page may use the device camera (staff photo capture)."""
    view.permissions_policy_camera = True
    return view


class PermissionsPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = DENY_ALL
        if getattr(request, "_camera_allowed", False):
            policy = policy.replace("camera=()", "camera=(self)")
        response.setdefault("Permissions-Policy", policy)
        return response

    def process_view(self, request: HttpRequest, view, args, kwargs) -> None:
        request._camera_allowed = getattr(view, "permissions_policy_camera", False)


# Pages with patients' names, consent records or staff work: a browser's back button on a
# shared clinic computer, or any cache between, must not keep them.
PRIVATE_PREFIXES = ("/staff/", "/admin/", "/consent/")


class PrivatePagesNotStoredMiddleware:
    """Cache-Control: no-store on every private page, decided by the URL so that no view
    can forget it (the log-in and lock-out pages and error pages included)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path_info.startswith(PRIVATE_PREFIXES):
            response["Cache-Control"] = "no-store, private"
        return response


# Already compressed: gzip only makes these bigger and costs time.
COMPRESSED_TYPES = ("image/avif", "image/webp", "image/jpeg", "image/png", "image/gif")


class GZipTextMiddleware(GZipMiddleware):
    """Django's GZipMiddleware, leaving alone responses whose format is already compressed
    (the photo renditions). HTML, JSON, XML and plain text are compressed as before."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        content_type = response.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type in COMPRESSED_TYPES:
            return response
        return super().process_response(request, response)
